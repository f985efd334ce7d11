"""The model zoo: many compiled models with exact truth, and a methods benchmark over them.

`build_zoo` compiles library examples and seeded random programs, in realism
variants (interp.zoo.sources.VARIANTS), keeps those that verify exactly, and
exports each into a directory of its own with `manifest.jsonl` beside them
(interp.zoo.build). `bench_zoo` runs circuit-discovery methods (and SAEs scored
against the known features, interp.zoo.cells_sae) over a zoo, one task per (model,
method, granularity) cell, on Ray or in-process, and `leaderboard` summarises the results
(interp.zoo.bench, interp.zoo.leaderboard). Ray is imported only when a bench runs.
"""

from interp.zoo.build import BuildSummary, build_zoo, read_manifest
from interp.zoo.sources import VARIANTS, ModelSpec, library_specs, random_spec

__all__ = ["VARIANTS", "BuildSummary", "ModelSpec", "build_zoo", "library_specs",
           "random_spec", "read_manifest"]
