"""A pytest plugin (`-p tests.mutation_warmup`) only `make mutation` loads (benchmarks/mutation.py).

Compiles every library example into `example_model`'s cache, so each mutant's
forked child starts with them. Compiling runs no jax computation, and it must
stay that way: jax deadlocks in a child forked after its backend started.
"""

from jax._src import xla_bridge

from examples.library import EXAMPLES
from interp.circuits import example_model

for name in EXAMPLES:
    example_model(name)
assert not xla_bridge.backends_are_initialized(), "warm-up started jax: forked children would hang"
