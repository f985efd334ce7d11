"""Every bad input gets one clear line of our own error type saying what to do.

Each mistake goes through the real entry point: the Python API, `raspc.cli.main`
in-process, or `python -m raspc` where the wall time itself is under test.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import rasp
from compiler import CompiledModel, compile_rasp_to_model
from rasp_runtime.serialize import ModelFileError
from raspc import cli
from tests.test_cli import assert_clean_error, raspc

ROOT = Path(__file__).resolve().parent.parent

TENTH = '''
import rasp

def tenth():
    return rasp.Map(lambda x: 10 // x, rasp.tokens).named("tenth")
'''


@pytest.fixture(scope="module")
def reverse_model():
    return compile_rasp_to_model(rasp.Aggregate(
        rasp.Select(rasp.indices, rasp.length - rasp.indices - 1, rasp.EQ), rasp.tokens),
        {"a", "b"}, 3)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("raspc: error: ") and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ Python API
def test_an_unhashable_vocab_says_to_use_tuples():
    with pytest.raises(rasp.CompileError) as refused:
        compile_rasp_to_model(rasp.tokens, [[1, 2], [3]], 3)
    message = str(refused.value)
    assert "hashable" in message and "[1, 2]" in message and "tuples" in message


def test_an_unknown_token_shows_the_vocabulary_quoted_once(reverse_model):
    with pytest.raises(rasp.InputError) as bad:
        reverse_model.apply(["BOS", "a", "z"])
    message = str(bad.value)
    assert "token 'z' at position 2" in message and "{'a', 'b'}" in message
    assert "\"'a'\"" not in message


def test_a_str_token_for_an_int_vocabulary_says_an_int_was_expected():
    model = compile_rasp_to_model(rasp.tokens, {1, 2}, 3)
    with pytest.raises(rasp.InputError) as bad:
        model.apply(["BOS", "1"])
    message = str(bad.value)
    assert "int tokens" in message and "pass 1, not '1'" in message


def test_a_garbage_npz_is_a_model_file_error(tmp_path, reverse_model, capsys):
    reverse_model.save(tmp_path / "m.npz")
    (tmp_path / "m.npz").write_bytes(b"not a zip file" * 20)
    with pytest.raises(ModelFileError) as bad:
        CompiledModel.load(tmp_path / "m.npz")
    assert "not a parameter file" in str(bad.value) and "pickle" not in str(bad.value)
    assert cli.main(["run", str(tmp_path / "m.npz"), "a"]) == 2
    err = one_line_error(capsys)
    assert "save the model again" in err and "pickle" not in err


# ------------------------------------------------------------------ raspc
def test_a_missing_function_name_shows_the_right_hint(tmp_path, capsys):
    (tmp_path / "good.py").write_text(TENTH)
    assert cli.main(["compile", f"{tmp_path / 'good.py'}:"]) == 2
    err = one_line_error(capsys)
    assert "good.py:FUNCTION" in err and "::" not in err


@pytest.mark.parametrize("argv, output", [
    (["run", "sort", "--vocab", "-1,2,3", "3", "-1", "2"], "output: -1 2 3"),
    (["run", "sort", "--vocab", "1.5,2,3", "3", "1.5", "2"], "output: 1.5 2 3"),
    (["run", "reverse", "--vocab", "-2,-1", "-1", "-2", "-2"], "output: -2 -2 -1"),
])
def test_vocab_takes_negative_and_float_numbers(argv, output, capsys):
    assert cli.main(argv) == 0
    assert output in capsys.readouterr().out


def test_run_never_prints_none_from_a_raising_function(tmp_path, capsys):
    (tmp_path / "p.py").write_text(TENTH)
    program = f"{tmp_path / 'p.py'}:tenth"
    assert cli.main(["run", program, "--vocab", "0,1,2", "1", "0"]) == 2
    captured = capsys.readouterr()
    assert "output:" not in captured.out
    assert captured.err.count("raspc: warning: the program is partial: 'tenth' raises") == 1
    assert "raspc: error: input [1, 0] is outside the program's domain ('tenth' raises)" in \
        captured.err and "Traceback" not in captured.err
    assert cli.main(["run", program, "--vocab", "0,1,2", "1", "2"]) == 0
    assert "output: 10 5" in capsys.readouterr().out
    assert cli.main(["run", program, "--vocab", "0,1,2", "--strict", "1"]) == 1
    assert "strict=True" in one_line_error(capsys)


def test_run_exits_non_zero_on_an_ambiguous_selection(capsys):
    assert cli.main(["run", "sort", "--vocab", "1.5,2,3", "2", "2", "2", "2", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "'sort' selects differing values" in err and "Traceback" not in err


def test_verify_fails_clearly_when_no_input_is_valid(capsys):
    # Proven empty ('unique_keys' adds a number to each letter): refused at compile.
    assert cli.main(["verify", "sort", "--vocab", "a,b,c", "--inputs", "30"]) == 1
    err = one_line_error(capsys)
    assert "no input of this vocabulary is valid: 'unique_keys' raises TypeError" in err


def test_verify_reports_the_share_outside_the_domain(capsys):
    assert cli.main(["verify", "sort", "--vocab", "1.5,2,3", "--inputs", "200"]) == 0
    out = capsys.readouterr().out
    share = re.search(r"(\d+) of 200 sampled inputs \(([\d.]+)%\) are outside the program's "
                      r"domain: 'sort' selects differing values \((\d+)\)", out)
    assert share and share.group(1) == share.group(3) and int(share.group(1)) > 0
    assert f"✓ all {200 - int(share.group(1))} inputs inside the program's domain agree" in out


def test_compile_time_is_the_wall_time_of_compiling():
    """Importing the compiler is part of what the user waits for: it is counted. In a
    fresh process where raspc's command line is loaded but the compiler is not, the
    reported time is most of the command's own wall time (Python's start-up, which the
    command cannot see, is left out of both)."""
    code = ("import contextlib, io, sys, time\n"
            "from raspc import cli\n"
            "assert 'compiler' not in sys.modules, 'raspc loads the compiler up front'\n"
            "out = io.StringIO()\n"
            "start = time.perf_counter()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    assert cli.main(['compile', 'reverse']) == 0\n"
            "print(time.perf_counter() - start)\n"
            "print(out.getvalue())\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    wall = float(result.stdout.splitlines()[0])
    seconds = float(re.search(r"compiled in ([\d.]+)s \(wall time", result.stdout).group(1))
    assert 0.5 * wall <= seconds <= wall


def test_compile_prints_the_domain_warning_on_one_line():
    result = raspc("compile", "sort_unique")
    assert result.returncode == 0
    lines = result.stderr.strip().splitlines()
    assert lines == ["raspc: warning: the program is partial: 'sort' is a categorical "
                     "Aggregate whose selector 'sel_new' = Select(target_pos, indices, EQ) may "
                     "select several keys with differing values"]
    assert_clean_error(raspc("compile", "sort_unique", "--strict"), 1, "strict=True", "'sort'")


def test_the_python_warning_is_one_compile_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compile_rasp_to_model(rasp.Map(lambda x: 1 / x, rasp.tokens), {0, 1}, 2)
    assert [w.category for w in caught] == [rasp.CompileWarning]
    assert issubclass(rasp.CompileWarning, UserWarning)


def test_a_saved_partial_model_says_its_input_cannot_be_checked(tmp_path, capsys):
    assert cli.main(["compile", "sort_unique", "--max-seq-len", "3", "-o",
                     str(tmp_path / "s.npz")]) == 0
    capsys.readouterr()
    assert cli.main(["run", str(tmp_path / "s.npz"), "3", "1", "2"]) == 0
    captured = capsys.readouterr()
    assert "output: 1 2 3" in captured.out
    assert "'sel_new' = Select(target_pos, indices, EQ)" in captured.err
    assert "no program to check the input against" in captured.err
    assert cli.main(["run", str(tmp_path / "s.npz"), "--strict", "3"]) == 1
    assert "--strict" in one_line_error(capsys)
