"""Which file `load "name";` reads, and which files it may read at all.

A load resolves beside the file that says it, then in each search-path
directory. It may read only files under the directory of the program being
parsed (the current directory for text) or under a search-path directory, so
a .rasp file someone sends you cannot read `../../secret` or `/etc/...`. A
load of a file that is already being loaded (a cycle) is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from rasp.syntax_ops import Fault


@dataclasses.dataclass(frozen=True)
class LoadRules:
    """Where loads may read, and the files being loaded now (to find cycles).

    Attributes:
      roots: resolved directories a load may read under; the first is the program's own.
      chain: resolved files being loaded, the outermost first.
    """

    roots: tuple[Path, ...]
    chain: tuple[Path, ...] = ()

    def entering(self, path: Path) -> LoadRules:
        """The rules inside the loaded file `path`."""
        return dataclasses.replace(self, chain=(*self.chain, path))


def load_rules(filename: str, search_path: Iterable = ()) -> LoadRules:
    """The rules for a program read from `filename` ("<...>" for text without a file)."""
    if isinstance(search_path, (str, Path)):  # one directory, not its characters
        search_path = [search_path]
    roots = (_folder(filename), *(Path(d).resolve() for d in search_path))
    chain = () if _is_text(filename) else (Path(filename).resolve(),)
    return LoadRules(roots, chain)


def resolve_load(name: str, filename: str, rules: LoadRules) -> Path:
    """The resolved file that `load "name";` in `filename` reads.

    Raises:
      Fault: the name leaves every allowed directory, names no file, or names a file
        that is being loaded (a cycle, named file by file).
    """
    file = name if name.endswith(".rasp") else name + ".rasp"
    candidates = [_folder(filename) / file, *(root / file for root in rules.roots[1:])]
    allowed = [c.resolve() for c in candidates if _inside(c.resolve(), rules.roots)]
    if not allowed:
        raise Fault(f'load "{name}" would read {candidates[0].resolve()}, outside the '
                    f"program's directory {rules.roots[0]}; a load reads only files under it "
                    "unless you allow another directory: search_path=[DIR] in rasp.parse or "
                    "rasp.parse_file, --rasp-path DIR in raspc")
    path = next((c for c in allowed if c.is_file()), None)
    if path is None:
        raise Fault(f"no RASP file {allowed[0]}", "the name of a .rasp file")
    if path in rules.chain:
        cycle = [*rules.chain[rules.chain.index(path):], path]
        raise Fault("load cycle: " + " → ".join(_shown(p, rules.roots[0]) for p in cycle)
                    + "; a file cannot load itself, directly or through others")
    return path


def _is_text(filename: str) -> bool:
    return filename.startswith("<")


def _folder(filename: str) -> Path:
    """The directory loads in `filename` resolve against (text: the current directory)."""
    return Path.cwd().resolve() if _is_text(filename) else Path(filename).resolve().parent


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _shown(path: Path, root: Path) -> str:
    """`path` relative to `root` where it lies under it, else in full."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
