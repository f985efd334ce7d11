"""`raspc repl`: RASP statements read line by line and shown on an example input.

As in the RASP interpreter's REPL, each s-op is shown evaluated on the running
example (`set example "abc"` or `set example [1, 2]` changes it), and each
selector as a matrix. `compile NAME` compiles a named s-op and runs the model on
the example. A statement ends with `;` (or a closing `}` for def and for).
"""

from __future__ import annotations

import ast
import re
import sys
import warnings
from typing import Any

import rasp
from rasp.errors import EvaluationError, RaspError
from rasp.syntax import parse_tree
from raspc.formatting import fmt

HELP = """commands: RASP statements ending in ';'
  set example "hello" | set example [1, 2, 3]   the input s-ops are shown on
  show example                                  print the running example
  compile NAME                                  compile the s-op NAME, run it on the example
  names                                         list the names defined so far
  exit | quit                                   leave (so does end of input)"""


class Session:
    """One REPL: the interpreter state, the running example and compile settings."""

    def __init__(self, example: list[Any], vocab, max_seq_len: int | None,
                 causal: bool = False, out=sys.stdout, search_path=(), prefer: str = "depth",
                 fuse: bool = True):
        from rasp.syntax_build import Interpreter  # imports lark

        # `load` reads under the current directory and `search_path` (raspc --rasp-path)
        self.interpreter = Interpreter("", "<repl>", search_path=search_path)
        self.example = example
        self.vocab, self.max_seq_len, self.causal, self.out = vocab, max_seq_len, causal, out
        self.prefer, self.fuse = prefer, fuse  # raspc repl --prefer, --no-fuse

    def say(self, text: str) -> None:
        """Print one line of output."""
        print(text, file=self.out)

    def command(self, line: str) -> bool:
        """Handle a REPL command; False if `line` is not one (it is RASP then)."""
        words = line.strip().rstrip(";").split(None, 2)
        if not words:
            return True
        if words[0] in ("help", "?"):
            self.say(HELP)
        elif words[:2] == ["set", "example"] and len(words) == 3:
            self.set_example(words[2])
        elif words[:2] == ["show", "example"]:
            self.say(f"example: {self.example!r}")
        elif words[0] == "names" and len(words) == 1:
            self.say(", ".join(dict.fromkeys(self.interpreter.assigned)) or "(none)")
        elif words[0] == "compile" and len(words) == 2:
            self.compile(words[1])
        else:
            return False
        return True

    def set_example(self, text: str) -> None:
        """`set example "abc"` or `set example [1, 2]`."""
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            self.say(f"error: give the example as \"text\" or [1, 2, 3], got {text}")
            return
        if not isinstance(value, (str, list)) or not value:
            self.say("error: the example must be a non-empty string or list")
            return
        self.example = list(value)
        self.say(f"example: {self.example!r}")

    def statement(self, text: str) -> None:
        """Run RASP source and show every name it binds and every expression's value."""
        self.interpreter.lines = text.splitlines()
        before = len(self.interpreter.assigned)
        try:
            shown = self.interpreter.run(parse_tree(text, "<repl>").children)
        except RaspError as error:
            self.say(f"error: {error}")
            return
        for name in dict.fromkeys(self.interpreter.assigned[before:]):
            self.show(name, self.interpreter.top.names[name])
        for what, value in shown:
            self.show(what, value)

    def show(self, name: str, value) -> None:
        """Print a bound value: an s-op on the example, a selector as a matrix."""
        from rasp.syntax_scope import Function
        if isinstance(value, rasp.Selector):
            self.say(f"selector: {name}")
            self.say(self.matrix(value))
        elif isinstance(value, rasp.SOp):
            self.say(f"s-op: {name}({_shown(self.example)}) = {self.evaluate(value)}")
        elif isinstance(value, Function):
            self.say(f"function: {value.name}({', '.join(value.parameters)})")
        else:
            self.say(f"{name} = {value!r}")

    def evaluate(self, value) -> str:
        """The s-op's values on the running example, as shown."""
        try:
            values = rasp.evaluate(value, self.example, causal=self.causal)
        except EvaluationError as error:
            return f"(no value on this example: {error})"
        return _values(values)

    def matrix(self, selector) -> str:
        """The selector on the running example: queries down, keys across."""
        try:
            rows = rasp.evaluate(selector, self.example, causal=self.causal)
        except EvaluationError as error:
            return f"  (no value on this example: {error})"
        width = max(len(str(t)) for t in self.example)
        head = " " * (width + 5) + " ".join(str(t).rjust(width) for t in self.example)
        lines = [head] + [f"  {str(q).rjust(width)} | " + " ".join(
            ("1" if s else " ").rjust(width) for s in row) for q, row in zip(self.example, rows)]
        return "\n".join(line.rstrip() for line in lines)

    def compile(self, name: str) -> None:
        """`compile NAME`: compile the s-op and run the model on the example."""
        from compiler import compile_rasp_to_model

        value = self.interpreter.top.names.get(name)
        if not isinstance(value, rasp.SOp):
            self.say(f"error: {name!r} is not an s-op defined here")
            return
        vocab = self.vocab or sorted(set(self.example), key=repr)
        n = self.max_seq_len or len(self.example)
        try:
            with warnings.catch_warnings():  # a partial domain is reported below, as lines
                warnings.simplefilter("ignore", rasp.CompileWarning)
                model = compile_rasp_to_model(value, vocab, n, self.causal,
                                              prefer=self.prefer, fuse=self.fuse)
        except RaspError as error:
            self.say(f"error: {error}")
            return
        layers = len(model.config.layers)
        self.say(f"compiled {name}: {layers} layer{'' if layers == 1 else 's'}, d_model "
                 f"{model.config.d_model} (vocab {', '.join(map(fmt, vocab))}; max_seq_len {n})")
        for line in ([] if model.domain.total else model.domain.lines()):
            self.say(f"warning: the program is partial: {line}")
        try:
            expected = rasp.evaluate(value, self.example, causal=self.causal)
        except EvaluationError as error:
            self.say(f"the evaluator has no value on this example ({error}), so the model's "
                     "output there means nothing; `set example` to another input")
            return
        try:
            output = model.apply(["BOS", *self.example]).decoded[1:]
        except RaspError as error:
            self.say(f"error: {error}")
            return
        verdict = "agrees with" if output == expected else "DISAGREES with"
        self.say(f"model({_shown(self.example)}) = {_values(output)}  ({verdict} the evaluator)")


