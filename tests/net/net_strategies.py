"""Hypothesis strategies for every wire message, valid by construction."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from paxon.net import (
    Authenticate,
    ChangeMembers,
    Failure,
    Hello,
    Query,
    Redirect,
    Refused,
    Reply,
    StatusReply,
    StatusRequest,
    Submit,
    Welcome,
    WireMessage,
)
from paxon.net.client_messages import MEMBER_ACTIONS
from paxon.net.peer_messages import SnapshotChunk
from paxon.protocol.messages import (
    Accept,
    Accepted,
    ChosenPrefix,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Nack,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    RemovedNotice,
    TimeoutNow,
)
from paxon.protocol.types import Ballot, BallotRun, Command, Entry, Value

UINT_MAX = 2**63 - 1

uints = st.integers(0, UINT_MAX)
small_uints = st.integers(0, 1000)
node_ids = st.integers(1, UINT_MAX)

ballots = st.one_of(
    st.just(Ballot(0, 0)),
    st.builds(Ballot, st.integers(1, UINT_MAX), uints),
)
commands = st.builds(Command, uints, uints, st.binary(max_size=40))
values = st.lists(commands, max_size=4).map(lambda items: Value(tuple(items)))
entries = st.builds(Entry, uints, ballots, values)


@st.composite
def chosen_prefixes(draw: st.DrawFn) -> ChosenPrefix:
    lengths = draw(st.lists(st.integers(1, 1000), max_size=4))
    slot_chosen = draw(st.integers(sum(lengths), UINT_MAX))
    runs = []
    start = slot_chosen - sum(lengths)
    for length in lengths:
        runs.append(BallotRun(start, start + length, draw(ballots)))
        start += length
    return ChosenPrefix(slot_chosen, tuple(runs))


@st.composite
def promises(draw: st.DrawFn) -> Promise:
    slot_from = draw(st.integers(0, UINT_MAX - 100))
    found = draw(st.lists(entries, max_size=3))
    reported = tuple(
        Entry(slot_from + entry.slot % 100, entry.ballot, entry.value) for entry in found
    )
    slot_chosen = draw(uints)
    log_start = draw(st.integers(0, slot_chosen))
    return Promise(
        draw(node_ids), draw(node_ids), draw(ballots), slot_from, reported, slot_chosen, log_start
    )


@st.composite
def nacks(draw: st.DrawFn) -> Nack:
    low, high = sorted([draw(ballots), draw(ballots)])
    return Nack(draw(node_ids), draw(node_ids), low, high)


@st.composite
def learns(draw: st.DrawFn) -> Learn:
    slots = sorted(draw(st.sets(uints, max_size=4)))
    learned = tuple(Entry(slot, draw(ballots), draw(values)) for slot in slots)
    return Learn(draw(node_ids), draw(node_ids), learned)


status_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.binary(max_size=10),
)
status_values: st.SearchStrategy[Any] = st.recursive(
    status_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)

peer_messages: st.SearchStrategy[WireMessage] = st.one_of(
    st.builds(Probe, node_ids, node_ids, ballots),
    st.builds(ProbeReply, node_ids, node_ids, ballots, st.booleans()),
    st.builds(Prepare, node_ids, node_ids, ballots, uints, st.none() | ballots),
    promises(),
    nacks(),
    st.builds(Accept, node_ids, node_ids, ballots, uints, values, chosen_prefixes()),
    st.builds(Accepted, node_ids, node_ids, ballots, uints, uints),
    st.builds(Heartbeat, node_ids, node_ids, ballots, chosen_prefixes(), uints),
    st.builds(HeartbeatReply, node_ids, node_ids, ballots, uints, uints),
    st.builds(LearnRequest, node_ids, node_ids, uints),
    st.builds(TimeoutNow, node_ids, node_ids, ballots),
    st.builds(RemovedNotice, node_ids, node_ids, uints),
    learns(),
    st.builds(
        SnapshotChunk, node_ids, node_ids, uints, uints, st.binary(max_size=64), st.booleans()
    ),
)

client_messages: st.SearchStrategy[WireMessage] = st.one_of(
    st.builds(Hello, st.text(max_size=20), uints, uints),
    st.builds(Welcome, st.text(max_size=20), uints),
    st.builds(Refused, st.text(max_size=40)),
    st.builds(Submit, uints, uints, uints, st.binary(max_size=40)),
    st.builds(Query, uints, st.binary(max_size=40), st.booleans()),
    st.builds(StatusRequest, uints),
    st.builds(Authenticate, uints, st.text(max_size=20), st.text(max_size=20)),
    st.builds(
        ChangeMembers,
        uints,
        st.sampled_from(MEMBER_ACTIONS),
        uints,
        st.text(max_size=20),
        st.text(max_size=20),
    ),
    st.builds(Reply, uints, st.binary(max_size=40)),
    st.builds(Redirect, uints, st.none() | uints, st.none() | st.text(max_size=20)),
    st.builds(Failure, uints, st.sampled_from(["busy", "timeout", "x"]), st.text(max_size=20)),
    st.builds(StatusReply, uints, st.dictionaries(st.text(max_size=8), status_values, max_size=4)),
)

wire_messages = st.one_of(peer_messages, client_messages)
