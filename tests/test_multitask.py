"""Several tasks in one model (compiler.multitask): exact per task, per-task truth, CLI."""

import random

import pytest

import rasp
from compiler import CompileError, compile_rasp_to_model
from examples.multitask import TASK_EXAMPLES

N = 5
SIX = TASK_EXAMPLES["six_tasks"]


@pytest.fixture(scope="module")
def six():
    programs = SIX.build(N)
    return programs, compile_rasp_to_model(programs, SIX.vocab, N)


def _reference(programs, task, xs):
    """The task's own program on xs, evaluated as written (not the rewrite)."""
    return rasp.evaluate(programs[task], xs)


def test_every_task_is_exact_on_random_inputs(six):
    programs, model = six
    assert model.config.tasks == tuple(programs)
    rng = random.Random(0)
    for task in programs:
        for _ in range(25):
            raw = SIX.sample(rng, task, N)
            decoded = model.apply(["BOS", *raw]).decoded
            assert decoded[2:] == _reference(programs, task, raw[1:]), (task, raw)


def test_hand_checked_outputs(six):
    _, model = six
    run = lambda task, xs: model.apply(["BOS", task, *xs]).decoded[2:]  # noqa: E731
    assert run("reverse", "abc") == ["c", "b", "a"]
    assert run("hist", "abca") == [2, 1, 1, 2]
    assert run("length", "ab") == [2, 2]
    assert run("previous_token", "abc") == [None, "a", "b"]
    assert run("sort_freq", "bab") == ["b", "b", "a"]


def test_shared_sops_are_one_component(six):
    """hist is one SOp of three tasks and the length one of two: one head computes each."""
    _, model = six
    heads = [e for c in model.components if c.kind == "attn" for e in c.info.exprs]
    assert heads.count("hist") == 1
    assert heads.count("multitask.width") == 1  # the length, shifted past the task token
    assert "same_tok" not in heads and "length" not in heads


def test_layer_norm_compiles_exactly():
    programs = {name: SIX.build(N)[name] for name in ("reverse", "hist")}
    model = compile_rasp_to_model(programs, SIX.vocab, N, layer_norm=True)
    for task, xs in [("reverse", "abcab"), ("hist", "aab"), ("reverse", "c")]:
        assert model.apply(["BOS", task, *xs]).decoded[2:] == \
            _reference(programs, task, list(xs))


@pytest.mark.parametrize("programs, message", [
    ({}, "non-empty dict"),
    ({"a": rasp.tokens}, "is also a token"),
    ({"n": rasp.numerical(rasp.Map(lambda t: 1, rasp.tokens))}, "numerical output"),
    ({"x": 3}, "must be a RASP SOp"),
])
def test_bad_task_dicts_are_refused_in_one_line(programs, message):
    with pytest.raises(CompileError, match=message) as caught:
        compile_rasp_to_model(programs, ["a", "b"], 3)
    assert "\n" not in str(caught.value).split("\n  hint")[0]


def test_save_and_load_keep_the_tasks(six, tmp_path):
    programs, model = six
    from compiler import CompiledModel
    model.save(tmp_path / "six.npz")
    loaded = CompiledModel.load(tmp_path / "six.npz")
    assert loaded.config.tasks == tuple(programs)
    xs = ["c", "a", "c"]
    for task in programs:
        assert loaded.apply(["BOS", task, *xs]).decoded[2:] == _reference(programs, task, xs)
    assert {c.id for c in loaded.ground_truth.for_task("hist").components} == \
        {c.id for c in model.ground_truth.for_task("hist").components}


def test_cli_compiles_several_targets_with_tasks(tmp_path, capsys):
    from raspc.cli import main
    out = tmp_path / "m.npz"
    assert main(["compile", "reverse", "hist", "--tasks", "--max-seq-len", "3",
                 "-o", str(out)]) == 0
    assert "tasks: reverse, hist" in capsys.readouterr().out
    from compiler import CompiledModel
    model = CompiledModel.load(out)
    assert model.apply(["BOS", "reverse", "a", "b", "c"]).decoded[2:] == ["c", "b", "a"]
    assert model.apply(["BOS", "hist", "a", "b", "a"]).decoded[2:] == [2, 1, 2]
    assert main(["compile", "reverse", "hist"]) == 2
    assert "only with --tasks" in capsys.readouterr().err