def _values(values: list) -> str:
    return "[" + ", ".join(fmt(v) for v in values) + "]"


def _shown(example: list) -> str:
    if all(isinstance(t, str) and len(t) == 1 for t in example):
        return repr("".join(example))
    return repr(example)


def _complete(text: str) -> bool:
    """Whether buffered lines end a statement: `;` or `}` outside any open brace."""
    code = re.sub(r"\"[^\"\n]*\"|'[^'\n]*'", '""', text)  # braces in strings do not count
    stripped = "\n".join(line.split("#")[0] for line in code.splitlines()).strip()
    return bool(stripped) and stripped.count("{") <= stripped.count("}") and \
        stripped[-1] in ";}"


EXIT_WORDS = ("exit", "quit", "exit()", "quit()")


def run_repl(session: Session, stream=sys.stdin) -> int:
    """Read lines from `stream` until end of input or `exit`. Ctrl-C cancels the
    statement being typed and keeps every definition."""
    interactive = stream.isatty()
    buffer = ""
    while True:
        if interactive:
            print(".. " if buffer else ">> ", end="", flush=True)
        try:
            line = stream.readline()
        except KeyboardInterrupt:
            session.say("\n(cancelled" + (" the unfinished statement" if buffer.strip() else "")
                        + "; definitions are kept; `exit` or Ctrl-D leaves)")
            buffer = ""
            continue
        if not line:
            break
        if line.strip() in EXIT_WORDS:
            if buffer.strip():
                session.say("(left with an unfinished statement, not run: it lacks a ';')")
            buffer = ""
            break
        if not buffer and session.command(line):
            continue
        buffer += line
        if _complete(buffer):
            session.statement(buffer)
            buffer = ""
        elif _lacks_semicolon(buffer):
            session.say("(the statement goes on until a ';'; `help` lists the commands)")
    if buffer.strip():
        session.statement(buffer)
    return 0


def _lacks_semicolon(text: str) -> bool:
    """A first line with no open brace that ends without `;`: say once that more is
    awaited (a typo'd command lands here too)."""
    return text.count("\n") == 1 and "{" not in text and bool(text.strip())


def cmd_repl(args) -> int:
    """Start the REPL on standard input."""
    from raspc.targets import CliError, parse_vocab

    vocab = parse_vocab(args.vocab) if args.vocab else None
    example = args.example
    if example.startswith("["):  # a list such as [1, 2, 3]
        try:
            example = ast.literal_eval(example)
        except (ValueError, SyntaxError):
            raise CliError(f"bad --example {example}: give text or a list like [1, 2]") from None
    session = Session(list(example), vocab, args.max_seq_len, args.causal,
                      search_path=args.rasp_path or (), prefer=args.prefer, fuse=args.fuse)
    session.say(f"RASP REPL; example: {session.example!r}. Type `help` for commands.")
    return run_repl(session)


def register(command) -> None:
    """Add `repl` to the parser (`command` is raspc.cli's helper)."""
    command("repl", cmd_repl, "read RASP statements and show each value on an example "
            "input, as the RASP interpreter's REPL does; `compile NAME` compiles one",
            epilog="Example: echo 'rev = aggregate(select(indices, length - indices - 1, "
                   "==), tokens);' | raspc repl", reads_rasp=True).add_argument(
        "--example", default="hello",
        help="the running example: text, or a list such as [1,2,3] (default: hello)")
