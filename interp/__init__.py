"""What one does with a compiled model: export, circuit scoring, compression, plots.

Each module takes a `CompiledModel` (or its ground truth) and gives a plain value.
`compiler/` never imports this package; heavy dependencies (torch, transformer-lens,
matplotlib, optax) are imported inside the modules that need them.
"""
