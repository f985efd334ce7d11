"""raspc: the rasp-compiler command line.

One module per command family (`programs`, `running`, `checking`, ...); `raspc.cli`
builds the parser from them. `python -m raspc` and the `raspc` script both run `main`.
"""

from importlib import metadata

try:
    __version__ = metadata.version("rasp-compiler")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


def main(argv=None) -> int:
    """The `raspc` entry point; returns the exit status."""
    from raspc.cli import main as run
    return run(argv)
