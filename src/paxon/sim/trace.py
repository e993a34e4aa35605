"""One readable line per protocol message, for simulator traces."""

from __future__ import annotations

from typing import Any

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
)


def _prefix(chosen: ChosenPrefix) -> str:
    runs = ",".join(f"[{r.slot_start},{r.slot_end})@{r.ballot}" for r in chosen.runs)
    return f"chosen<{chosen.slot_chosen}" + (f" runs={runs}" if runs else "")


def describe(message: Any) -> str:
    match message:
        case Probe(ballot=ballot):
            return f"Probe b={ballot}"
        case ProbeReply(ballot=ballot, granted=granted):
            return f"ProbeReply b={ballot} {'granted' if granted else 'refused'}"
        case Prepare(ballot=ballot, slot_from=slot_from):
            return f"Prepare b={ballot} from={slot_from}"
        case Promise(ballot=ballot, entries=entries, slot_chosen=slot_chosen):
            listed = " ".join(f"{e.slot}:{e.value}@{e.ballot}" for e in entries[:8])
            more = f" +{len(entries) - 8}" if len(entries) > 8 else ""
            return f"Promise b={ballot} chosen<{slot_chosen} [{listed}{more}]"
        case Nack(ballot=ballot, ballot_promised=promised):
            return f"Nack b={ballot} promised={promised}"
        case Accept(ballot=ballot, slot=slot, value=value, chosen=chosen):
            return f"Accept b={ballot} slot={slot} {value} {_prefix(chosen)}"
        case Accepted(ballot=ballot, slot=slot):
            return f"Accepted b={ballot} slot={slot}"
        case Heartbeat(ballot=ballot, chosen=chosen, read_round=read_round):
            return f"Heartbeat b={ballot} {_prefix(chosen)} read={read_round}"
        case HeartbeatReply(ballot=ballot, slot_chosen=slot_chosen, read_round=read_round):
            return f"HeartbeatReply b={ballot} chosen<{slot_chosen} read={read_round}"
        case LearnRequest(slot_from=slot_from):
            return f"LearnRequest from={slot_from}"
        case Learn(entries=entries):
            first, last = (entries[0].slot, entries[-1].slot) if entries else (0, -1)
            return f"Learn slots {first}..{last}"
        case RemovedNotice(epoch=epoch):
            return f"RemovedNotice epoch={epoch}"
        case _:
            return repr(message)
