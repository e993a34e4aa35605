"""The core's argument checks at their exact bounds (lines the simulator cannot
reach by design: it only builds legal configurations; mutation sample s14 rows 1
and 2 changed these bounds and nothing noticed)."""

from __future__ import annotations

import pytest

from paxon.protocol import ReplicaConfig
from paxon.protocol.membership import MEMBERS_MAX, Configuration, InvalidConfiguration, Member


@pytest.mark.parametrize("factor", [1.0, 1.5, 2.0])
def test_a_backoff_factor_from_one_up_is_legal(factor: float) -> None:
    assert ReplicaConfig(backoff_factor=factor).backoff_factor == factor
    assert ReplicaConfig(backoff_max_factor=factor).backoff_max_factor == factor


@pytest.mark.parametrize("field", ["backoff_factor", "backoff_max_factor"])
def test_a_backoff_factor_below_one_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="backoff factors"):
        ReplicaConfig(**{field: 0.99})


def _members(count: int) -> tuple[Member, ...]:
    return tuple(Member(n, f"h{n}:1", n == 1) for n in range(1, count + 1))


def test_a_configuration_holds_at_most_members_max_members() -> None:
    assert MEMBERS_MAX == 64  # docs/membership.md names the number
    assert len(Configuration(0, _members(MEMBERS_MAX)).members) == MEMBERS_MAX
    with pytest.raises(InvalidConfiguration, match="1 to 64 members"):
        Configuration(0, _members(MEMBERS_MAX + 1))
