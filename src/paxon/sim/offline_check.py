"""``paxon check`` tells the truth about every disk a node restarts from: ``check-agrees``.

An operator who finds a node down runs ``paxon check --data-dir DIR`` (the
offline tool, ``storage/check.py``) to learn whether it will start, from
where, and what its start-up will repair. Before every start of a simulated
node on its own disk (every storage fault included), the simulator runs the
same tool on that disk: ``check_data_dir`` with the KV store's snapshot
decoder, as the command does, its reads unobserved
(``MemFileSystem.unobserved``: no injected fault struck, no call counted, so
the run goes on as it would have without the look). Then the node's start-up
opens the directory, and the rule compares the two:

    ``check-agrees``: start-up refuses the directory as damage exactly when
    the check names damage in it outside its snapshot files, the same error
    class on the same file. When start-up opens it, the report agrees with
    what start-up recovered: a fresh directory or not, the snapshot it starts
    from, the torn tail it cuts (file and offset), the chosen prefix, the log
    start, the promise, the number of entries held, and, for a start from
    the log alone, a range of accepted slots that holds every entry held (a
    snapshot's checkpoint holds entries whose records compaction deleted).

A damaged snapshot file start-up can do without (it starts from another)
the check still reports, and that is no disagreement. A start-up that fails
for another reason (an injected I/O error on a read) is not compared.

Cost: one more read of the directory and a decode of its snapshots per
start (a few hundred kilobytes at most in the simulator).
"""

from __future__ import annotations

from collections.abc import Callable

from paxon.sim.checkers import Violation
from paxon.storage.check import CheckReport, check_data_dir, kv_snapshot_check
from paxon.storage.config import StorageConfig
from paxon.storage.errors import DataDirDamaged
from paxon.storage.memfs import MemFileSystem
from paxon.storage.storage import Recovered, Storage

RULE = "check-agrees"


class OfflineCheck:
    """Runs ``paxon check`` before each start and compares (module docstring)."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        self.compared = 0
        self._decode = kv_snapshot_check()

    def open_checked(
        self,
        node_id: int,
        directory: str,
        fs: MemFileSystem,
        config: StorageConfig,
        open_storage: Callable[[], Storage],
        time: float,
    ) -> Storage:
        """``open_storage()``, with the check run before it and compared after."""
        with fs.unobserved():
            # A first start has no directory yet, which paxon check refuses.
            if not fs.is_dir(directory):
                report = None
            else:
                report = check_data_dir(
                    directory, fs=fs, config=config, check_snapshot=self._decode
                )
        if report is None:
            return open_storage()
        try:
            storage = open_storage()
        except DataDirDamaged as damage:
            self.compared += 1
            self._compare_refused(node_id, report, damage, time)
            raise
        self.compared += 1
        self._compare_opened(node_id, report, storage.recovered, time)
        return storage

    def _compare_refused(
        self, node_id: int, report: CheckReport, damage: DataDirDamaged, time: float
    ) -> None:
        bad = report.first_bad
        said = (type(damage).__name__, damage.file)
        if bad is None or (bad["error"], bad["file"]) != said:
            self._fail(
                node_id,
                time,
                f"start-up refused its directory ({said[0]} in {said[1]}), "
                f"paxon check said {_verdict(report)}",
            )

    def _compare_opened(
        self, node_id: int, report: CheckReport, recovered: Recovered, time: float
    ) -> None:
        bad = report.first_bad
        if bad is not None and not any(
            bad["file"].endswith("/" + snapshot["name"]) and not snapshot["valid"]
            for snapshot in report.snapshots
        ):
            self._fail(
                node_id, time, f"start-up opened its directory, paxon check said {_verdict(report)}"
            )
            return
        state = recovered.state
        used = next((s["name"] for s in report.snapshots if s["used"]), None)
        torn = report.torn_tail
        said: dict[str, object] = {
            "fresh": report.identity is None,
            "snapshot used": used,
            "torn tail": None if torn is None else (torn["file"], torn["offset"]),
        }
        known: dict[str, object] = {
            "fresh": recovered.fresh,
            "snapshot used": None if recovered.snapshot is None else recovered.snapshot.name,
            "torn tail": None
            if recovered.torn is None
            else (recovered.torn.path, recovered.torn.offset),
        }
        if not recovered.fresh:
            said |= {
                "chosen below": report.slots.get("chosen_below"),
                "log start": report.slots.get("log_start"),
                "promise": report.slots.get("ballot_promised"),
                "entries held": report.slots.get("entries_held"),
            }
            known |= {
                "chosen below": state.slot_chosen,
                "log start": state.log_start,
                "promise": str(state.ballot_promised),
                "entries held": len(state.entries),
            }
        differ = [
            f"{key}: check {said[key]!r}, start-up {known[key]!r}"
            for key in said
            if said[key] != known[key]
        ]
        # From a snapshot, entries come from its checkpoint too, whose records
        # compaction may have deleted: the range is the log's records only.
        if state.entries and recovered.snapshot is None:
            low, high = min(state.entries), max(state.entries)
            accepted = report.slots.get("accepted")
            span = None if accepted is None else tuple(int(n) for n in accepted.split(".."))
            if span is None or not span[0] <= low <= high <= span[1]:
                differ.append(f"accepted slots: check {accepted!r}, start-up holds {low}..{high}")
        if differ:
            self._fail(node_id, time, "paxon check and start-up disagree: " + "; ".join(differ))

    def _fail(self, node_id: int, time: float, detail: str) -> None:
        self.violations.append(Violation(time, RULE, f"n{node_id}: {detail}"))


def _verdict(report: CheckReport) -> str:
    bad = report.first_bad
    if bad is None:
        return "OK"
    return f"DAMAGED: {bad['error']} in {bad['file']}"
