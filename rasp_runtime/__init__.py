"""The runtime of a compiled model: its config and encoders, its one hooked forward
(`forward.make_forward`), `CompiledModel` (apply, apply_batch), interventions, and
save/load with checksums. compiler/ builds what runs here; interp/ uses both.
Importing this package imports no jax: the forward is built on a model's first run.
"""
