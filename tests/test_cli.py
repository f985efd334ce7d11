"""The `raspc` command line, run through its real entry point (`python -m raspc`).

Each subprocess pays for importing jax, so the subprocess tests are few and
share a saved model; cheaper checks (help, vocab parsing, mismatch reporting,
demo) call `main` in-process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rasp
from raspc import checking, cli, formatting, targets
from examples.library import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]

USER_PROGRAM = '''
import rasp

def make_weighted(max_seq_len):
    """Each token times its position, plus max_seq_len."""
    return rasp.SequenceMap(lambda x, i: x * i + max_seq_len, rasp.tokens,
                            rasp.indices).named("weighted")
'''


def raspc(*args) -> subprocess.CompletedProcess:
    """Run `raspc ARGS` in a fresh interpreter; stdout and stderr as text."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "raspc", *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, encoding="utf-8", timeout=300)


def assert_clean_error(result, status: int, *fragments: str) -> None:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("raspc: error: ")
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture(scope="module")
def saved_reverse(tmp_path_factory):
    """`raspc compile reverse -o DIR/reverse.npz`: its result and the saved path."""
    path = tmp_path_factory.mktemp("models") / "reverse.npz"
    return raspc("compile", "reverse", "-o", path), path


# ------------------------------------------------------------------ subprocess tests
def test_list_shows_every_example_with_its_description():
    result = raspc("list")
    assert result.returncode == 0, result.stderr
    for example in EXAMPLES.values():
        line = next(l for l in result.stdout.splitlines() if l.startswith(example.name + " "))
        assert example.description in line


def test_compile_prints_summary_and_saves(saved_reverse):
    result, path = saved_reverse
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for pattern in (r"layers: +\d+\n", r"heads per layer: +[\d, ]+\n", r"d_model: +\d+\n",
                    r"MLP widths: +[\d, ]+\n", r"parameters: +[\d,]+\n"):
        assert re.search(pattern, out), pattern
    for fragment in ("selector_width  length", "aggregate       reverse", "Select(indices, ",
                     "value: tokens"):
        assert fragment in out
    assert path.exists() and path.with_suffix(".json").exists()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["program"]["description"] == "reverse: the input reversed"
    assert f"layers:          {len(meta['config']['layers'])}\n" in out


def trace_rows(stdout: str) -> dict[str, list[str]]:
    """label → shown values, from the table printed by `run --trace`."""
    rows = {}
    for line in stdout.split("\n\n")[0].splitlines()[1:]:
        parts = line.replace(" (output)", "").split()
        start = 1 if parts[0] == "embedding" else 3  # "embedding" or "layer 2 mlp"
        rows[parts[start]] = parts[start + 1:]
    return rows


def test_run_example_and_trace_match_saved_model(saved_reverse):
    _, path = saved_reverse
    plain = raspc("run", "reverse", "a", "b", "c")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == ["input:  a b c", "output: c b a"]

    traced = raspc("run", "reverse", "a", "b", "c", "a", "--trace")
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout.splitlines()[-1] == "output: a c b a"
    rows = trace_rows(traced.stdout)
    _, expected = rasp.evaluate(EXAMPLES["reverse"].build(8), list("abca"),
                                return_intermediates=True)
    compared = {label for label in rows if label in expected}
    assert {"tokens", "indices", "length", "reverse"} <= compared
    for label in compared:  # every traced value is the evaluator's intermediate value
        assert rows[label] == [formatting.fmt(v) for v in expected[label]], label

    loaded = raspc("run", path, "a", "b", "c", "a", "--trace")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout == traced.stdout


