"""Eight deliberate breaks of features the suite once let through, and the tests that
must now catch each one.

Each `Break` is a list of exact (file, old, new) substitutions plus the pytest node
ids that must fail once they are applied to a copy of the tree.
`tests/test_breaks_are_caught.py` (slow set, `make breaks`) applies them one at a
time. When the code a break edits changes, update its `old` text here: the check
refuses a substitution whose `old` text is not found exactly once.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Break:
    """One feature broken by substitutions, and the tests that must then fail."""

    name: str
    substitutions: tuple[tuple[str, str, str], ...]  # (path, old, new)
    catchers: tuple[str, ...]                         # pytest node ids


CHECK_ARGUMENTS = ("    vocab = _check_arguments(program, vocab, max_seq_len, compiler_bos, "
                   "compiler_pad)\n")
CIRCUITS = "tests/test_circuits_scoring.py::"

BREAKS = (
    Break("eap_ig_scores_zero",
          (("interp/circuits/attribution.py",
            "    return _edge_scores(dataset, granularity, gradient)\n",
            "    return dict.fromkeys(_edge_scores(dataset, granularity, gradient), 0.0)\n"),),
          (CIRCUITS + "test_eap_ig_matches_the_integral_worked_out_by_hand",)),
    Break("compression_scores_one",
          (("interp/compress.py",
            "    return sum(outputs_match(e, d[1:], tolerance)",
            "    return 1.0 or sum(outputs_match(e, d[1:], tolerance)"),
           ("interp/compress.py", "    return cosines\n", "    return [1.0] * len(cosines)\n")),
          ("tests/test_compress.py::test_exact_match_counts_the_inputs_a_damaged_model_gets_wrong",
           "tests/test_compress.py::test_layer_cosines_are_those_of_the_reference_forward")),
    Break("heatmaps_draw_zeros",
          (("interp/plots.py", "ax.imshow(_softmax(", "ax.imshow(0 * _softmax("),
           ("interp/plots.py", "ax.imshow(residual.T,", "ax.imshow(0 * residual.T,")),
          ("tests/test_plots.py::test_heatmaps_show_the_models_own_attention_and_residuals",)),
    Break("interpbench_edges_first_only",
          (("interp/tl_export.py",
            "        out.extend((sender, r) for r in receivers if (sender, r) not in out)\n"
            "    return out\n",
            "        out.extend((sender, r) for r in receivers if (sender, r) not in out)\n"
            "    return out[:1]\n"),),
          ("tests/test_transformer_lens_export.py::"
           "test_transformer_lens_and_interpbench_formats_load_in_tl4",)),
    Break("sae_directions_random",
          (("interp/sae.py",
            "        return self.decoder\n",
            "        random = np.random.default_rng(0).normal(size=self.decoder.shape)\n"
            "        return random / np.linalg.norm(random, axis=1, keepdims=True)\n"),),
          ("tests/test_compress_score.py::test_trained_sae_beats_random_directions_by_a_margin",)),
    Break("reverse_rasp_outputs_booleans",
          (("examples/rasp/reverse.rasp",
            "reverse = aggregate(flip, tokens);", 'reverse = aggregate(flip, tokens == "a");'),),
          ("tests/test_rasp_syntax_examples.py::"
           "test_rasp_example_is_exact_and_as_deep_as_its_twin[rasp_reverse]",)),
    Break("aggregate_outputs_refused",
          (("compiler/compiling.py",
            CHECK_ARGUMENTS,
            CHECK_ARGUMENTS
            + "    if type(program).__name__ in ('Aggregate', 'LinearSequenceMap'):\n"
            "        raise CompileError(program, 'refused')\n"),),
          ("tests/test_fuzz_regressions.py::"
           "test_numerical_output_of_a_gated_mean_stays_within_tolerance",
           "tests/test_fuzz_regressions.py::test_product_selector_whose_part_is_always_none")),
    Break("path_patching_scores_zero",
          (("interp/circuits/patching.py",
            "    return {(u, v): float(s) for (u, v, _), s in zip(edges, scores)}\n",
            "    return {(u, v): 0.0 for (u, v, _), s in zip(edges, scores)}\n"),),
          (CIRCUITS + "test_path_patching_matches_the_kl_worked_out_by_hand",)),
)
