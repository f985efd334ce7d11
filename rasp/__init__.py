"""RASP embedded in Python, with its reference evaluator.

Programs written for DeepMind's Tracr (`from tracr.rasp import rasp`) run
unchanged after `import rasp`.
"""

from rasp.errors import (CompileError, CompileWarning, DomainError, EvaluationError, InputError,
                         ModelMismatchError, RaspError)
from rasp.evaluate import evaluate
from rasp.expr import (
    Aggregate, Comparison, ConstantSelector, ConstantSOp, Encoding, Full, IndicesType,
    LengthType, LinearSequenceMap, Map, RASPExpr, Select, Selector, SelectorAnd,
    SelectorNot, SelectorOr, SelectorWidth, SequenceMap, SOp, TokensType, annotate,
    categorical, get_encoding, indices, is_categorical, is_numerical, length, numerical,
    tokens,
)
from rasp.traverse import topological_order, unique_labels

EQ, LT, LEQ, GT, GEQ, NEQ, TRUE, FALSE = (
    Comparison.EQ, Comparison.LT, Comparison.LEQ, Comparison.GT, Comparison.GEQ,
    Comparison.NEQ, Comparison.TRUE, Comparison.FALSE)

__all__ = [
    "Aggregate", "Comparison", "CompileError", "CompileWarning", "ConstantSOp",
    "ConstantSelector", "DomainError", "Encoding", "EvaluationError", "Full", "IndicesType", "InputError", "LengthType",
    "LinearSequenceMap", "Map", "ModelMismatchError", "RASPExpr", "RaspError", "SOp", "Select", "Selector",
    "SelectorAnd", "SelectorNot", "SelectorOr", "SelectorWidth", "SequenceMap",
    "TokensType", "annotate", "categorical", "evaluate", "get_encoding", "indices",
    "is_categorical", "is_numerical", "length", "numerical", "tokens",
    "topological_order", "unique_labels",
    "EQ", "LT", "LEQ", "GT", "GEQ", "NEQ", "TRUE", "FALSE",
]
