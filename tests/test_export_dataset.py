"""dataset.json travels with exports; `raspc score EXPORT_DIR` reads auto-circuit's names
and the pairs a method saw (--dataset); make_dataset takes a sampler or a list of inputs."""

from __future__ import annotations

import json

import pytest

import rasp
from examples.library import EXAMPLES
from interp.circuits import example_model, make_dataset
from raspc.cli import main
from tests.test_circuits_edge_names import reverse_scores


@pytest.fixture(scope="module")
def reverse_export(tmp_path_factory):
    directory = tmp_path_factory.mktemp("exports") / "reverse"
    assert main(["export", "reverse", "--max-seq-len", "5", "-o", str(directory)]) == 0
    return directory


def test_export_carries_pairs_that_exercise_the_circuit(tmp_path, capsys):
    directory = tmp_path / "sort_unique"
    assert main(["export", "sort_unique", "--max-seq-len", "5", "-o", str(directory)]) == 0
    assert "dataset.json" in capsys.readouterr().out
    data = json.loads((directory / "dataset.json").read_text())
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    ids = {entry["token"]: entry["id"] for entry in tokenizer["input"]}
    assert (data["max_seq_len"], data["vocab"], len(data["pairs"])) == (5, list(range(1, 9)), 64)
    program = EXAMPLES["sort_unique"].build(5)
    outputs_differ = 0
    for pair in data["pairs"]:
        clean, corrupted = pair["clean"], pair["corrupted"]
        assert len(clean) == len(corrupted) and 1 <= len(clean) <= 5
        assert len(set(clean)) == len(clean) and len(set(corrupted)) == len(corrupted)
        assert pair["clean_ids"] == [tokenizer["bos_id"]] + [ids[t] for t in clean]
        assert pair["corrupted_ids"] == [tokenizer["bos_id"]] + [ids[t] for t in corrupted]
        outputs_differ += rasp.evaluate(program, clean) != rasp.evaluate(program, corrupted)
    assert outputs_differ > len(data["pairs"]) // 2


def test_score_export_dir_with_auto_circuit_names(reverse_export, tmp_path, capsys):
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps(reverse_scores(-2.0, 0.5)))
    for granularity in ("component", "acdc_hooks", "sp_hooks"):
        assert main(["score", str(reverse_export), str(scores),
                     "--granularity", granularity]) == 0
        out = capsys.readouterr().out
        assert "edges: AUROC 1.000" in out, out
        assert "64 pairs of" in out and "dataset.json left out" in out
        assert "5 touch padded components" in out


def test_score_refuses_repeated_edges_unless_merged(reverse_export, tmp_path, capsys):
    scores = tmp_path / "scores.json"
    scores.write_text('{"Resid Start->A0.0.Q": 1, "A1.0->Resid End": 2, "A1.0->Resid End": 3}')
    assert main(["score", str(reverse_export), str(scores)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'A1.0->Resid End' is scored twice" in err
    result = tmp_path / "result.json"
    assert main(["score", str(reverse_export), str(scores), "--merge", "sum",
                 "--json", str(result)]) == 0
    assert 5.0 in json.loads(result.read_text())["edges"]["thresholds"]


def test_score_takes_the_pairs_the_method_saw(reverse_export, tmp_path, capsys):
    tokenizer = json.loads((reverse_export / "tokenizer.json").read_text())
    ids = {entry["token"]: entry["id"] for entry in tokenizer["input"]}
    bos = tokenizer["bos_id"]
    pairs = tmp_path / "pairs.json"
    # One pair that changes only the first token: moved tokens differ, the length does not.
    pairs.write_text(json.dumps({"clean_ids": [[bos, ids["a"], ids["b"], ids["c"]]],
                                 "corrupted_ids": [[bos, ids["b"], ids["b"], ids["c"]]]}))
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps(reverse_scores(-2.0, 0.5)))
    assert main(["score", str(reverse_export), str(scores), "--dataset", str(pairs)]) == 0
    out = capsys.readouterr().out
    # By hand: the length never differs, so layer 0's head, its MLP and what feeds them
    # are inert, and so are the positions; the true edges left are the embeddings (tokens)
    # into layer 1's head and its edge to the output.
    assert "inert on the 1 pairs of" in out and "edges: AUROC 1.000; 2 true" in out, out
    pairs.write_text(json.dumps({"clean_ids": [[ids["a"]]], "corrupted_ids": [[ids["b"]]]}))
    assert main(["score", str(reverse_export), str(scores), "--dataset", str(pairs)]) == 2
    assert "BOS id" in capsys.readouterr().err


def test_make_dataset_takes_a_sampler_function_or_a_list_of_inputs():
    model = example_model("reverse")
    example = EXAMPLES["reverse"]
    from_function = make_dataset(example.sampler, model, 8, seed=3)
    assert from_function.clean == make_dataset(example, model, 8, seed=3).clean
    inputs = [["a", "b"], ["b", "a"], ["c", "c", "a"], ["a", "a", "c"], ["b"]]
    from_list = make_dataset(inputs, model, 12, seed=0)
    assert len(from_list) == 12
    for clean, corrupted in zip(from_list.clean, from_list.corrupt):
        assert list(clean) in inputs and list(corrupted) in inputs
        assert len(clean) == len(corrupted) and (clean != corrupted or clean == ("b",))
