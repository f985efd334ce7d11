"""The model zoo: `raspc zoo build` keeps exact models only, `zoo bench` runs cells on Ray.

A 5-model zoo (two library examples and three random programs, N <= 3) is built
once through the command line. The expected outputs come from the evaluator on
programs rebuilt here from the library and from the random-program generator,
not from the zoo. One Ray session (local, 2 workers) benches it with 2 methods.
"""

from __future__ import annotations

import json
import random
import shutil
import sys

import pytest

import rasp
from examples.library import EXAMPLES
from examples.random_programs import generate_case
from interp.zoo.bench import bench_zoo, read_results
from raspc.cli import main
from rasp_runtime.model import CompiledModel
from rasp_runtime.verify import outputs_agree

LIBRARY = ("reverse", "hist")
METHODS = ("eap_ig", "activation_patching")
EXPORT_FILES = {"model.safetensors", "config.json", "tokenizer.json", "ground_truth.json",
                "edges.json", "dataset.json", "ll_model.pth", "ll_model_cfg.pkl", "edges.pkl",
                "rasp_model.npz", "rasp_model.json", "zoo_entry.json", "program.rasp"}


BUILD = ["--examples", ",".join(LIBRARY), "--lengths", "3", "--random", "3", "--seed", "5",
         "--random-max-len", "3", "--no-progress"]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """(the zoo directory, what `raspc zoo build` printed)."""
    out = tmp_path_factory.mktemp("zoo")
    lines = []
    with pytest.MonkeyPatch.context() as patch:  # capsys is per test, not per module
        patch.setattr("builtins.print", lambda *a, **k: lines.append(" ".join(map(str, a))))
        assert main(["zoo", "build", str(out), *BUILD]) == 0
    return out, "\n".join(lines)


def manifest(out) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def program_of(row):
    """The row's program, rebuilt from the library or the generator (not by the zoo)."""
    if row["source"] == "library":
        return EXAMPLES[row["family"]].build(row["max_seq_len"])
    origin = row["origin"]
    return generate_case(random.Random(f"{origin['seed']}:{origin['index']}"),
                         max_len=origin["max_len"]).program


def test_build_writes_one_manifest_row_per_exact_model(zoo):
    out, printed = zoo
    rows = manifest(out)
    assert [r["id"] for r in rows[:2]] == ["lib-reverse-n3-plain", "lib-hist-n3-plain"]
    assert [r["source"] for r in rows] == ["library"] * 2 + ["random"] * 3
    assert len({(r["program_hash"], r["max_seq_len"]) for r in rows}) == 5
    for row in rows:
        assert row["variant"] == "plain" and row["max_seq_len"] <= 3
        assert row["layers"] >= 1 and row["params"] > 0 and row["circuit_edges"] >= 1
        assert row["verification"]["mismatches"] == 0 and row["verification"]["checked"] > 0
        assert EXPORT_FILES <= {p.name for p in (out / row["id"]).iterdir()}
        assert json.loads((out / row["id"] / "zoo_entry.json").read_text()) == row
    assert printed.startswith("5 models in ")
    refused = [json.loads(l) for l in (out / "refused.jsonl").read_text().splitlines()] \
        if (out / "refused.jsonl").exists() else []
    assert json.loads((out / "build.json").read_text())["refused"] == \
        {r: sum(x["reason"] == r for x in refused) for r in {x["reason"] for x in refused}}


def test_each_model_loads_from_its_directory_and_is_exact_on_its_dataset(zoo):
    out, _ = zoo
    for row in manifest(out):
        model = CompiledModel.load(out / row["id"])  # checks every file's checksum
        program = program_of(row)
        pairs = json.loads((out / row["id"] / "dataset.json").read_text())["pairs"]
        inputs = [p[side] for p in pairs for side in ("clean", "corrupted")]
        got = model.apply_batch([["BOS", *xs] for xs in inputs])
        for xs, decoded in zip(inputs, got):
            expected = rasp.evaluate(program, xs, causal=row["causal"])
            assert outputs_agree(expected, decoded[1:]), (row["id"], xs, expected, decoded)


def test_a_rerun_rebuilds_only_a_missing_model_and_the_same_bytes(zoo, tmp_path, capsys):
    out, _ = zoo
    copy = tmp_path / "zoo"
    shutil.copytree(out, copy)
    last = manifest(out)[-1]["id"]
    shutil.rmtree(copy / last)  # as if the build had been cut short there
    assert main(["zoo", "build", str(copy), *BUILD]) == 0
    assert "(1 built, 4 already there)" in capsys.readouterr().out
    for name in ("manifest.jsonl", f"{last}/ground_truth.json", f"{last}/model.safetensors",
                 f"{last}/program.rasp"):
        assert (copy / name).read_bytes() == (out / name).read_bytes(), name


def test_bench_runs_every_cell_on_ray_then_a_rerun_skips_them(zoo, tmp_path):
    out, _ = zoo
    summary = bench_zoo(out, METHODS, workers=2, out=tmp_path, progress=False)
    assert summary.backend == "Ray, local" and summary.ran == 10
    rows = read_results(tmp_path)
    assert sorted(r["cell"] for r in rows) == sorted(
        f"{m['id']}|{method}|component" for m in manifest(out) for method in METHODS)
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert any(r["edge_auroc"] is not None for r in rows)
    assert all(r["edge_auroc"] is None or 0 <= r["edge_auroc"] <= 1 for r in rows)
    assert len({r["pid"] for r in rows}) >= 1
    board = (tmp_path / "leaderboard.md").read_text()
    for method in METHODS:
        assert f"| {method} | 5 | 0 |" in board
    assert "| random | 3 |" in board and "| library | 2 |" in board
    assert (tmp_path / "leaderboard.png").stat().st_size > 0
    again = bench_zoo(out, METHODS, workers=2, out=tmp_path, progress=False)
    assert (again.ran, again.skipped) == (0, 10)
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 10


def test_in_process_bench_records_a_failing_cell_and_a_timeout(zoo, tmp_path):
    out, _ = zoo
    copy = tmp_path / "zoo"
    shutil.copytree(out, copy)
    first, second = (r["id"] for r in manifest(out)[:2])
    (copy / first / "dataset.json").write_text("not json")
    summary = bench_zoo(copy, ["eap_ig"], workers=1, limit=2, progress=False)
    assert summary.backend == "in-process" and summary.ran == 2
    rows = {r["model"]: r for r in read_results(copy / "bench")}
    assert rows[first]["status"] == "failed" and "dataset" in rows[first]["error"]
    assert rows[second]["status"] == "ok"
    assert "| eap_ig | 2 | 1 |" in (copy / "bench" / "leaderboard.md").read_text()
    # The timed-out cell needs a loadable model: a broken dataset.json could fail first.
    shutil.copy(out / first / "dataset.json", copy / first / "dataset.json")
    slow = bench_zoo(copy, ["acdc"], workers=1, limit=1, timeout_s=0.001, progress=False)
    assert slow.statuses == {"timeout": 1}
    retried = bench_zoo(copy, ["eap_ig"], workers=1, limit=2, progress=False,
                        retry_failed=True)
    assert retried.ran == 1  # only the failed cell


def test_bench_without_ray_says_how_to_install_it(zoo, tmp_path, monkeypatch, capsys):
    out, _ = zoo
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    status = main(["zoo", "bench", str(out), "--methods", "eap_ig", "--out", str(tmp_path),
                   "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert "pip install 'rasp-compiler[zoo]'" in err[0]
