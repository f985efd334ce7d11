"""The RASP language front end: precedence, unrolling, indexing, rounding, errors.

Expected values are worked out by hand from RASP's rules (its interpreter's
grammar orders the operators; Python's precedence would give other answers,
which the comments name).
"""

from __future__ import annotations

import pytest

import rasp
from rasp.syntax import parse_tree
from rasp.syntax_build import Interpreter


def atoms(source: str) -> list:
    """The values of the expression statements in `source` (atoms fold at parse time)."""
    return [value for _, value in Interpreter(source, "<t>").run(parse_tree(source).children)]


def values(source: str, name: str = "y", xs="abcde") -> list:
    return rasp.evaluate(rasp.parse(source)[name], list(xs))


# ------------------------------------------------------------------- precedence

@pytest.mark.parametrize("source, expected", [
    ("2 ^ 3 ^ 2;", 64),                       # ^ groups left (Python: 512)
    ("-2 ^ 2;", 4),                           # unary minus binds tightest (Python: -4)
    ("not 0 + 1;", 2),                        # unary not binds tightest (Python: False)
    ("7 % 4 * 2;", 7),                        # % is looser than * (Python: 6)
    ("2 * 3 ^ 2 % 5 + 1;", 4),                # ((2 * 9) % 5) + 1
    ("True or False and False;", False),      # and/or share a level, left to right
    ("False and True or True;", True),
    ("1 if True else 2 if False else 3;", 3),  # if-else groups left (Python: 1)
    ("0 == 1 in [False];", True),             # `in` is loosest (Python chains: False)
    ("3 > 2 > 1;", False),                    # comparisons group left (Python chains: True)
    ("10 - 3 - 2;", 5),
    ("8 / 4 / 2;", 1.0),
    ("- - 1;", 1),
    ("(1 + 2) * 3;", 9),
])
def test_precedence_and_grouping(source, expected):
    assert atoms(source) == [expected]


def test_precedence_holds_on_sequences():
    assert values("y = indices * 3 % 4 * 2;") == [(3 * i) % 8 for i in range(5)]
    assert values("y = -indices ^ 2;") == [i * i for i in range(5)]
    assert values('y = tokens == "a" or tokens == "b" and indices > 0;') == \
        [False, True, False, False, False]


# ------------------------------------------------------------------ structure

def test_for_loop_unrolls_at_parse_time():
    source = "y = indices; for k in [1, 2, 3] { y = y + k; } z = y;"
    program = rasp.parse(source)["z"]
    maps = [e for e in rasp.topological_order(program) if isinstance(e, rasp.Map)]
    assert len(maps) == 3  # one Map per iteration: no loop survives into the program
    assert rasp.evaluate(program, list("abc")) == [6, 7, 8]


def test_for_loops_nest_unpack_and_run_over_dicts():
    source = ("y = indices * 0;"
              "for a, b in zip([1, 2], [10, 20]) { for k in range(2) { y = y + a * b; } }"
              'for key in {"x": 0, "w": 0} { y = y + len(key); }')
    assert values(source, xs="ab") == [2 * (10 + 40) + 2] * 2


def test_comprehensions_run_over_a_dicts_keys():
    assert values("y = indices + [k for k in {5: 1, 7: 2}][1];", xs="ab") == [7, 8]
    assert values("y = indices + {k: k * 10 for k in {5: 1}}[5];", xs="ab") == [50, 51]


def test_def_closes_over_its_scope_and_returns_several_values():
    source = ("offset = 2;"
              "def shifted(s, k) { moved = s + k + offset; return moved, moved * 2; }"
              "a, b = shifted(indices, 1);")
    found = rasp.parse(source)
    assert rasp.evaluate(found["a"], list("abc")) == [3, 4, 5]
    assert rasp.evaluate(found["b"], list("abc")) == [6, 8, 10]


def test_parse_returns_sops_and_selectors_by_name():
    found = rasp.parse("tokens = tokens_int; k = 3; sel = select(indices, indices, <);"
                       "w = selector_width(sel); def f(x) { return x; }")
    assert list(found) == ["sel", "w"]
    assert found.input_type == "int"
    assert found["w"].label == "w"


def test_comments_and_load(tmp_path):
    (tmp_path / "lib.rasp").write_text("# a library\ndef twice(s) { return s * 2; } # end\n"
                                       "_private = indices;\n")
    main = tmp_path / "main.rasp"
    main.write_text('load "lib";\ny = twice(indices); # comment\n')
    found = rasp.parse_file(main)
    assert rasp.evaluate(found["y"], list("abc")) == [0, 2, 4]
    with pytest.raises(rasp.RaspSyntaxError, match="unknown name '_private'"):
        rasp.parse_file(tmp_path / "main.rasp").update(rasp.parse(
            'load "lib"; y = _private;', str(main)))


# ------------------------------------------------------------------- indexing

def test_indexing_constant_lists_and_dicts_by_atoms():
    assert atoms('[10, 20, 30][1]; [10, 20, 30][-1]; {"a": 1, 2: "b"}[2]; "xyz"[0];') == \
        [20, 30, "b", "x"]


def test_indexing_a_list_by_a_sequence():
    assert values("y = [10, 20, 30, 40, 50][indices];") == [10, 20, 30, 40, 50]
    assert values("y = [7, 8, 9][indices - 3];", xs="abc") == [7, 8, 9]  # -3..-1
    with pytest.raises(rasp.EvaluationError, match="out of range"):
        values("y = [7, 8][indices];", xs="abc")


