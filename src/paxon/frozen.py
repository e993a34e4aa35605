"""A faster ``__init__`` for the frozen, slotted dataclasses made once per command.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__``: the generic attribute machinery, once per field, about
four times what a plain slotted class pays. Messages, commands and results are
made several times per client write on every node, so that showed in the
profile (docs/benchmarks.md, "Where the CPU goes"). ``fast_init`` swaps in an
``__init__`` that stores through each slot's own descriptor instead: the same
signature, the same defaults, ``__post_init__`` still called last, the object
as frozen as before (only ``__init__`` writes; ``__setattr__`` still raises).

Rules: only for ``@dataclass(frozen=True, slots=True)`` classes whose fields
are all ``init`` fields with plain defaults (no ``default_factory``, no
``InitVar``); anything else is refused when the class is defined. Pure: no I/O,
so ``protocol/`` may use it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

_T = TypeVar("_T")


def fast_init(cls: type[_T]) -> type[_T]:
    """Give the frozen, slotted dataclass ``cls`` an ``__init__`` that stores
    through its slot descriptors; put it above ``@dataclass``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_init is for frozen, slotted dataclasses")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    namespace: dict[str, Any] = {}
    params_text: list[str] = []
    body: list[str] = []
    keyword_only = False
    for index, field in enumerate(fields):
        if not field.init or field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name}: fast_init takes plain fields only")
        if field.kw_only and not keyword_only:
            params_text.append("*")
            keyword_only = True
        if field.default is dataclasses.MISSING:
            params_text.append(field.name)
        else:
            namespace[f"_default_{index}"] = field.default
            params_text.append(f"{field.name}=_default_{index}")
        namespace[f"_set_{index}"] = cls.__dict__[field.name].__set__
        body.append(f"    _set_{index}(self, {field.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params_text)}):\n" + "\n".join(body or ["    pass"])
    exec(source, namespace)  # the text is made above from field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010  # a method assigned after the class is made
    return cls
