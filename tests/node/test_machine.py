"""The runtime's wrapper of the user state machine: sessions, log time and snapshots."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest

from paxon.errors import SessionExpired, SessionsFull
from paxon.kv.sessions import SessionVerdict
from paxon.node.logclock import CLOCK_CLIENT_ID, clock_command
from paxon.node.machine import SESSION_TTL_MS, ReplicatedMachine, refusal
from paxon.protocol.membership import (
    REMOVED_REMEMBERED_MAX,
    ConfigHistory,
    Configuration,
    Member,
    RemovedMember,
)
from paxon.protocol.ready import ChosenEntry
from paxon.protocol.types import Command, Value
from paxon.statemachine import StateMachine


class Appender(StateMachine):
    def __init__(self) -> None:
        self.items: list[bytes] = []

    def apply(self, command: bytes) -> bytes:
        self.items.append(command)
        return str(len(self.items)).encode()

    def snapshot(self) -> bytes:
        return b"\n".join(self.items)

    def restore(self, data: bytes) -> None:
        self.items = data.split(b"\n") if data else []


def entry(slot: int, *commands: tuple[int, int, bytes]) -> ChosenEntry:
    return ChosenEntry(slot, Value(tuple(Command(c, s, p) for c, s, p in commands)))


def test_a_retried_command_is_applied_once_and_answered_with_the_first_reply() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=10)
    first = list(machine.apply(entry(0, (7, 1, b"a"), (8, 1, b"b"))))
    retry = list(machine.apply(entry(1, (7, 1, b"a"))))
    assert [a.reply for a in first] == [b"1", b"2"]
    assert retry[0].reply == b"1" and not retry[0].fresh
    assert isinstance(machine.machine, Appender)
    assert machine.machine.items == [b"a", b"b"]


def test_a_stale_command_is_skipped_without_a_reply() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=10)
    list(machine.apply(entry(0, (7, 1, b"old"), (7, 2, b"new"))))
    (stale,) = machine.apply(entry(1, (7, 1, b"old")))
    assert stale.reply is None and not stale.fresh
    assert isinstance(machine.machine, Appender)
    assert machine.machine.items == [b"old", b"new"]


def test_slots_must_come_in_order() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=10)
    with pytest.raises(AssertionError):
        list(machine.apply(entry(1, (7, 1, b"a"))))


def test_snapshot_carries_sessions_and_state() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=10)
    list(machine.apply(entry(0, (7, 1, b"a"), (8, 1, b"b"))))
    restored = ReplicatedMachine(Appender(), sessions_max=10)
    restored.restore(machine.snapshot())
    assert restored.slot_applied == 1
    (retry,) = restored.apply(entry(1, (8, 1, b"b")))
    assert retry.reply == b"2" and not retry.fresh
    assert isinstance(restored.machine, Appender)
    assert restored.machine.items == [b"a", b"b"]


# ---------------------------------------------------------------- log time

T0 = 1_800_000_000_000  # a wall-clock stamp in ms


def clock(stamp_ms: int) -> tuple[int, int, bytes]:
    command = clock_command(stamp_ms)
    return command.client_id, command.seq, command.payload


def items(machine: ReplicatedMachine) -> list[bytes]:
    assert isinstance(machine.machine, Appender)
    return machine.machine.items


def test_clock_entries_move_log_time_forward_only_and_are_not_applied() -> None:
    machine = ReplicatedMachine(Appender())
    outcomes = list(machine.apply(entry(0, clock(T0), (7, 1, b"a"))))
    assert machine.clock.log_time_ms == T0
    assert [(o.client_id, o.seq) for o in outcomes] == [(7, 1)]  # nothing for the clock
    list(machine.apply(entry(1, clock(T0 - 5_000), (7, 2, b"b"))))  # a leader behind
    assert machine.clock.log_time_ms == T0
    # Any command with the clock's client id is a clock entry, whatever it carries.
    list(machine.apply(entry(2, (CLOCK_CLIENT_ID, T0 + 10, b"payload"))))
    assert machine.clock.log_time_ms == T0 + 10
    assert items(machine) == [b"a", b"b"]
    assert [row[:3] for row in machine.sessions.export()] == [(7, 2, T0)]


def test_two_replicas_applying_the_same_entries_agree_on_time_and_sessions() -> None:
    log = [
        entry(0, clock(T0), (1, 1, b"a"), (2, 1, b"b")),
        entry(1, (1, 2, b"c"), clock(T0 + 1_000), (3, 1, b"d")),
        entry(2, clock(T0 + 400), (2, 1, b"b"), (4, 1, b"e")),  # older stamp, a retry
        entry(3, clock(T0 + SESSION_TTL_MS + 1), (5, 1, b"f"), (3, 2, b"g")),
    ]
    first = ReplicatedMachine(Appender(), sessions_max=4)
    second = ReplicatedMachine(Appender(), sessions_max=4)
    times: list[tuple[int, int]] = []
    for chosen in log:
        outcomes = [list(m.apply(chosen)) for m in (first, second)]
        assert outcomes[0] == outcomes[1]
        times.append((first.clock.log_time_ms, second.clock.log_time_ms))
    assert times == [(t, t) for t in (T0, T0 + 1_000, T0 + 1_000, T0 + 1 + SESSION_TTL_MS)]
    assert [t for t, _ in times] == sorted(t for t, _ in times)
    assert first.sessions.export() == second.sessions.export()
    assert first.snapshot() == second.snapshot()
    # At the last stamp only session 1 (last active at T0) was idle past the
    # TTL; 2's retry at T0 + 1000 kept it, like 3 and 4, and 3's seq 2 applies.
    assert [row[0] for row in first.sessions.export()] == [2, 4, 5, 3]
    assert items(first) == items(second) == [b"a", b"b", b"c", b"d", b"e", b"f", b"g"]


def test_a_session_idle_past_the_ttl_expires_and_its_late_retry_is_refused() -> None:
    machine = ReplicatedMachine(Appender(), session_ttl_ms=1_000)
    list(machine.apply(entry(0, clock(T0), (7, 1, b"a"), (7, 2, b"b"))))
    # Inside the TTL a retry is a duplicate, answered with the first reply.
    (retry,) = machine.apply(entry(1, clock(T0 + 1_000), (7, 2, b"b")))
    assert retry.verdict is SessionVerdict.DUPLICATE and retry.reply == b"2"
    # The retry counted as activity: the session lives until T0 + 2000.
    list(machine.apply(entry(2, clock(T0 + 2_000))))
    assert len(machine.sessions) == 1
    # Past the TTL the session is dropped; seq 2 again might be applied twice
    # if taken as new, so it is refused, and so is seq 3.
    outcomes = list(machine.apply(entry(3, clock(T0 + 2_001), (7, 2, b"b"), (7, 3, b"c"))))
    assert [o.verdict for o in outcomes] == [SessionVerdict.EXPIRED] * 2
    assert all(o.reply is None for o in outcomes)
    assert all(isinstance(refusal(o), SessionExpired) for o in outcomes)
    assert items(machine) == [b"a", b"b"]
    assert len(machine.sessions) == 0


def test_a_flood_of_new_sessions_is_refused_and_no_live_session_is_evicted() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=3)
    list(machine.apply(entry(0, clock(T0), (7, 1, b"put"))))
    flood = [(1_000 + i, 1, b"cheap") for i in range(50)]
    outcomes = list(machine.apply(entry(1, clock(T0 + 10), *flood)))
    assert [o.verdict for o in outcomes] == [SessionVerdict.NEW] * 2 + [SessionVerdict.FULL] * 48
    assert all(isinstance(refusal(o), SessionsFull) for o in outcomes[2:])
    assert refusal(outcomes[0]) is None
    # The first put's retry, with its original (client_id, seq): answered, not applied.
    (retry,) = machine.apply(entry(2, clock(T0 + 20), (7, 1, b"put")))
    assert retry.verdict is SessionVerdict.DUPLICATE and retry.reply == b"1"
    assert items(machine) == [b"put", b"cheap", b"cheap"]
    # Once the flood's sessions expire, new sessions are taken again.
    late = T0 + 10 + SESSION_TTL_MS + 1
    (opened,) = machine.apply(entry(3, clock(late), (9, 1, b"new")))
    assert opened.fresh and machine.clock.log_time_ms == late


def test_snapshot_carries_log_time_and_session_times() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=2, session_ttl_ms=1_000)
    list(machine.apply(entry(0, clock(T0), (7, 1, b"a"), clock(T0 + 500), (8, 1, b"b"))))
    restored = ReplicatedMachine(Appender(), sessions_max=2, session_ttl_ms=1_000)
    restored.restore(machine.snapshot())
    assert restored.clock.log_time_ms == T0 + 500
    assert restored.sessions.export() == machine.sessions.export()
    assert restored.snapshot() == machine.snapshot()
    # Both expire session 7 at the same stamp, and both then refuse its retry.
    later = entry(1, clock(T0 + 1_001), (7, 1, b"a"), (9, 1, b"c"), (10, 1, b"d"))
    assert list(restored.apply(later)) == list(machine.apply(later))
    assert [row[0] for row in restored.sessions.export()] == [8, 7]


def test_a_version_1_snapshot_loads_and_its_sessions_start_at_the_first_stamp() -> None:
    header = msgpack.packb([1, 3, [[7, 2, b"2"]]], use_bin_type=True)
    machine = ReplicatedMachine(Appender(), session_ttl_ms=1_000)
    machine.restore(header + b"a\nb")
    assert machine.slot_applied == 3 and machine.clock.log_time_ms == 0
    assert items(machine) == [b"a", b"b"]
    (retry,) = machine.apply(entry(3, clock(T0), (7, 2, b"b")))
    assert retry.verdict is SessionVerdict.DUPLICATE and retry.reply == b"2"
    list(machine.apply(entry(4, clock(T0 + 1_000))))
    assert len(machine.sessions) == 1  # rebased to T0, not expired at once
    list(machine.apply(entry(5, clock(T0 + 1_001))))
    assert len(machine.sessions) == 0


def change(previous: Configuration, *ids: int) -> tuple[Configuration, ChosenEntry]:
    """The next configuration, of voters ``ids`` at address ``n<id>``, and an entry
    choosing it at slot 0 (the caller renumbers it)."""
    after = previous.successor(Member(n, f"n{n}") for n in ids)
    return after, ChosenEntry(0, Value((after.command(),)))


def version(snapshot: bytes) -> int:
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(snapshot)
    head: list[int] = unpacker.unpack()
    return head[0]


def at(slot: int, chosen: ChosenEntry) -> ChosenEntry:
    return ChosenEntry(slot, chosen.value)


def test_a_removal_is_remembered_and_carried_by_a_snapshot() -> None:
    """Every replica remembers the nodes a change drops (address, effect slot,
    epoch), forgets one added back, and a snapshot carries the memory: a member
    restarted after its log was compacted still tells a removed node so."""
    first = Configuration.initial({1: "n1", 2: "n2", 3: "n3"}, alpha=4)
    machine = ReplicatedMachine(Appender(), configuration=first)
    assert version(machine.snapshot()) == 3  # what a release before 4 reads
    second, without_3 = change(first, 1, 2)
    list(machine.apply(at(0, without_3)))
    assert machine.removed_state() == (RemovedMember(3, "n3", 4, 1),)
    for slot in range(1, 6):
        list(machine.apply(entry(slot, (7, slot, b"x"))))
    third, with_4 = change(second, 1, 2, 4)
    list(machine.apply(at(6, with_4)))
    fourth, without_2 = change(third, 1, 4)
    list(machine.apply(at(7, without_2)))
    assert [r.node_id for r in machine.removed_state()] == [3, 2]
    # From the snapshot (version 4 now), a restarted member remembers both.
    assert version(machine.snapshot()) == 4
    restored = ReplicatedMachine(Appender(), configuration=first)
    restored.restore(machine.snapshot())
    assert restored.removed_state() == (RemovedMember(3, "n3", 4, 1), RemovedMember(2, "n2", 11, 3))
    assert restored.snapshot() == machine.snapshot()
    # Node 3 added back is removed no more, on every replica alike.
    _, with_3 = change(fourth, 1, 3, 4)
    for replica in (machine, restored):
        list(replica.apply(at(8, with_3)))
        assert [r.node_id for r in replica.removed_state()] == [2]


@pytest.mark.parametrize("planted", [False, True])
def test_a_member_that_joined_later_remembers_the_removals_its_log_replays(
    planted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node started with ``--join`` holds the configuration it joined with,
    and catches up through the log from slot 0: the changes before that
    configuration are older than its history, which does not take them, but
    chained from the first they say whom each removed. Its memory (and so its
    snapshots) then matches every founding member's, but for the first
    change's removals: the ``--peers`` before it are in no log. Planted
    (the replayed changes dropped), it remembers nothing."""
    first = Configuration.initial({1: "n1", 2: "n2", 3: "n3", 5: "n5"}, alpha=2)
    bound, binding = change(first, 1, 2, 3)  # epoch 1: node 5 gone before any log
    without_3, removal = change(bound, 1, 2)
    with_4, addition = change(without_3, 1, 2, 4)
    log = [at(0, binding), entry(1, (7, 1, b"x")), at(2, removal)]
    log += [entry(3, (7, 2, b"y")), entry(4, (7, 3, b"z")), at(5, addition)]
    founder = ReplicatedMachine(Appender(), configuration=first)
    joiner = ReplicatedMachine(Appender(), configuration=with_4)  # what --join fetched
    if planted:  # only a joiner ever replays
        monkeypatch.setattr(ConfigHistory, "replayed", lambda self: [])
    for chosen in log:
        list(founder.apply(chosen))
        list(joiner.apply(chosen))
    assert [r.node_id for r in founder.removed_state()] == [5, 3]
    removal_of_3 = RemovedMember(3, "n3", 4, 2)  # chosen at 2, effect 2 + alpha
    assert founder.removed_state()[1] == removal_of_3
    assert joiner.removed_state() == (() if planted else (removal_of_3,))
    # The next change is the joiner's own to take, and both remember it alike.
    _, removal_of_1 = change(with_4, 2, 4)
    for machine in (founder, joiner):
        list(machine.apply(at(6, removal_of_1)))
    assert joiner.removed_state()[-1] == founder.removed_state()[-1] == RemovedMember(1, "n1", 8, 4)


