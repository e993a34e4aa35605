"""``paxon.frozen.fast_init``: the faster ``__init__`` keeps what the dataclass's did."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from paxon.frozen import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class _Sample:
    first: int
    second: bytes = b"two"
    third: int | None = None

    def __post_init__(self) -> None:
        if self.first < 0:
            raise ValueError("first must be >= 0")


def test_it_sets_every_field_with_the_same_defaults_and_keywords() -> None:
    assert _Sample(1) == _Sample(first=1, second=b"two", third=None)
    assert _Sample(1, b"x", third=3) == _Sample(1, b"x", 3)
    assert dataclasses.replace(_Sample(1), third=4) == _Sample(1, b"two", 4)
    with pytest.raises(TypeError):
        _Sample()  # type: ignore[call-arg]


def test_post_init_still_validates() -> None:
    with pytest.raises(ValueError, match="first must be >= 0"):
        _Sample(-1)


def test_the_object_stays_frozen() -> None:
    sample = _Sample(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.first = 2  # type: ignore[misc]


def test_keyword_only_fields_stay_keyword_only() -> None:
    @fast_init
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Named:
        size: int = 0

    assert Named(size=3).size == 3
    with pytest.raises(TypeError):
        Named(3)  # type: ignore[misc]


def test_it_refuses_what_it_cannot_copy() -> None:
    with pytest.raises(TypeError, match="plain fields only"):

        @fast_init
        @dataclass(frozen=True, slots=True)
        class WithFactory:
            items: list[int] = field(default_factory=list)

    with pytest.raises(TypeError, match="frozen, slotted"):

        @fast_init
        @dataclass(slots=True)
        class NotFrozen:
            size: int
