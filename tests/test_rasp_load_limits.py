"""`.rasp` parsing is bounded (issue 23, "Trust"): where `load` may read, load
cycles, and the size of parse-time values.

A load reads only files under the program's own directory unless a search path
allows another; a cycle is a RaspSyntaxError naming it; integers beyond 2^63
and lists or ranges of more than a million elements are refused, before they
are built, at the expression that would build them.
"""

from __future__ import annotations

import io

import pytest

import rasp
from raspc import cli
from raspc.repl import Session, run_repl


def error_of(call, *args, **kwargs) -> rasp.RaspSyntaxError:
    with pytest.raises(rasp.RaspSyntaxError) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.fixture
def tree(tmp_path):
    """prog/main.rasp loads ../shared/lib.rasp; prog/sub/ok.rasp is inside prog/."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "lib.rasp").write_text("twice = indices + indices;\n")
    (tmp_path / "prog" / "sub").mkdir(parents=True)
    (tmp_path / "prog" / "sub" / "ok.rasp").write_text("one = indices + 1;\n")
    (tmp_path / "prog" / "main.rasp").write_text('x = indices;\nload "../shared/lib";\n'
                                                 "y = twice;\n")
    return tmp_path


def test_loads_read_beside_the_file_and_below_it(tree):
    (tree / "prog" / "near.rasp").write_text('load "sub/ok"; z = one;\n')
    assert set(rasp.parse_file(tree / "prog" / "near.rasp")) == {"one", "z"}


def test_a_load_leaving_the_programs_directory_is_refused_at_the_load(tree):
    error = error_of(rasp.parse_file, tree / "prog" / "main.rasp")
    assert (error.line, error.column) == (2, 1)
    assert error.source_line == 'load "../shared/lib";'
    assert "outside the program's directory" in error.reason
    assert "search_path=[DIR]" in error.reason and "--rasp-path DIR" in error.reason


def test_a_search_path_allows_another_directory(tree):
    found = rasp.parse_file(tree / "prog" / "main.rasp", search_path=[tree / "shared"])
    assert set(found) == {"twice", "x", "y"}  # x = indices defines x, an alias
    # a name not beside the file is also looked up in the search path
    text = 'load "lib"; w = twice;'
    assert set(rasp.parse(text, str(tree / "prog" / "t.rasp"), search_path=[tree / "shared"])) \
        == {"twice", "w"}


def test_absolute_paths_and_symlinks_out_are_refused(tree):
    error = error_of(rasp.parse, f'load "{tree / "shared" / "lib"}";',
                     str(tree / "prog" / "t.rasp"))
    assert "outside the program's directory" in error.reason
    (tree / "prog" / "link.rasp").symlink_to(tree / "shared" / "lib.rasp")
    error = error_of(rasp.parse, 'load "link";', str(tree / "prog" / "t.rasp"))
    assert "outside the program's directory" in error.reason


def test_text_loads_from_the_current_directory(tree, monkeypatch):
    monkeypatch.chdir(tree / "prog")
    assert "one" in rasp.parse('load "sub/ok";')
    assert "outside the program's directory" in error_of(rasp.parse,
                                                         'load "../shared/lib";').reason


def test_load_cycles_are_syntax_errors_naming_the_cycle(tmp_path):
    (tmp_path / "self.rasp").write_text('load "self";\n')
    error = error_of(rasp.parse_file, tmp_path / "self.rasp")
    assert "load cycle: self.rasp → self.rasp" in error.reason
    (tmp_path / "a.rasp").write_text('x = indices;\nload "b";\n')
    (tmp_path / "b.rasp").write_text('load "a";\n')
    error = error_of(rasp.parse_file, tmp_path / "a.rasp")
    assert "load cycle: a.rasp → b.rasp → a.rasp" in error.reason
    assert (error.file, error.line) == (str(tmp_path / "b.rasp"), 1)  # the load closing it


def test_a_file_loaded_twice_is_not_a_cycle(tmp_path):
    (tmp_path / "base.rasp").write_text("b = indices + 1;\n")
    (tmp_path / "left.rasp").write_text('load "base"; l = b;\n')
    (tmp_path / "right.rasp").write_text('load "base"; r = b;\n')
    (tmp_path / "top.rasp").write_text('load "left"; load "right";\n')
    assert {"l", "r"} <= set(rasp.parse_file(tmp_path / "top.rasp"))


@pytest.mark.parametrize("source, column, words", [
    ("x = 10 ^ 100000000;", 8, "100,000,001 digits, beyond 2^63"),
    ("x = 2 ^ 64;", 7, "65 bits is beyond 2^63"),
    ("x = 3037000500 * 3037000500;", 16, "beyond 2^63"),
    ("x = 99999999999999999999;", 5, "20 digits is beyond 2^63"),
    ("x = range(1000001);", 5, "1,000,001 elements, more than the limit of 1,000,000"),
    ("x = range(-9223372036854775808, 9223372036854775807);", 5, "more than the limit"),
    ("x = range(0, 5, 0);", 5, "step cannot be 0"),
    ('x = "ab" * 600000;', 10, "longer than the limit of 1,000,000"),
    ("x = [0] * 2000000;", 9, "longer than the limit of 1,000,000"),
    ("x = [1, 2];\nfor i in range(20) { x = x + x; }", 28, "longer than the limit"),
])
def test_parse_time_values_are_bounded(source, column, words):
    error = error_of(rasp.parse, source)
    assert words in error.reason and error.column == column


def test_values_at_the_limits_are_accepted():
    found = rasp.parse("big = indices + 2 ^ 63 - 1; n = len(range(1000000));\n"
                       "y = indices + n;")
    assert rasp.evaluate(found["y"], [0, 0]) == [1000000, 1000001]
    assert rasp.evaluate(found["big"], [0]) == [2 ** 63 - 1]


def test_raspc_refuses_a_load_outside_and_takes_rasp_path(tree, capsys):
    main = tree / "prog" / "main.rasp"
    status = cli.main(["compile", f"{main}:y", "--max-seq-len", "3"])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert err.startswith(f"raspc: error: {main}:2:1: load \"../shared/lib\" would read ")
    assert "--rasp-path DIR" in err
    status = cli.main(["compile", f"{main}:y", "--max-seq-len", "3",
                       "--rasp-path", str(tree / "shared")])
    assert status == 0 and "y:" in capsys.readouterr().out


def test_the_repl_loads_through_its_rasp_path(tree, monkeypatch):
    monkeypatch.chdir(tree / "prog")
    assert cli.build_parser().parse_args(["repl", "--rasp-path", "a", "--rasp-path", "b"]
                                         ).rasp_path == ["a", "b"]
    for search_path, shown in (((), "outside the program's directory"),
                               ([tree / "shared"], "s-op: twice")):
        out = io.StringIO()
        run_repl(Session(list("abc"), None, None, out=out, search_path=search_path),
                 io.StringIO('load "../shared/lib";\n'))
        assert shown in out.getvalue()
