"""What one does with a compiled model: export, circuit scoring, compression, plots.

Each module takes a `CompiledModel` (or its ground truth) and gives a plain value.
`compiler/` never imports this package at import time (`CompiledModel.to_transformer_lens`
and `save(format=...)` import it inside the call); heavy dependencies (torch, transformer-lens,
matplotlib, optax) are imported inside the modules that need them.
"""