def test_compile_and_run_a_user_program(tmp_path):
    (tmp_path / "prog.py").write_text(USER_PROGRAM)
    model = tmp_path / "weighted.npz"
    spec = f"{tmp_path / 'prog.py'}:make_weighted"
    result = raspc("compile", spec, "--vocab", "1,2,3", "--max-seq-len", "4", "-o", model)
    assert result.returncode == 0, result.stderr
    assert "Each token times its position" in result.stdout
    assert "sequence_map  weighted" in result.stdout
    assert "max_seq_len: 4" in result.stdout

    run = raspc("run", model, "3", "1", "2")
    assert run.returncode == 0, run.stderr
    program = rasp.SequenceMap(lambda x, i: x * i + 4, rasp.tokens, rasp.indices)
    expected = " ".join(map(str, rasp.evaluate(program, [3, 1, 2])))
    assert run.stdout.splitlines()[-1] == f"output: {expected}"


def test_verify_an_example():
    result = raspc("verify", "sort", "--inputs", "60", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "✓ all 60 inputs agree with the evaluator" in result.stdout


def test_unknown_example_lists_known_names():
    result = raspc("run", "revers", "a")
    assert_clean_error(result, 2, "unknown example 'revers'", "did you mean 'reverse'",
                       "sort_unique", "dyck2")


def test_bad_vocab_is_a_clear_error():
    assert_clean_error(raspc("compile", "hist", "--vocab", "a,BOS"), 2, "BOS is reserved")


def test_too_long_input_is_a_clear_error():
    assert_clean_error(raspc("run", "reverse", *"abcabcabc"), 2, "9 tokens",
                       "max_seq_len = 8")


# ------------------------------------------------------------------ in-process tests
@pytest.mark.parametrize("command", [[], ["list"], ["compile"], ["run"], ["verify"], ["demo"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: raspc")


@pytest.mark.parametrize("text, expected", [
    ("a,b,c", ("a", "b", "c")), ("1, 2,3", (1, 2, 3)), ("-1,0", (-1, 0)),
    ("1,a", ("1", "a")), ("(,)", ("(", ")")), ("1.5,2,-3", (1.5, 2.0, -3.0)),
    ("-0.5,.5,1e2", (-0.5, 0.5, 100.0)), ("nan,1", ("nan", "1")), ("1.5,x", ("1.5", "x")),
])
def test_parse_vocab(text, expected):
    vocab = targets.parse_vocab(text)
    assert vocab == expected and [type(t) for t in vocab] == [type(t) for t in expected]


@pytest.mark.parametrize("text, message", [
    ("", "non-empty"), ("a,,b", "non-empty"), ("a,b,a", "repeated"), ("1,01", "repeated"),
    ("PAD", "reserved"),
])
def test_bad_vocab_messages(text, message, capsys):
    assert cli.main(["compile", "reverse", "--vocab", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith("raspc: error: bad --vocab") and message in err


def test_bad_tokens_and_targets(capsys, tmp_path):
    assert cli.main(["run", "reverse", "a", "z"]) == 2
    assert "token 'z' at position 1 is not in the vocabulary" in capsys.readouterr().err
    assert cli.main(["run", str(tmp_path / "missing.npz"), "a"]) == 2
    assert "no saved model" in capsys.readouterr().err
    (tmp_path / "p.py").write_text("def boom():\n    return 1 / 0\n")
    assert cli.main(["compile", f"{tmp_path / 'p.py'}:boom"]) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert cli.main(["compile", f"{tmp_path / 'p.py'}:nothing"]) == 2
    assert "functions: boom" in capsys.readouterr().err


def test_verify_reports_mismatches(monkeypatch, capsys):
    real = rasp.evaluate
    monkeypatch.setattr(rasp, "evaluate", lambda p, xs, causal=False: real(p, xs)[::-1])
    assert cli.main(["verify", "hist", "--inputs", "20"]) == 1
    out = capsys.readouterr().out
    assert "inputs disagree with the evaluator" in out
    assert out.count("evaluator [") == 5  # the first five mismatches


def test_demo_table(monkeypatch, capsys):
    subset = {name: EXAMPLES[name] for name in ("length", "count")}
    monkeypatch.setattr(checking, "EXAMPLES", subset)
    assert cli.main(["demo", "--inputs", "20"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["example", "layers", "heads", "d_model", "params",
                                           "compile", "verified"]
    assert out.count("✓") == 2 and "2/2 examples verified" in out
