"""Seeds that once found a bug. Each stays here, pinned, with what it found."""

from __future__ import annotations

import pytest

from paxon.sim import SimConfig, replay_command, run_seed

PINNED = [
    # seed, nodes (0: a swarm seed, drawing its own), what it found
    (
        1307,
        3,
        "a Learn requested as a follower arrived after the node became leader; the "
        "learned slots stayed in its proposals and broke check_invariants; and, once "
        "the runtime changed members, a leader preparing a later configuration met an "
        "acceptor whose log started past it, asked again and again and never learned",
    ),
    (
        5034,
        0,
        "an operator's transfer-leader on its way at the heal moved the leader in the "
        "quiet phase: a handover, not the quiet-stable break the checker called it",
    ),
    (
        241,
        0,
        "the probe-quorum property judged a Prepare released after its fsync by the "
        "candidate's newer probe (a checker bug: the Prepare followed a granted probe)",
    ),
    (
        55,
        0,
        "self-addressed votes were counted when stepped in, not when released: a vote "
        "released before a higher promise looked like one cast after it",
    ),
    (
        5057,
        0,
        "a candidate stepped down by an acceptor's compacted log asked it to catch up, "
        "but refused its snapshot as not from the leader: no leader for 6 s after healing",
    ),
    (
        5090,
        0,
        "behind candidates each met the restarted leader's compacted log, stepped down to "
        "learn and waited out a full timeout: four lost elections, no leader after healing",
    ),
    (
        5049,
        0,
        "the leader-lease checker counted a learner's replies toward the leader's majority: "
        "a leader cut off from the voters, heard only by a learner, stepped down rightly and "
        "was called wrong (a checker bug; found once the simulated links followed membership)",
    ),
    (
        280,
        0,
        "a wiped voter's removal was chosen and the members took it back at once (they "
        "bound only what their newest configuration binds) though it still votes until the "
        "removal takes effect; quiet-stable then counted it; a node now keeps the oldest "
        "binding it holds, and the simulator counts such a node refused",
    ),
    (
        100,
        0,
        "a voter wiped before every member had learned its binding was taken back by one "
        "that had not, and broke agreement: the window docs/membership.md leaves open; the "
        "wipe fault now strikes only a voter every member knows bound",
    ),
    (
        2000016,
        0,
        "a bit flipped in a segment header cut short by a crash (22 of its 32 bytes) was "
        "taken as the cut and the segment dropped; recovery now checks a short header's "
        "bytes as it does a zero-filled one's (found by a one-hour run, session 21)",
    ),
    (
        2000272,
        0,
        "a learner promoted while cut off for 0.9 s stood a timeout after it learned so, "
        "and election-timer counted its wait from the last restart it saw, 1 s before (a "
        "checker bug: its timer restarts unseen while it may not stand; one-hour run)",
    ),
    (
        2000871,
        0,
        "a roll-over's seal lost, the new segment empty: the disk fault then lost the "
        "record before it as 'a seal before an empty one', a synced vote no check can see "
        "(a fault-model bug: recovery-fold named it; one-hour run)",
    ),
    (
        2002105,
        0,
        "a node removed while it stood at 7.2, added back as a learner after the heal, "
        "refused the settled leader's 7.1 and deposed it, as it must: quiet-stable now "
        "starts over on such an outbid (a checker gap; session 21's one-hour run)",
    ),
    (
        2002326,
        0,
        "wrong-disk mixed in n5's first segment, its header torn at creation (incarnation "
        "and checksum still zeros): n4's own torn header has those bytes, so no check can "
        "refuse it (a checker bug; session 21's one-hour run)",
    ),
    (
        3000029,
        0,
        "n1's snapshot at 70, installed from a peer, lost its tail on disk; recovery fell "
        "back to the one at 29 and the log, holes where the lost one's slots were, and "
        "chosen-stable still held n1 to its old chosen mark 80 (a checker bug: the node "
        "knows the prefix only to its first hole; session 22's one-hour run)",
    ),
    (
        3000798,
        0,
        "an operator's removal, delayed past another one, left n1 alone in its "
        "configuration; it sends no Accept, so the checkers saw votes nobody proposed, "
        "a queue that never emptied and lease reads where it confirmed reads by itself "
        "(a checker gap: its own votes now count as its proposals; session 22's hour)",
    ),
    (
        3001238,
        0,
        "two failed fsyncs armed on n1's log before it hit the first: it stopped on "
        "that one, as it must, and its next life stopped on the second, judged as a "
        "node stopping on a bug of its own (a fault-model bug: one is armed at a time "
        "now; session 22's hour)",
    ),
    (
        2000990,
        0,
        "a client's lane went round a removed node, two spares and a node left behind "
        "that kept naming a removed leader, and never reached a member: no operation "
        "completed after the heal (a client-model bug: a lane now tries the nodes its "
        "operation was not sent to in this round first; session 21's hour)",
    ),
    (
        3001298,
        0,
        "the same loop after the leader removed itself: n1, removed long before and "
        "stuck at slot 47, redirected every lane to n4, and the lanes went on to the "
        "spares and back to n1 (session 22's hour)",
    ),
    (
        3001403,
        0,
        "the lone-voter aim asked its changes back to back from before the cluster "
        "settled: with alpha 64 and a window of one slot a change stayed ahead all "
        "along, so the cluster was never settled (an aim bug: it asks only once the "
        "cluster settled; session 22's hour)",
    ),
    (
        4000160,
        0,
        "n3, removed while cut off and probing since, was added back as a learner by "
        "the lone-voter aim after the cluster settled and became a follower on "
        "joining: quiet-stable took that for a deposition (a checker bug: a node "
        "that joins after settling may follow; session 23's hour)",
    ),
    (
        5001222,
        0,
        "n2, left the only voter after the heal, was forged messages from itself: a "
        "'foreign' ballot of its own id was its own, so a forged Nack deposed it "
        "(quiet-stable), and a stolen ballot found no other owner (IndexError, which "
        "ended the long run): a simulator bug, the lone member now hears the outsider "
        "(session 24's hour)",
    ),
    (
        6001908,
        0,
        "n6, a spare added as a learner, crashed with its learning unsynced and came "
        "back holding only its --peers guess (itself a voter), and probed; "
        "stand-non-voter judged it by the prefix it had reported before the crash (a "
        "checker bug: a crash now forgets it; session 25's hour)",
    ),
    (
        6002143,
        0,
        "as 6001908: a learner back from a crash with only its --peers guess, judged "
        "by the prefix it reported before (stand-non-voter; session 25's hour)",
    ),
    (
        6001689,
        0,
        "the lease-removal aim removed the settled leader n2 after the heal; n1 and n3 "
        "learned the removal from its snapshot past it, stopped hearing n2, and n3 "
        "stood before n2 could hand over (quiet-stable): the aim now starts the heal's "
        "rules over, as the lone-voter stop does (session 25's hour; 6001684 alike)",
    ),
    (
        6001684,
        0,
        "as 6001689: the settled leader removed by the lease-removal aim, a voter "
        "standing before the handover (quiet-stable; session 25's hour)",
    ),
    (
        6000580,
        0,
        "n2, a voter stuck at slot 2 before the change that added n7, never caught up "
        "after the heal: it does not link to n7, the leader, and its probes were refused "
        "by the members it knew, which sent it nothing (heal-settles, liveness): a "
        "refused prober now asks the peer that refused for the log (session 25's hour)",
    ),
    (
        7000575,
        0,
        "n3, refused by n2 and granted by n1, asked n2 for the log as it began to "
        "prepare from slot 1, learned slots 1..2 and compacted to 3 before its own "
        "promise, which so reported from 3; the core counted it (it knew those slots "
        "chosen) and lead-quorum did not: a checker bug, the rule now takes the "
        "prefix the Accept claims chosen (session 26's hour)",
    ),
    (
        7003126,
        0,
        "as 7000575: a candidate's promise from a compacted log, below the prefix "
        "it knew chosen, counted by the core and not by lead-quorum (session 26's hour)",
    ),
    (
        7003182,
        0,
        "as 7000575 (lead-quorum on a promise from a compacted log; session 26's hour)",
    ),
    (
        7002048,
        0,
        "the swarm drew 1 KiB segments (records of 512 bytes) and 40 commands to a "
        "batch; a batch of 24 came to 563 bytes and the leader stopped on "
        "RecordTooLarge: a simulator configuration bug, the swarm now fits a full "
        "batch and a lone change in a record (session 26's hour)",
    ),
    (
        7003556,
        0,
        "a window of one slot and two changes of 64 slots each to bring into effect "
        "after the heal (one pending, then the new leader's binding): settled 0.86 s "
        "after it, against the 0.745 s of an election alone; heal-settles now allows "
        "each change its time to take effect (session 26's hour)",
    ),
    (
        8000723,
        0,
        "a duplicated request to remove n2 reached the leader after it had proposed "
        "the first and was answered busy; the operator took the change for refused "
        "and let two disks be lost that the new voters needed (quiet-progress, "
        "liveness): the node now makes a repeated change wait for the one on its way "
        "(session 27's hour)",
    ),
    (
        12000083,
        0,
        "n2, paused past the heal, was let run at the heal but what its socket buffers "
        "held (a dead n3's Prepare of the fault phase) arrived at the pause's planned end, "
        "0.75 s later, and deposed the leader the cluster had settled on (quiet-stable): "
        "a simulator bug, the heal now lets it in at once (session 30's long run)",
    ),
    (
        13000390,
        0,
        "n1, behind, learned n6's add as a learner and its removal in one advance of "
        "its prefix: its members were 1-5 before and after, so it never remembered n6 "
        "removed and would not tell n6 (removed-remembered): the core now counts the "
        "members of every change it passed over (session 31's long run)",
    ),
    (
        14001053,
        0,
        "n7's installed snapshot at 11 lost its log mark to a crash point, then a bit "
        "flip: recovery fell back to the log, holes at 2-10 below the chosen mark 14 "
        "(as seed 3000029); a later life, holes and all, learned 2-10 again and "
        "chosen-advances held it to 14 (a checker bug: the life holds the prefix only "
        "to its first hole; session 31's second long run)",
    ),
    (
        15000652,
        0,
        "n1, being removed, was cut off past the heal until its removal took effect, "
        "but two disks recovery refused left the old configuration short of a majority "
        "without it: nobody could elect a leader to make the change take effect "
        "(heal-settles, liveness; a simulator bug: the cut now heals when the others "
        "cannot do without it; session 32's long run)",
    ),
    (
        15000759,
        0,
        "the same as 15000652, with n5 cut off through its removal and crashes and "
        "refused disks leaving no majority without it (liveness; session 32's long run)",
    ),
]


@pytest.mark.sim
@pytest.mark.parametrize(("seed", "nodes", "found"), PINNED, ids=[str(p[0]) for p in PINNED])
def test_pinned_seed_passes(seed: int, nodes: int, found: str) -> None:
    config = SimConfig(nodes=nodes, swarm=nodes == 0)
    result = run_seed(seed, config)
    assert result.ok, f"{found}\n{result.violations[:3]}\nreplay: {replay_command(seed, config)}"


PINNED_CORE = [
    (
        445,
        "core engine swarm: a removed leader handed over, and the simulated clients went "
        "round between it (no leader known) and a spare that still named it, as a turn "
        "taken from the last target allowed; they now keep their own turn, as paxon.Client",
    ),
]


@pytest.mark.sim
@pytest.mark.parametrize(("seed", "found"), PINNED_CORE, ids=[str(p[0]) for p in PINNED_CORE])
def test_pinned_core_seed_passes(seed: int, found: str) -> None:
    config = SimConfig(nodes=0, swarm=True, engine="core")
    result = run_seed(seed, config)
    assert result.ok, f"{found}\n{result.violations[:3]}\nreplay: {replay_command(seed, config)}"
