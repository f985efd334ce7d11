"""Opening a saved model never runs code it names (issue 23, "Trust").

A model's JSON records where its program came from; whoever writes the file
chooses that path. Here it names `payload.py`, which writes a marker file when
imported. Every command that opens the model must leave the marker unwritten,
except `--trust-program-source`, whose point is to import it. The tampered model
is written through `CompiledModel.save` (so it is as valid, checksums included,
as one an attacker would send) with `source` set to the payload, which is what
editing the saved JSON does. Commands run in-process through `raspc.cli.main`;
one runs as a real `python -m raspc` subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import CompiledModel, compile_rasp_to_model
from raspc import cli

ROOT = Path(__file__).resolve().parents[1]
MAX_SEQ_LEN = 4
CLEAN = '''
import rasp

def build(max_seq_len):
    """Each token twice."""
    return rasp.Map(lambda x: x + x, rasp.tokens).named("doubled")
'''
PAYLOAD = '''
from pathlib import Path
Path(__file__).with_name("MARKER").write_text("the payload ran")
''' + CLEAN


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """payload.py, clean.py (the same program, harmless) and model.npz, whose JSON says
    it was compiled from payload.py:build."""
    folder = tmp_path_factory.mktemp("trust")
    (folder / "payload.py").write_text(PAYLOAD)
    (folder / "clean.py").write_text(CLEAN)
    namespace: dict = {}
    exec(CLEAN, namespace)  # noqa: S102  the harmless program, built here
    model = compile_rasp_to_model(namespace["build"](MAX_SEQ_LEN), ("a", "b"), MAX_SEQ_LEN)
    model.source = {"kind": "file", "file": str(folder / "payload.py"), "function": "build",
                    "args": [MAX_SEQ_LEN]}
    model.save(folder / "model.npz", "doubled: each token twice")
    return folder


@pytest.fixture
def marker(folder) -> Path:
    """The file the payload writes when imported; absent before each test."""
    path = folder / "MARKER"
    path.unlink(missing_ok=True)
    yield path
    path.unlink(missing_ok=True)


def raspc(capsys, *args) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_run_export_report_and_plot_open_the_model_without_importing(folder, marker, capsys):
    model = folder / "model.npz"
    for args in (["run", model, "a", "b"],
                 ["export", model, "-o", folder / "exported"],
                 ["report", model, "-o", folder / "report.html"],
                 ["plot", model, "--kind", "residuals", "-o", folder / "plot.png"]):
        status, _, err = raspc(capsys, *args)
        assert (status, err) == (0, ""), args
        assert not marker.exists(), args
    # the export directory records the same source, and opening it imports nothing either
    exported = folder / "exported" / "rasp_model.npz"
    assert CompiledModel.load(folder / "exported").source["file"].endswith("payload.py")
    assert raspc(capsys, "run", exported, "a")[0] == 0
    assert raspc(capsys, "verify", exported)[0] == 2
    assert not marker.exists()


@pytest.mark.parametrize("command", [["verify"], ["compress", "--dim", "2"], ["compile"]])
def test_rebuilding_the_program_is_refused_without_a_flag(command, folder, marker, capsys):
    status, out, err = raspc(capsys, command[0], folder / "model.npz", *command[1:])
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("raspc: error: ") and "payload.py:build" in err
    assert "--program FILE.py:FUNCTION" in err and "--trust-program-source" in err
    assert not marker.exists()


def test_a_recorded_rasp_file_also_needs_a_flag(folder, marker, tmp_path, capsys):
    model = CompiledModel.load(folder / "model.npz")
    model.source = {"kind": "rasp", "file": "/etc/passwd", "name": "x"}
    model.save(tmp_path / "rasp.npz")
    status, _, err = raspc(capsys, "verify", tmp_path / "rasp.npz")
    assert status == 2 and "--program" in err and "--trust-program-source" in err


def test_an_example_name_is_looked_up_never_imported(folder, marker, tmp_path, capsys):
    model = CompiledModel.load(folder / "model.npz")
    model.source = {"kind": "example", "name": f"{folder / 'payload.py'}:build"}
    model.save(tmp_path / "named.npz")
    status, _, err = raspc(capsys, "verify", tmp_path / "named.npz")
    assert status == 2 and "which no longer exists" in err and not marker.exists()


def test_a_saved_example_model_still_verifies(tmp_path, capsys):
    path = tmp_path / "reverse.npz"
    assert raspc(capsys, "compile", "reverse", "--max-seq-len", MAX_SEQ_LEN, "-o", path)[0] == 0
    status, out, _ = raspc(capsys, "verify", path, "--inputs", "20")
    assert status == 0 and "✓ all 20 inputs agree" in out


def test_program_names_the_file_to_rebuild_from(folder, marker, capsys):
    status, out, _ = raspc(capsys, "verify", folder / "model.npz", "--inputs", "20",
                           "--program", f"{folder / 'clean.py'}:build")
    assert status == 0 and "✓ all 20 inputs agree" in out
    assert not marker.exists()
    # the rebuilt program must still match the saved one
    status, _, err = raspc(capsys, "verify", folder / "model.npz", "--program", "reverse")
    assert status == 2 and "no longer matches" in err


def test_trust_program_source_imports_the_recorded_file(folder, marker, capsys):
    status, out, _ = raspc(capsys, "verify", folder / "model.npz", "--inputs", "20",
                           "--trust-program-source")
    assert status == 0 and "✓ all 20 inputs agree" in out
    assert marker.read_text() == "the payload ran"  # what the flag's help says it does


def test_program_flags_apply_only_to_saved_models(capsys):
    status, _, err = raspc(capsys, "verify", "reverse", "--trust-program-source")
    assert status == 2 and "apply to a saved model" in err


def test_verify_in_a_real_process_refuses_without_importing(folder, marker):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "raspc", "verify", str(folder / "model.npz")],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": path,
                                         "PYTHONIOENCODING": "utf-8"},
                          capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("raspc: error: ") and done.stderr.count("\n") == 1
    assert "--trust-program-source" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()
    assert json.loads((folder / "model.json").read_text())["program"]["source"]["file"] \
        == str(folder / "payload.py")
