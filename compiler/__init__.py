"""The RASP → transformer compiler."""

from compiler.compiling import compile_rasp_to_model
from compiler.model import CompiledModel, ModelOutput
from rasp.errors import CompileError, InputError

__all__ = ["CompiledModel", "CompileError", "InputError", "ModelOutput", "compile_rasp_to_model"]
