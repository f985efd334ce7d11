"""The RASP → transformer compiler: a program in, a model and its ground truth out.

The model it hands over runs in `rasp_runtime` (config, the one hooked forward,
batching, files); `CompiledModel` and `ModelOutput` are re-exported here, from
rasp_runtime.model, so that `from compiler import CompiledModel` keeps working. `to_source` prints a
program as rasp.to_source does, tabulating Python functions over exact value sets.
"""

from compiler.compiling import compile_rasp_to_model
from compiler.values import to_source
from rasp.errors import CompileError, InputError
from rasp_runtime.model import CompiledModel, ModelOutput

__all__ = ["CompiledModel", "CompileError", "InputError", "ModelOutput", "compile_rasp_to_model",
           "to_source"]
