"""Optional dependencies: import one, or say in one line which extra installs it."""

from __future__ import annotations

import importlib

from rasp.errors import RaspError

EXTRAS = {"torch": "transformer-lens", "transformer_lens": "transformer-lens",
          "safetensors": "transformer-lens", "matplotlib": "plots", "optax": "compress",
          "transformers": "hf", "tokenizers": "hf", "nnsight": "hf",
          "ray": "zoo"}


class MissingExtraError(RaspError, ImportError):
    """An optional dependency is not installed."""


def import_extra(module: str):
    """`importlib.import_module(module)`, or MissingExtraError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module.split(".")[0], "transformer-lens")
        raise MissingExtraError(f"this needs {module}, which is not installed: "
                                f"pip install 'rasp-compiler[{extra}]'") from None
