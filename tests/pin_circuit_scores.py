"""Pins every circuit method's scores on every library example (N = 5, component, 16 pairs).

    python tests/pin_circuit_scores.py     # rewrites tests/data/circuit_scores.json

The pins DETECT CHANGES in the hooked forward and the methods on it; they cannot tell
right from wrong (scoring against the truth does that, in test_circuits_*.py). A change
that means to alter scores regenerates them and says why in its commit.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PIN_FILE = Path(__file__).parent / "data" / "circuit_scores.json"
MAX_LEN, PAIRS, SEED, GRANULARITY = 5, 16, 0, "component"


def method_scores(name: str) -> dict[str, dict[str, float]]:
    """{method: {"u -> v" or node: score}} of every circuit method on example `name`."""
    from examples.library import EXAMPLES
    from interp.circuits import METHODS, example_model, make_dataset, path_patching

    model = example_model(name, MAX_LEN)
    dataset = make_dataset(EXAMPLES[name], model, PAIRS, SEED)
    out = {}
    for method, run in {**METHODS, "path_patching": path_patching}.items():
        scores = run(dataset, GRANULARITY)
        out[method] = {(f"{k[0]} -> {k[1]}" if isinstance(k, tuple) else k): v
                       for k, v in scores.items()}
    return out


def all_scores() -> dict[str, dict[str, dict[str, float]]]:
    """method_scores of every library example, by name."""
    from examples.library import EXAMPLES
    return {name: method_scores(name) for name in EXAMPLES}


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    # json writes floats by repr, which reads back to the same float exactly.
    PIN_FILE.write_text(json.dumps(all_scores(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PIN_FILE}")
