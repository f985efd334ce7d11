"""What a newcomer tripped on (issue 26): each fixed, through the entry point they used."""

from __future__ import annotations

import inspect
import io

import pytest

import rasp
from compiler import compile_rasp_to_model
from examples.programs import make_reverse
from raspc.cli import main
from raspc.repl import Session, run_repl


def test_aliasing_a_builtin_defines_the_name():
    found = rasp.parse('x = tokens; y = x == "a"; n = length;')
    assert found["x"] is rasp.tokens and found["n"] is rasp.length
    assert rasp.evaluate(found["y"], ["a", "b"]) == [True, False]


def test_rebinding_tokens_to_its_typed_form_still_names_nothing_new():
    found = rasp.parse("tokens = tokens_int; y = tokens + 1;")
    assert "tokens" not in found and found.input_type == "int"
    assert rasp.evaluate(found["y"], [1, 2]) == [2, 3]


def test_evaluate_refuses_a_leading_bos():
    assert rasp.evaluate(make_reverse(rasp.tokens), ["a", "b"]) == ["b", "a"]
    with pytest.raises(rasp.EvaluationError, match="drop the leading BOS"):
        rasp.evaluate(make_reverse(rasp.tokens), ["BOS", "a", "b"])


def test_compress_refuses_a_width_wider_than_the_model():
    from interp.compress import compress

    model = compile_rasp_to_model(make_reverse(rasp.tokens), {"a", "b"}, 3)
    wide = model.config.d_model + 1
    with pytest.raises(ValueError, match=f"dim {wide} is wider than the model"):
        compress(model, wide, progress=False)


def test_report_creates_its_directory(tmp_path, capsys):
    out = tmp_path / "new" / "dir" / "r.html"
    assert main(["report", "length", "--max-seq-len", "3", "-o", str(out)]) == 0
    assert out.is_file() and "<html" in out.read_text(encoding="utf-8").lower()


def _repl(text: str, example=("a", "b")) -> list[str]:
    out = io.StringIO()
    run_repl(Session(list(example), None, None, out=out), io.StringIO(text))
    return out.getvalue().splitlines()


def test_repl_hints_at_a_missing_semicolon_and_quit_still_leaves():
    lines = _repl("x = tokens\nquit\ny = tokens;\n")
    assert "(the statement goes on until a ';'; `help` lists the commands)" in lines
    assert "(left with an unfinished statement, not run: it lacks a ';')" in lines
    assert not any(line.startswith("s-op:") for line in lines)  # nothing ran after quit


class _InterruptedOnce(io.StringIO):
    """A stream whose second read is a Ctrl-C."""

    def __init__(self, text):
        super().__init__(text)
        self.reads = 0

    def readline(self, *args):
        self.reads += 1
        if self.reads == 2:
            raise KeyboardInterrupt
        return super().readline(*args)


def test_ctrl_c_cancels_the_line_and_keeps_definitions():
    out = io.StringIO()
    session = Session(["a", "b"], None, None, out=out)
    run_repl(session, _InterruptedOnce("x = tokens;\nnames\n"))
    lines = out.getvalue().splitlines()
    assert any("definitions are kept" in line for line in lines)
    assert lines[-1] == "x"  # `names`, after the interrupt, still knows x


def test_repl_compiles_a_partial_program_without_a_raw_warning(recwarn):
    lines = _repl("tokens = tokens_int;\nf = 6 / (tokens - 1);\ncompile f\n", example=(1, 2))
    assert "compiled f: 1 layer, d_model" in "\n".join(lines)
    assert any(line.startswith("warning: the program is partial:") for line in lines)
    assert any("the evaluator has no value on this example" in line for line in lines)
    assert not any("DISAGREES" in line for line in lines)
    assert not [w for w in recwarn if issubclass(w.category, rasp.CompileWarning)]


def test_operators_name_what_they_compute():
    assert (rasp.tokens > 2).label == "tokens_gt_2"
    assert (rasp.tokens == "a").label == "tokens_eq_a"
    assert (rasp.indices + rasp.length).label == "indices_plus_length"
    assert (rasp.tokens == "(").label.startswith("map_")  # punctuation would read alike
    assert (rasp.tokens > 2).named("big").label == "big"
    assert rasp.Map(lambda x: x, rasp.tokens).label.startswith("map_")


def test_rasp_text_names_its_unnamed_values_after_their_source():
    found = rasp.parse("balance = numerical(aggregate(select(indices, indices, <=), "
                       "indicator(tokens == \"a\")));\n"
                       "flag = indicator(balance < 0) + 1;")
    labels = [e.label for e in rasp.topological_order(found["flag"])]
    assert "indicator_balance_lt_0" in labels and "indicator_tokens_eq_a" in labels
    assert not [label for label in labels if label.startswith("map_")]


def test_listings_show_lambdas_by_place_and_rasp_maps_as_written():
    from interp.plots_graphs import describe_expr

    select = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k < q)
    line = inspect.currentframe().f_lineno - 1
    shown = describe_expr(select, {rasp.tokens.unique_id: "tokens"})
    assert shown == f"Select(tokens, tokens, lambda at test_newcomer_fixes.py:{line})"
    flag = rasp.parse("flag = tokens == \"a\";")["flag"]
    assert describe_expr(flag, {rasp.tokens.unique_id: "tokens"}) == 'tokens == "a"'