def test_indexing_a_dict_by_one_or_two_sequences():
    assert values('y = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}[tokens];') == [1, 2, 3, 4, 5]
    assert values('y = {["a", 0]: "first a", ["b", 1]: "b second"}[tokens, indices];',
                  xs="ab") == ["first a", "b second"]
    with pytest.raises(rasp.EvaluationError, match="not a key"):
        values('y = {"a": 1}[tokens];', xs="ab")


def test_indexing_a_sequence_by_a_position():
    assert values("y = tokens[1];", xs="xyz") == ["y"] * 3
    assert values("y = tokens[-1];", xs="xyz") == ["z"] * 3


# ------------------------------------------------------------------- rounding

def test_round_halves_to_even():
    assert atoms("round(0.5); round(1.5); round(2.5); round(-0.5); round(-1.5); round(2.6);") \
        == [0, 2, 2, 0, -2, 3]
    assert values("y = round(indices - 0.5);") == [0, 0, 2, 2, 4]


# ------------------------------------------------------------------ semantics

def test_aggregate_numbers_is_a_mean_with_default_0():
    program = rasp.parse("y = aggregate(select(indices, indices, <), indices);")["y"]
    assert rasp.is_numerical(program)
    assert rasp.evaluate(program, list("abcd")) == [0, 0, 0.5, 1]


def test_aggregate_non_numbers_is_categorical_and_must_select_one():
    program = rasp.parse("y = aggregate(select(1, 1, ==), tokens);")["y"]
    assert rasp.is_categorical(program)
    with pytest.raises(rasp.EvaluationError, match="differing values"):
        rasp.evaluate(program, list("ab"))


def test_booleans_are_0_1_in_arithmetic():
    assert values('y = (tokens == "a") + (tokens == "a") * 2 - (indices > 2);') == \
        [3, 0, 0, -1, -1]


# --------------------------------------------------------------------- errors

def error_of(source: str) -> rasp.RaspSyntaxError:
    with pytest.raises(rasp.RaspSyntaxError) as caught:
        rasp.parse(source, "prog.rasp")
    return caught.value


def test_syntax_error_has_position_caret_and_expectation():
    error = error_of("x = 1;\ny = (indices + );\n")
    assert isinstance(error, rasp.RaspError)
    assert (error.file, error.line, error.column) == ("prog.rasp", 2, 16)
    assert error.source_line == "y = (indices + );"
    assert "a name" in error.expected and "'('" in error.expected
    assert str(error).splitlines() == [
        "prog.rasp:2:16: syntax error: unexpected ')'; expected " + error.expected,
        "    y = (indices + );", "                   ^"]


def test_missing_semicolon_and_stray_character():
    assert "';'" in error_of("y = indices\nz = 1;").expected
    error = error_of("y = indices $ 1;")
    assert (error.line, error.column) == (1, 13)
    assert "unexpected character '$'" in str(error)


def test_unknown_name_suggests_a_close_one():
    error = error_of("y = indcies + 1;")
    assert (error.line, error.column) == (1, 5)
    assert "unknown name 'indcies' (did you mean 'indices'?)" in str(error)


@pytest.mark.parametrize("source, message", [
    ("y = aggregate(select(indices, indices, ==));", "aggregate takes 2 or 3 arguments, got 1"),
    ("y = selector_width();", "selector_width takes 1 argument, got 0"),
    ("def f(a, b) { return a; } y = f(indices);", "f takes 2 argument(s), got 1"),
    ("def f() { return indices, length; } y = f() + 1;", "2 returned values"),
    ("a, b = indices;", "2 names but 1 values"),
])
def test_wrong_arity(source, message):
    assert message in str(error_of(source))


@pytest.mark.parametrize("source, message, column", [
    ("y = tokens - 1;", "cannot apply - to str and int", 12),
    ("y = tokens < indices;", "cannot order str against int", 12),
    ("y = aggregate(indices, tokens);", "aggregate's first argument must be a selector", 5),
    ("y = select(indices, indices, ==) + 1;", "a selector has no elementwise value", 34),
    ("y = select(indices, indices, ==) and indices;", "a selector and an s-op", 34),
    ("y = select([1], indices, ==);", "select's keys must be an s-op or an atom", 5),
    ("y = round(tokens);", "cannot round a string", 5),
    ("y = indicator(1);", "indicator takes an s-op", 5),
    ("for x in 3 { y = x; }", "a for loop runs over a list or dict", 10),
    ("y = [x for x in 3];", "a comprehension runs over a list or dict, got an int", 17),
    ("y = {x: 1 for x in 3};", "a comprehension runs over a list or dict, got an int", 20),
    ('y = aggregate(select(indices, indices, <), indices, "-");', "of a mean of numbers", 5),
])
def test_type_errors(source, message, column):
    error = error_of(source)
    assert message in str(error) and error.column == column


@pytest.mark.parametrize("source, message", [
    ("y = tokens[indices];", "an s-op is indexed by one int"),
    ("a = tokens_str; b = tokens_int + 1;", "cannot also read them as int"),
    ("def f(x) { return f(x); } y = f(1);", "calls nest deeper than 100"),
    ('load "no_such_file";', "no RASP file"),
    ("draw(indices);", "draw (the RASP interpreter's drawing of a computation flow)"),
    ("def = 3;", "syntax error"),
])
def test_unsupported_constructs(source, message):
    assert message in str(error_of(source))
