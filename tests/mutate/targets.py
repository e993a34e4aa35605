"""What the mutation score mutates, and what it leaves alone on purpose.

The score asks one question: of the plausible bugs in the protocol core and
in the code that reads a data directory back after a crash, how many does the
simulator find on its own? So the targets are:

| file                | what is mutated                   | why                              |
|---------------------|-----------------------------------|----------------------------------|
| protocol/*.py       | all of it                         | the pure core the simulator runs |
| storage/recovery.py | all functions                     | inspect, decide, fold (its table)|
| storage/segments.py | scan_segment, _take, _stop,       | how recovery reads a segment;    |
|                     | _check_header                     | not the header encoder (writer)  |
| storage/codec.py    | scan_frame, _all_zero, decode_*,  | torn versus bad frames, payload  |
|                     | _decode_config, _expect_size      | checks; not the encoders         |
| storage/storage.py  | _open, _repair, _start            | refuse damage, cut the torn tail,|
|                     |                                   | hand the log over                |
| storage/wal.py      | Wal.__init__                      | resumes where recovery says the  |
|                     |                                   | log ends                         |

Never mutated, in any target (counted as "excluded" in the report):
- type annotations: with ``from __future__ import annotations`` they are never
  evaluated, so every mutant there is equivalent by construction;
- the oracle: ``assert`` statements and ``Replica.check_invariants``. The
  simulator runs the oracle on a correct core; weakening it cannot be seen by
  any test (equivalent by construction), and strengthening it is a false alarm
  that the first seed shows. The checks belong to the judge, not the accused;
- the punctuation of a parameter list: cosmic-ray reads the bare ``*`` of
  ``def f(self, *, x)`` as a product and makes ``/`` of it, which no caller
  can tell apart (default values in a signature are still mutated);
- module-level code of the storage files (format constants such as frame types
  are shared by the writer and the reader, so changing one changes both).

Operators: cosmic-ray's, minus replacements that only make noise (see
``EXCLUDED_OPERATORS``): an operator is replaced by the others of its own
family (arithmetic, bitwise, ordering and equality, identity, membership),
never across families (``==`` to ``is`` is equivalent on small ints) and never
by ``**`` (``x ** 1 == x``; ``2 ** slot`` runs for ever).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Target:
    """One file to mutate: all of it, or only the named functions (``Class.method``)."""

    path: str
    functions: tuple[str, ...] = ()
    module_level: bool = True


STORAGE_TARGETS = (
    Target("src/paxon/storage/recovery.py", module_level=False),
    Target(
        "src/paxon/storage/segments.py",
        ("scan_segment", "_take", "_stop", "_check_header"),
        module_level=False,
    ),
    Target(
        "src/paxon/storage/codec.py",
        (
            "scan_frame",
            "_cut_then_zeros",
            "_zeros_from",
            "decode_record",
            "decode_seal",
            "decode_entry_payload",
            "_decode_config",
            "_expect_size",
        ),
        module_level=False,
    ),
    Target("src/paxon/storage/storage.py", ("_open", "_repair", "_start"), module_level=False),
    Target("src/paxon/storage/wal.py", ("Wal.__init__",), module_level=False),
)

ORACLE_FUNCTIONS = ("Replica.check_invariants",)

_ARITHMETIC = ("Add", "Sub", "Mul", "Div", "FloorDiv", "Mod", "Pow")
_BITWISE = ("BitAnd", "BitOr", "BitXor", "LShift", "RShift")
_ORDER = ("Eq", "NotEq", "Lt", "LtE", "Gt", "GtE")
_IDENTITY = ("Is", "IsNot")
_MEMBERSHIP = ("In", "NotIn")


def _cross_family(prefix: str, families: tuple[tuple[str, ...], ...]) -> list[str]:
    names = []
    for family in families:
        for other in families:
            if other is not family:
                names += [f"core/{prefix}_{a}_{b}$" for a in family for b in other]
    return names


EXCLUDED_OPERATORS: tuple[str, ...] = (
    *_cross_family("ReplaceBinaryOperator", (_ARITHMETIC, _BITWISE)),
    *_cross_family("ReplaceComparisonOperator", (_ORDER, _IDENTITY, _MEMBERSHIP)),
    "core/ReplaceBinaryOperator_[A-Za-z]+_Pow$",
    # Need arguments to do anything; they make no mutants in a default session.
    "core/VariableReplacer",
    "core/VariableInserter",
)


def targets(root: Path) -> list[Target]:
    """Every target under ``root`` (a checkout or a copy of one), protocol files first."""
    protocol = sorted((root / "src/paxon/protocol").glob("*.py"))
    found = [Target(str(path.relative_to(root))) for path in protocol]
    return found + [target for target in STORAGE_TARGETS if (root / target.path).exists()]


Region = tuple[int, int, int, int]  # (line, column, end line, end column), end exclusive


@dataclass(frozen=True, slots=True)
class Spans:
    """Line ranges (1-based, inclusive) of a target file: what may and may not be mutated."""

    allowed: tuple[tuple[int, int], ...] | None  # None: the whole file
    annotations: tuple[Region, ...]
    signatures: tuple[Region, ...]  # from `def` to the body
    defaults: tuple[Region, ...]  # default values, inside the signatures
    oracle: tuple[tuple[int, int], ...]

    def verdict(self, line: int, col: int) -> str | None:
        """Why a mutation at ``(line, col)`` is excluded, or None when it is in scope."""
        if any(_inside(line, col, span) for span in self.annotations):
            return "type annotation"
        if any(_inside(line, col, span) for span in self.signatures) and not any(
            _inside(line, col, span) for span in self.defaults
        ):
            return "parameter list"
        if any(first <= line <= last for first, last in self.oracle):
            return "oracle (assert, check_invariants)"
        if self.allowed is not None and not any(a <= line <= b for a, b in self.allowed):
            return "outside the target functions"
        return None


def spans_of(source: str, target: Target) -> Spans:
    tree = ast.parse(source)
    definitions = dict(_definitions(tree))
    allowed: tuple[tuple[int, int], ...] | None = None
    if target.functions:
        missing = [name for name in target.functions if name not in definitions]
        if missing:
            raise ValueError(f"{target.path}: no function {', '.join(missing)}")
        allowed = tuple(definitions[name] for name in target.functions)
    elif not target.module_level:
        allowed = tuple(definitions.values())
    oracle = [definitions[name] for name in ORACLE_FUNCTIONS if name in definitions]
    annotations: list[Region] = []
    signatures: list[Region] = []
    defaults: list[Region] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            oracle.append((node.lineno, node.end_lineno or node.lineno))
        annotations += [_region(annotation) for annotation in _annotations_of(node)]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0]
            signatures.append((node.lineno, node.col_offset, first.lineno, first.col_offset))
            values = [*node.args.defaults, *node.args.kw_defaults]
            defaults += [_region(value) for value in values if value is not None]
    return Spans(allowed, tuple(annotations), tuple(signatures), tuple(defaults), tuple(oracle))


def _region(node: ast.expr) -> Region:
    return (node.lineno, node.col_offset, node.end_lineno or node.lineno, node.end_col_offset or 0)


def _definitions(tree: ast.Module) -> list[tuple[str, tuple[int, int]]]:
    """``name`` or ``Class.name`` of each function, class body methods included, with its lines."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append((node.name, _lines(node)))
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                    found.append((f"{node.name}.{member.name}", _lines(member)))
    return found


def _lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int]:
    first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    return first, node.end_lineno or node.lineno


def _annotations_of(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.arg) and node.annotation is not None:
        return [node.annotation]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
        return [node.returns]
    if isinstance(node, ast.AnnAssign):
        return [node.annotation]
    return []


def _inside(line: int, col: int, span: Region) -> bool:
    first, first_col, last, last_col = span
    if line < first or line > last:
        return False
    if line == first and col < first_col:
        return False
    return not (line == last and col >= last_col)
