"""RASP embedded in Python, with its reference evaluator.

Programs written for DeepMind's Tracr (`from tracr.rasp import rasp`) run
unchanged after `import rasp`: every public name of Tracr's rasp module is
exported here (tests/test_tracr_dropin.py checks the list). Programs in the RASP
paper's own syntax are read by `rasp.parse` and printed by `rasp.to_source`.
"""

from rasp.annotations import (DEFAULT_ANNOTATORS, Annotator, Encoding, default_encoding,
                              default_name)
from rasp.errors import (CompileError, CompileWarning, DomainError, EvaluationError, ForkError,
                         InputError, ModelMismatchError, RaspError, RaspSyntaxError,
                         ValueRangeError)
from rasp.evaluate import evaluate
from rasp.expr import (
    Aggregate, Comparison, ConstantSelector, ConstantSOp, Full, IndicesType,
    LengthType, LinearSequenceMap, Map, RASPExpr, Select, Selector, SelectorAnd,
    SelectorNot, SelectorOr, SelectorWidth, SequenceMap, SOp, TokensType, annotate,
    categorical, get_encoding, indices, is_categorical, is_numerical, length, numerical,
    tokens,
)
from rasp.syntax import parse, parse_file
from rasp.to_source import to_source
from rasp.tracr_compat import (
    VT, DefaultRASPEvaluator, NumericValue, Predicate, RASPEvaluator, RASPExprT,
    SelectorValue, SOpT, T, Value, selector_and, selector_not, selector_or, sop_not,
)
from rasp.traverse import topological_order, unique_labels

EQ, LT, LEQ, GT, GEQ, NEQ, TRUE, FALSE = (
    Comparison.EQ, Comparison.LT, Comparison.LEQ, Comparison.GT, Comparison.GEQ,
    Comparison.NEQ, Comparison.TRUE, Comparison.FALSE)

__all__ = [
    "Aggregate", "Comparison", "CompileError", "CompileWarning", "ConstantSOp",
    "ConstantSelector", "DomainError", "Encoding", "EvaluationError", "ForkError", "Full", "IndicesType", "InputError", "LengthType",
    "LinearSequenceMap", "Map", "ModelMismatchError", "RASPExpr", "RaspError", "SOp", "Select", "Selector",
    "SelectorAnd", "SelectorNot", "SelectorOr", "SelectorWidth", "SequenceMap",
    "TokensType", "annotate", "categorical", "evaluate", "get_encoding", "indices",
    "is_categorical", "is_numerical", "length", "numerical", "tokens",
    "topological_order", "unique_labels", "ValueRangeError", "RaspSyntaxError", "parse", "parse_file", "to_source",
    "EQ", "LT", "LEQ", "GT", "GEQ", "NEQ", "TRUE", "FALSE",
    # the rest of Tracr's rasp module
    "DEFAULT_ANNOTATORS", "Annotator", "DefaultRASPEvaluator", "NumericValue", "Predicate",
    "RASPEvaluator", "RASPExprT", "SOpT", "SelectorValue", "T", "VT", "Value",
    "default_encoding", "default_name", "selector_and", "selector_not", "selector_or",
    "sop_not",
]
