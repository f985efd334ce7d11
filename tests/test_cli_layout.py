"""`raspc compile|run|verify ... --prefer depth|params --no-fuse` (issue 30).

The program is the wide shape of tests/test_prefer_and_fuse.py: fused by default into
one MLP of 10·10 units; with --prefer params, two layers of 2 and 20 units.
"""

from __future__ import annotations

import re

import pytest

from raspc import cli
from tests.test_cli import raspc

PROGRAM = '''
import rasp

def parity_mix():
    parity = rasp.Map(lambda t: t % 2, rasp.tokens).named("parity")
    return rasp.SequenceMap(lambda p, i: (p + i) % 3, parity, rasp.indices).named("mix")
'''
SETTINGS = ("--vocab", ",".join(map(str, range(10))), "--max-seq-len", "10")


def mlp_widths(stdout: str) -> str:
    return re.search(r"MLP widths: +([\d, ]+)\n", stdout).group(1).strip()


def test_prefer_params_through_python_m_raspc(tmp_path):
    (tmp_path / "mix.py").write_text(PROGRAM)
    result = raspc("compile", f"{tmp_path / 'mix.py'}:parity_mix", *SETTINGS,
                   "--prefer", "params")
    assert result.returncode == 0, result.stderr
    assert re.search(r"layers: +2\n", result.stdout) and mlp_widths(result.stdout) == "2, 20"


def test_the_default_fuses_and_no_fuse_gives_one_block_per_sop(tmp_path, capsys):
    (tmp_path / "mix.py").write_text(PROGRAM)
    target = f"{tmp_path / 'mix.py'}:parity_mix"
    assert cli.main(["compile", target, *SETTINGS]) == 0
    assert mlp_widths(capsys.readouterr().out) == "100"
    assert cli.main(["compile", target, *SETTINGS, "--no-fuse"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"layers: +2\n", out) and "parity" in out and "mix" in out
    assert cli.main(["verify", target, *SETTINGS, "--no-fuse", "--prefer", "params",
                     "--inputs", "20"]) == 0


def test_layout_flags_are_refused_for_a_saved_model_and_bad_choices(tmp_path, capsys):
    assert cli.main(["compile", "reverse", "-o", str(tmp_path / "r.npz")]) == 0
    capsys.readouterr()
    assert cli.main(["run", str(tmp_path / "r.npz"), "--no-fuse", "a", "b"]) == 2
    assert "--no-fuse apply when compiling, not to a saved model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refusal:
        cli.main(["compile", "reverse", "--prefer", "speed"])
    assert refusal.value.code == 2 and "invalid choice: 'speed'" in capsys.readouterr().err
