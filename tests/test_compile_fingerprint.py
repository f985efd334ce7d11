"""Compiled models stay byte-identical: a pinned fingerprint per example and length.

Each fingerprint hashes the float32 weights (names, shapes and bytes) and, apart, the
saved metadata (residual labels, components, value records, alignment, domain) and the
warnings of the compile. The pins were computed before the compile-speed work, so an
optimisation that changes any weight, label or domain fails here. A change that means
to alter the compiled model regenerates them: `python tests/test_compile_fingerprint.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings

import numpy as np
import pytest

from compiler import compile_rasp_to_model
from compiler.serialize import model_metadata
from examples.library import EXAMPLES, unique

# Slow to compile at 16, so pinned at 5 only.
SLOW_AT_16 = {"paper_sort", "most_freq", "dyck1", "dyck2", "dyck3", "rasp_sort",
              "rasp_most_freq", "rasp_dyck1", "rasp_dyck2", "rasp_dyck3"}
CASES = [(name, n) for n in (5, 16) for name in EXAMPLES if n == 5 or name not in SLOW_AT_16]

# A default label `<kind>_<id>` depends on how many expressions the process built before.
DEFAULT_LABEL = re.compile(r"\b((?:aggregate|constant_selector|constant_sop|expr|full|"
                           r"linear_sequence_map|map|select|selector|selector_and|selector_not|"
                           r"selector_or|selector_width|sequence_map|sop)_)(\d+)\b")

# name@N → (weights sha256, metadata sha256, warnings sha256), first 16 hex digits each.
PINNED = {
    'length@5': ('9391aeede9daa087', '9372f1d3e8f19d9f', 'e3b0c44298fc1c14'),
    'reverse@5': ('2331cf076e5fd893', '424e6cdaa893f0f9', 'e3b0c44298fc1c14'),
    'hist@5': ('ff832a9b3db622d8', '435c97180eea40fe', 'e3b0c44298fc1c14'),
    'sort_unique@5': ('415b4b7d346fbee4', 'fd7a69bcd6e7521c', '1d96facc6dd02392'),
    'sort@5': ('5cf2a6ababb1d872', '6c246dbb1cc1778a', 'e3b0c44298fc1c14'),
    'sort_freq@5': ('702206e44433e9c4', '72fd3906050ef4bc', 'e3b0c44298fc1c14'),
    'frac_prevs@5': ('92c8d6f2a6f9c268', '3eaf015b69263af6', 'e3b0c44298fc1c14'),
    'pair_balance@5': ('b247762bc63b5777', 'db93c297082288e6', 'e3b0c44298fc1c14'),
    'shuffle_dyck1@5': ('ce97492b40812361', 'db12464a6f2e51a1', 'e3b0c44298fc1c14'),
    'shuffle_dyck2@5': ('909582bfd9c0eb75', '77824c6966aee8f6', 'e3b0c44298fc1c14'),
    'shift_by@5': ('a37e3c37572bd25a', 'f7e2076efc3cf032', 'e3b0c44298fc1c14'),
    'detect_pattern@5': ('5b9270472eeda9ca', '1a08cc6600cecd41', 'e3b0c44298fc1c14'),
    'count@5': ('f85e48ca15e7447a', 'a7ac7ad4438ca987', 'e3b0c44298fc1c14'),
    'count_less_freq@5': ('6dd5bf3acdc5e817', 'f5d37dd5f8aa7b0c', 'e3b0c44298fc1c14'),
    'nary_sequencemap@5': ('d7b71723b83bc51c', 'b322c21132c46c20', 'e3b0c44298fc1c14'),
    'paper_reverse@5': ('6f2fb9e320f15966', 'ebae4d75add0ffd4', 'e3b0c44298fc1c14'),
    'paper_hist@5': ('ff832a9b3db622d8', '435c97180eea40fe', 'e3b0c44298fc1c14'),
    'double_hist@5': ('1c60c4ddcd70aec4', 'ebbb8ec309d9bc67', 'e3b0c44298fc1c14'),
    'paper_sort@5': ('5cf2a6ababb1d872', 'ad89c8c84b7e88d8', 'e3b0c44298fc1c14'),
    'most_freq@5': ('abe27f9f591551ae', '3cfb14d7ab7c0174', 'e3b0c44298fc1c14'),
    'dyck1@5': ('6a82004019ac5096', '13e17afbc7446ff8', 'e3b0c44298fc1c14'),
    'dyck2@5': ('07e25c1216f8d811', '02416d6bc4907313', 'e3b0c44298fc1c14'),
    'dyck3@5': ('b917ea9634cb5ea7', 'f098c8920a7887ab', 'e3b0c44298fc1c14'),
    'previous_token@5': ('575ef009307c3f52', '195f257cf657fb71', 'e3b0c44298fc1c14'),
    'induction@5': ('c3ba878f9efb228e', 'e8ca684a36d8d4b0', '40c191dad94b5cb8'),
    'first_occurrence@5': ('8e09028b960b5930', '03f517bae7b60530', 'e3b0c44298fc1c14'),
    'rasp_reverse@5': ('9844f9cbb1e8f4fd', 'bcf6984a3a3b6a8d', 'e3b0c44298fc1c14'),
    'rasp_hist@5': ('ff832a9b3db622d8', 'f4ad79bef9bb045a', 'e3b0c44298fc1c14'),
    'rasp_double_hist@5': ('da5fbbe7f495bd94', '7e01fb81fc244e73', 'e3b0c44298fc1c14'),
    'rasp_sort@5': ('74a2c99ff631c68d', '96f2a35f981e7213', 'e3b0c44298fc1c14'),
    'rasp_most_freq@5': ('f896f4cbbc075eac', '92f27b0786cad1cb', 'e3b0c44298fc1c14'),
    'rasp_dyck1@5': ('b7b48e7c934e3402', '04fec0e051a2a266', 'e3b0c44298fc1c14'),
    'rasp_dyck2@5': ('0a1feef7fa98b84a', 'bf930369bc7a2f5d', 'e3b0c44298fc1c14'),
    'rasp_dyck3@5': ('3f4f56fba3bc1884', 'f7655c82be29e1c1', 'e3b0c44298fc1c14'),
    'length@16': ('15acb02f01734e9f', 'bc28890e6715d6b7', 'e3b0c44298fc1c14'),
    'reverse@16': ('d4c6d22b9a5903df', '17b8c0d19df257e5', 'e3b0c44298fc1c14'),
    'hist@16': ('a855749b1ba3491c', 'a5a9b4f6aeacb02b', 'e3b0c44298fc1c14'),
    'sort_unique@16': ('2c2f86966e85d955', '4909b8f95f43c0f5', '1d96facc6dd02392'),
    'sort@16': ('a0a0fa20ca0ccfcd', '9775878a823953d9', 'e3b0c44298fc1c14'),
    'sort_freq@16': ('be7435584ab28bee', 'b73ee14d7019c76c', 'e3b0c44298fc1c14'),
    'frac_prevs@16': ('ecefa1401e6f7536', '1c31168e0a3ca44b', 'e3b0c44298fc1c14'),
    'pair_balance@16': ('51c998212321ab3e', '519fe7989b873d68', 'e3b0c44298fc1c14'),
    'shuffle_dyck1@16': ('a96cab0b513113e8', 'd1bf04e545555f08', 'e3b0c44298fc1c14'),
    'shuffle_dyck2@16': ('3624b28f84e9138a', '163d4250f621ec91', 'e3b0c44298fc1c14'),
    'shift_by@16': ('738e1ec43b8ef217', 'f1cb48cdff7dacef', 'e3b0c44298fc1c14'),
    'detect_pattern@16': ('c7a2eb3e0e434756', '3dce2f2b12be5bce', 'e3b0c44298fc1c14'),
    'count@16': ('fb58e3953a9c8adf', '3a47b6387c3e16d8', 'e3b0c44298fc1c14'),
    'count_less_freq@16': ('8f7a803c64bba552', '747bf2c08f7d313c', 'e3b0c44298fc1c14'),
    'nary_sequencemap@16': ('e532c553ef786ce2', '34f18a4656aedfb8', 'e3b0c44298fc1c14'),
    'paper_reverse@16': ('df4c5f3f10b44cd9', '3e088b6b51905a2f', 'e3b0c44298fc1c14'),
    'paper_hist@16': ('a855749b1ba3491c', 'a5a9b4f6aeacb02b', 'e3b0c44298fc1c14'),
    'double_hist@16': ('368dac1e4c8265dc', 'c0bd1aaecab0d070', 'e3b0c44298fc1c14'),
    'previous_token@16': ('91307512bcbe2cda', '5f052c10b90b201a', 'e3b0c44298fc1c14'),
    'induction@16': ('aa24a9e05f5c62a9', '9e35d0bfe5222894', '40c191dad94b5cb8'),
    'first_occurrence@16': ('fd5e090f7701ff7a', '6573022c40d3d93d', 'e3b0c44298fc1c14'),
    'rasp_reverse@16': ('a77dcfdebe7d8129', '10cf35eb3399cd65', 'e3b0c44298fc1c14'),
    'rasp_hist@16': ('a855749b1ba3491c', 'de9090654d8af34d', 'e3b0c44298fc1c14'),
    'rasp_double_hist@16': ('bebfd37bc26dd6d5', 'c4b833de784703a3', 'e3b0c44298fc1c14'),
}


def fingerprint(name: str, max_seq_len: int) -> tuple[str, str, str]:
    """The three hashes of `name` compiled at `max_seq_len` over its own vocabulary
    (distinct-token examples: the tokens 1..max_seq_len, as the benchmark uses)."""
    example = EXAMPLES[name]
    vocab = tuple(range(1, max_seq_len + 1)) if example.sampler is unique else example.vocab
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = compile_rasp_to_model(example.build(max_seq_len), vocab, max_seq_len,
                                      causal=example.causal)
    weights = hashlib.sha256()
    for module in sorted(model.params):
        for key in sorted(model.params[module]):
            array = np.asarray(model.params[module][key])
            weights.update(f"{module}/{key}/{array.dtype}/{array.shape}".encode())
            weights.update(array.tobytes())
    metadata = json.dumps(model_metadata(model), sort_keys=True, default=repr)
    messages = "\n".join(f"{w.category.__name__}: {w.message}" for w in caught)
    return (weights.hexdigest()[:16], _short(metadata), _short(messages))


def _short(text: str) -> str:
    """A hash of `text` with default labels numbered by first appearance."""
    numbers: dict[str, int] = {}
    text = DEFAULT_LABEL.sub(
        lambda m: f"{m[1]}#{numbers.setdefault(m[0], len(numbers))}", text)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("name,max_seq_len", CASES)
def test_compiled_model_is_unchanged(name, max_seq_len):
    assert fingerprint(name, max_seq_len) == PINNED[f"{name}@{max_seq_len}"]


if __name__ == "__main__":  # print a fresh PINNED table
    print("PINNED = {")
    for case in CASES:
        print(f"    {'@'.join(map(str, case))!r}: {fingerprint(*case)!r},")
    print("}")
