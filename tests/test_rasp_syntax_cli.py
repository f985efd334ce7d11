"""RASP-syntax files on the command line (`file.rasp:name`) and `raspc repl`.

Most checks call `raspc.cli.main` in-process; the REPL runs as a real
subprocess reading its standard input.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from raspc import cli

ROOT = Path(__file__).resolve().parents[1]
SORT = ROOT / "examples" / "rasp" / "sort.rasp"


def run_main(capsys, *args) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_syntax_error_is_one_message_with_the_caret_line(tmp_path, capsys):
    bad = tmp_path / "bad.rasp"
    bad.write_text("ok = indices;\nrev = aggregate(select(indices, length - indices, ==) tokens);\n")
    status, _, err = run_main(capsys, "compile", f"{bad}:rev")
    assert status == 1
    lines = err.splitlines()
    assert lines[0].startswith(f"raspc: error: {bad}:2:55: syntax error: unexpected 'tokens'")
    assert "expected" in lines[0] and "')'" in lines[0] and "Traceback" not in err
    assert lines[1] == "    rev = aggregate(select(indices, length - indices, ==) tokens);"
    assert lines[2] == "    " + " " * 54 + "^"


def test_unknown_name_through_raspc(tmp_path, capsys):
    bad = tmp_path / "bad.rasp"
    bad.write_text("y = tokenz;\n")
    status, _, err = run_main(capsys, "verify", f"{bad}:y")
    assert status == 1 and "1:5: unknown name 'tokenz' (did you mean 'tokens'?)" in err
    assert err.splitlines()[2] == "        ^"


def test_compile_a_rasp_file_with_int_tokens(capsys):
    status, out, _ = run_main(capsys, "compile", f"{SORT}:sort", "--vocab", "3,1,2",
                              "--max-seq-len", "4")
    assert status == 0
    assert "sort.rasp:sort" in out and "layers:" in out and "vocab: 1, 2, 3" in out


def test_run_and_verify_a_rasp_file(capsys):
    status, out, _ = run_main(capsys, "run", f"{SORT}:sort", "--vocab", "1,2,3",
                              "--max-seq-len", "4", "3", "1", "2", "1")
    assert status == 0 and "output: 1 1 2 3" in out
    status, out, _ = run_main(capsys, "verify", f"{SORT}:sort", "--vocab", "1,2,3",
                              "--max-seq-len", "4", "--inputs", "50")
    assert status == 0 and "all 50 inputs agree" in out


def test_rasp_target_mistakes_are_one_line(tmp_path, capsys):
    two = tmp_path / "two.rasp"
    two.write_text("a = indices + 1; b = indices + 2;\n")
    status, _, err = run_main(capsys, "compile", str(two))
    assert status == 2 and "name the s-op to compile" in err and "a, b" in err
    status, _, err = run_main(capsys, "compile", f"{two}:c")
    assert status == 2 and "binds no s-op 'c'" in err
    status, _, err = run_main(capsys, "compile", f"{SORT}:sort", "--vocab", "a,b")
    assert status == 2 and "reads tokens_int, and 'a' is not a int" in err
    status, _, err = run_main(capsys, "compile", f"{tmp_path / 'none.rasp'}:x")
    assert status == 2 and "no such RASP file" in err


REPL_SESSION = """\
brace = tokens == "{"; # a brace and a # inside strings: "}"
flip = select(indices, length - indices - 1, ==);
reverse = aggregate(flip,
                    tokens);
set example "abc"
hist = selector_width(select(tokens, tokens, ==));
x = 1 +;
3 ^ 2 ^ 2;
def twice(s) {
    return s * 2;
}
twice(indices);
compile reverse
quit
reverse;
"""


@pytest.fixture(scope="module")
def repl_output() -> str:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "raspc", "repl"], input=REPL_SESSION,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": path}, text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_repl_shows_values_on_the_running_example(repl_output):
    lines = repl_output.splitlines()
    assert "s-op: brace('hello') = [False, False, False, False, False]" in lines
    assert "selector: flip" in lines
    assert "s-op: reverse('hello') = [o, l, l, e, h]" in lines
    assert "example: ['a', 'b', 'c']" in lines
    assert "s-op: hist('abc') = [1, 1, 1]" in lines
    assert "3 ^ 2 ^ 2 = 81" in lines
    assert "function: twice(s)" in lines
    assert "s-op: twice(indices)('abc') = [0, 2, 4]" in lines


def test_repl_reports_errors_with_a_caret_and_goes_on(repl_output):
    lines = repl_output.splitlines()
    at = next(i for i, line in enumerate(lines) if "syntax error: unexpected ';'" in line)
    assert lines[at + 1:at + 3] == ["    x = 1 +;", "           ^"]


def test_repl_compiles_a_named_value_and_stops_at_quit(repl_output):
    assert "compiled reverse: 2 layers" in repl_output
    assert "model('abc') = [c, b, a]  (agrees with the evaluator)" in repl_output
    assert repl_output.count("s-op: reverse(") == 1  # nothing after `quit` ran


def test_demo_verifies_a_rasp_example_beside_its_twin(monkeypatch, capsys):
    from examples.library import EXAMPLES
    from raspc import checking

    subset = {name: EXAMPLES[name] for name in ("paper_hist", "rasp_hist")}
    monkeypatch.setattr(checking, "EXAMPLES", subset)
    status, out, _ = run_main(capsys, "demo", "--inputs", "20")
    assert status == 0 and "2/2 examples verified" in out
    assert checking._twin_mismatches({"rasp_hist": 2, "paper_hist": 1}) == [
        "rasp_hist: 2 layers, but its Python twin paper_hist has 1"]


def test_a_model_saved_from_a_rasp_file_reloads_with_its_program(tmp_path, capsys):
    saved = tmp_path / "sort.npz"
    status, _, _ = run_main(capsys, "compile", f"{SORT}:sort", "--vocab", "1,2,3",
                            "--max-seq-len", "4", "-o", saved)
    assert status == 0
    status, _, err = run_main(capsys, "verify", saved, "--inputs", "20")  # the JSON names a file
    assert status == 2 and "--program" in err and "--trust-program-source" in err
    status, out, _ = run_main(capsys, "verify", saved, "--inputs", "20", "--program",
                              f"{SORT}:sort")
    assert status == 0 and "all 20 inputs agree" in out
