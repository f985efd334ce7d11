"""Values are finite and typed, and a forked child never hangs (issue 23, "Trust").

Through the real entry points: a value a model cannot hold (NaN anywhere; for a
numerical SOp, a number outside float32's finite range) is refused at compile time
naming the expression and the value; a vocabulary holding NaN, or tokens equal across
types (True, 1, 1.0), is refused; input tokens are matched by type as well as value;
and running a model in a child forked after jax ran raises ForkError instead of hanging.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import rasp
from compiler import compile_rasp_to_model
from rasp.errors import CompileError, InputError
from rasp_runtime.model import CompiledModel

ROOT = Path(__file__).resolve().parents[1]
NAN = float("nan")


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONIOENCODING": "utf-8"}


@pytest.mark.parametrize("bad", [NAN, float("inf"), 1e300, -1e39, 10 ** 400])
def test_a_numerical_value_float32_cannot_hold_is_refused(bad):
    program = rasp.numerical(rasp.Map(lambda x: bad if x == "a" else 1.5, rasp.tokens))
    with pytest.raises(CompileError) as caught:
        compile_rasp_to_model(program, {"a", "b"}, 3)
    assert caught.value.label == program.label
    assert repr(bad)[:12] in caught.value.reason  # 10 ** 400 is shown by its first digits
    assert ("float32" if bad == bad else "equals nothing") in caught.value.reason
    assert caught.value.hint


def test_the_largest_float32_is_fine_and_exact():
    largest = float(np.finfo(np.float32).max)
    program = rasp.numerical(rasp.Map(lambda x: largest if x == "a" else -1.5, rasp.tokens))
    model = compile_rasp_to_model(program, {"a", "b"}, 3)
    assert model.apply(["BOS", "a", "b"]).decoded == ["BOS", largest, -1.5]


def test_a_categorical_nan_is_refused_naming_the_map():
    program = rasp.categorical(rasp.Map(lambda x: NAN if x == "a" else 1.5, rasp.tokens))
    with pytest.raises(CompileError, match="equals nothing") as caught:
        compile_rasp_to_model(program, {"a", "b"}, 3)
    assert caught.value.label == program.label


def test_a_nan_averaged_is_a_compile_error_not_a_raw_value_error():
    step = rasp.numerical(rasp.Map(lambda x: NAN if x == "a" else 1.0, rasp.tokens))
    mean = rasp.numerical(rasp.Aggregate(
        rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ), step, default=0))
    with pytest.raises(CompileError) as caught:
        compile_rasp_to_model(mean, {"a", "b"}, 3)
    assert caught.value.label == step.label


@pytest.mark.parametrize("vocab", [{1.0, NAN}, [(1, NAN), (2, 3)]])
def test_a_nan_vocabulary_is_refused(vocab):
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices,
                                                     rasp.Comparison.LEQ),
                                         rasp.numerical(rasp.Map(lambda x: 1, rasp.tokens)),
                                         default=0))
    with pytest.raises(CompileError, match=r"vocabulary holds .*nan.*equals nothing"):
        compile_rasp_to_model(mean, vocab, 3)


def test_infinite_tokens_are_fine_as_labels_but_not_as_numbers(tmp_path):
    vocab = {float("inf"), float("-inf"), 1.5}
    program = rasp.Map(lambda x: x > 0, rasp.tokens)
    model = compile_rasp_to_model(program, vocab, 3)
    model.save(tmp_path / "m.npz")
    loaded = CompiledModel.load(tmp_path / "m.npz")
    xs = [float("-inf"), 1.5, float("inf")]
    assert loaded.apply(["BOS", *xs]).decoded[1:] == [False, True, True]
    with pytest.raises(CompileError, match="'tokens'.*inf is not representable in float32"):
        compile_rasp_to_model(rasp.numerical(rasp.Map(lambda x: x, rasp.numerical(
            rasp.tokens))), vocab, 3)


def test_values_float32_merges_are_refused_where_a_reader_tells_them_apart():
    near = 1.0 + 1e-12  # a different float64, the same float32
    number = rasp.numerical(rasp.Map(lambda x: near if x == "a" else 1.0, rasp.tokens))
    # an Aggregate keeps the number in the residual stream (a Map of a Map would fuse)
    held = rasp.numerical(rasp.Aggregate(
        rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ), number, default=0))
    tells_apart = rasp.Map(lambda v: v > 1.0, held)
    with pytest.raises(CompileError, match="too close for float32") as caught:
        compile_rasp_to_model(tells_apart, {"a", "b"}, 3)
    assert caught.value.label == tells_apart.label
    alike = rasp.Map(lambda v: v > 0.5, held)
    model = compile_rasp_to_model(alike, {"a", "b"}, 3)
    assert model.apply(["BOS", "a", "b"]).decoded == ["BOS", True, True]


@pytest.mark.parametrize("vocab, first, second", [
    ([True, 1, 2, False, 0], "True", "1"), ([1, 1.0], "1", "1.0"),
    ([(1, 2), (1.0, 2)], "(1, 2)", "(1.0, 2)")])
def test_tokens_equal_across_types_are_refused(vocab, first, second):
    with pytest.raises(CompileError) as caught:
        compile_rasp_to_model(rasp.Map(lambda x: x, rasp.tokens), vocab, 3)
    assert f"tokens {first} and {second} are equal" in caught.value.reason


@pytest.fixture(scope="module")
def type_name_model():
    """A type-sensitive Map over int tokens: True would give 'bool' in the evaluator."""
    program = rasp.Map(lambda x: type(x).__name__, rasp.tokens)
    return program, compile_rasp_to_model(program, {1, 2, 3}, 4)


@pytest.mark.parametrize("token", [True, 1.0, np.float64(2.0), np.bool_(True)])
def test_inputs_are_matched_by_type(type_name_model, token):
    _, model = type_name_model
    shown = re.escape(repr(token))
    with pytest.raises(InputError, match=rf"token {shown} at position 2 .*match by type"):
        model.apply(["BOS", 3, token])
    with pytest.raises(InputError, match=rf"token {shown} at position 2 "):
        model.apply_batch([["BOS", 1], ["BOS", 3, token]])
    with pytest.raises(KeyError):
        model.input_encoder.encode(["BOS", token])


def test_numpy_ints_stand_for_int_tokens(type_name_model):
    program, model = type_name_model
    tokens = [np.int64(3), 1, np.int32(2)]
    expected = rasp.evaluate(program, [int(t) for t in tokens])
    assert model.apply(["BOS", *tokens]).decoded[1:] == expected == ["int"] * 3
    assert model.apply_batch([["BOS", *tokens]]) == [["BOS", *expected]]


def test_numpy_strings_stand_for_str_tokens():
    model = compile_rasp_to_model(rasp.Map(str.upper, rasp.tokens), {"a", "b"}, 3)
    tokens = ["BOS", np.str_("a"), "b"]
    assert model.apply(tokens).decoded == model.apply_batch([tokens])[0] == ["BOS", "A", "B"]
    with pytest.raises(InputError, match="token 1 at position 1"):
        model.apply_batch([["BOS", 1]])


def test_raspc_refuses_a_vocab_float32_cannot_hold(tmp_path):
    (tmp_path / "prog.py").write_text(textwrap.dedent('''
        import rasp

        def make_double(max_seq_len):
            return rasp.numerical(rasp.Map(lambda x: 2 * x, rasp.tokens)).named("double")
    '''))
    result = subprocess.run(
        [sys.executable, "-m", "raspc", "compile", f"{tmp_path / 'prog.py'}:make_double",
         "--vocab", "1,2,2e38", "--max-seq-len", "3", "-o", tmp_path / "m.npz"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot compile 'double': its value 4e+38 is not representable in float32" \
        in result.stderr


FORKED_POOL = '''
import multiprocessing, rasp
from concurrent.futures import ProcessPoolExecutor
from compiler import compile_rasp_to_model

model = compile_rasp_to_model(rasp.Map(lambda x: x + 1, rasp.tokens), {1, 2, 3}, 4)
fork = multiprocessing.get_context("fork")

def one():
    return model.apply(["BOS", 1]).decoded

def batch():
    return model.apply_batch([["BOS", 1]])

with ProcessPoolExecutor(1, mp_context=fork) as pool:  # forked before jax ran: fine
    print("before", pool.submit(one).result())
print("parent", model.apply(["BOS", 1, 2]).decoded)
with ProcessPoolExecutor(2, mp_context=fork) as pool:
    for future in [pool.submit(one), pool.submit(batch)]:
        try:
            print("ran", future.result())
        except rasp.ForkError as error:
            print("ForkError", error)
'''


def test_a_pool_forked_after_jax_ran_gets_a_fork_error_instead_of_hanging():
    # timeout: the guarantee is that it never hangs, not how fast it is
    result = subprocess.run([sys.executable, "-c", FORKED_POOL], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["before ['BOS', 2]", "parent ['BOS', 2, 3]"]
    assert len(lines) == 4
    for line in lines[2:]:
        assert line.startswith("ForkError this process")
        assert "forked" in line and "spawn" in line and "get_context('spawn')" in line
