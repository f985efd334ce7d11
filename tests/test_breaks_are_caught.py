"""The suite catches each of the eight breaks in tests/breaks.py (slow set; `make breaks`).

For each break: copy the working tree's files (tracked and untracked, not ignored)
to a temporary directory, apply the break's substitutions there, run only its
catching tests with pytest in a subprocess that imports the copy, and require
that every one of them fails. The unbroken tree passing those tests is the fast
suite's job.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.breaks import BREAKS

ROOT = Path(__file__).resolve().parents[1]
RUN_LIMIT_S = 600  # one break's pytest run; they take well under a minute each


def copy_tree(destination: Path) -> None:
    """The working tree's files as git sees them (uncommitted edits included)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is skipped
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def apply(tree: Path, path: str, old: str, new: str) -> None:
    target = tree / path
    text = target.read_text()
    assert text.count(old) == 1, f"{path}: the break's text is not there exactly once; " \
                                 f"update tests/breaks.py to match the code: {old!r}"
    target.write_text(text.replace(old, new))


@pytest.mark.slow
@pytest.mark.parametrize("broken", BREAKS, ids=lambda b: b.name)
def test_the_suite_catches_the_break(broken, tmp_path):
    tree = tmp_path / "tree"
    copy_tree(tree)
    for path, old, new in broken.substitutions:
        apply(tree, path, old, new)
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider",
                          *broken.catchers], cwd=tree, env=env, capture_output=True,
                         text=True, timeout=RUN_LIMIT_S)
    report = run.stdout + run.stderr
    assert run.returncode == 1, report[-3000:]  # 1: tests ran and some failed
    failed = set(re.findall(r"^FAILED (\S+)", report, re.MULTILINE))
    assert set(broken.catchers) <= failed, (sorted(failed), report[-3000:])