def test_the_memory_of_removed_nodes_is_bounded() -> None:
    voters = range(1, REMOVED_REMEMBERED_MAX + 6)
    configuration = Configuration.initial({n: f"n{n}" for n in voters}, alpha=1)
    machine = ReplicatedMachine(Appender(), configuration=configuration)
    for slot, gone in enumerate(voters[:-1]):
        configuration, chosen = change(configuration, *(n for n in voters if n > gone))
        list(machine.apply(at(slot, chosen)))
    kept = [r.node_id for r in machine.removed_state()]
    assert kept == list(voters[-1 - REMOVED_REMEMBERED_MAX : -1])  # the newest 16


@pytest.mark.parametrize(
    "removed",
    [
        [[3, "n3", 4]],  # a row too short
        [[0, "n3", 4, 1]],  # node id 0
        [[3, b"n3", 4, 1]],  # address not text
        [[3, "n" * 256, 4, 1]],  # address too long
        [[3, "n3", -1, 1]],  # negative slot
        [[3, "n3", 4, 1], [3, "n3", 5, 2]],  # an id twice
        [[n, "", 4, 1] for n in range(1, REMOVED_REMEMBERED_MAX + 2)],  # too many
        "not a list",
    ],
)
def test_a_snapshot_with_bad_removed_nodes_is_refused(removed: object) -> None:
    machine = ReplicatedMachine(Appender(), configuration=Configuration.initial([1, 2, 3]))
    before = machine.snapshot()
    with pytest.raises(ValueError):
        machine.restore(msgpack.packb([4, 0, 0, [], [], removed], use_bin_type=True) + b"x")
    assert machine.snapshot() == before


@pytest.mark.parametrize(
    "header",
    [
        [5, 0, 0, [], [], []],  # unknown version
        [4, 0, 0, [], []],  # version 4 without its removed nodes
        [3, 0, 0, []],  # version 3 without its configurations
        [2, 0, []],  # wrong length
        [2, -1, 0, []],  # negative slot
        [2, 0, 5, [[7, 1, 9, b""]]],  # session active after the log time
        [2, 0, 5, [[7, 1, 2, "text"]]],  # reply not bytes
        [2, 0, 5, [[7, 1, 3, b""], [8, 1, 2, b""]]],  # out of activity order
        [2, 0, 5, [[7, 1, 2, b""], [7, 2, 3, b""]]],  # a client twice
        [1, 0, [[7, 1]]],  # a version 1 row of the wrong width
        "not a list",
    ],
)
def test_a_bad_snapshot_header_is_refused_and_changes_nothing(header: object) -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=10)
    list(machine.apply(entry(0, clock(T0), (7, 1, b"a"))))
    before = machine.snapshot()
    with pytest.raises(ValueError):
        machine.restore(msgpack.packb(header, use_bin_type=True) + b"x")
    assert machine.snapshot() == before
