"""The node processes of a running ``paxon dev``: start, signal, restart, add and
remove them, and say when one exits.

Rules:
- Every node dev has started is a row, in one of four states: ``running``,
  ``paused`` (stopped by ``pause``, until ``resume``), ``exited`` (its process
  ended: a crash, ``kill``, ``stop``), ``removed`` (taken out of the cluster by
  ``remove``; never started again under that id until ``add`` reuses it).
- A node that exits is reported once (``exits``), in one line: which node, its
  exit code or signal, its log. The others keep running. An exit with an error
  code that no command asked for adds the last lines of its log.
- ``kill``/``stop``/``pause``/``resume`` signal one node's process (it runs in
  a session of its own, so nothing else gets the signal); ``stop`` and the final
  ``stop_all`` also resume a paused node so that it can act on ``SIGTERM``.
- ``restart`` starts an exited node again with its first argv on its data dir
  (``serve`` then ignores ``--peers``/``--join``: the data dir knows the members).
- ``add`` picks the lowest id in 1..``NODES_MAX`` that is neither a node of dev
  nor a member of the cluster's newest configuration, asks the cluster to add
  it as a learner the leader promotes once caught up
  (``add-learner-auto-promote``), then starts it with ``--join`` (certificate
  made first, as for the first nodes). A removed node's old data dir under that
  id is deleted first: its id is no member, so the data is no acceptor's state.
- ``remove`` asks the cluster to remove the node; once the change is chosen it
  sends the node ``SIGTERM``.
- Membership requests go to the running nodes' client ports and give up after
  ``CHANGE_TIMEOUT_S``; dev's console waits for them (Ctrl-C too). They speak
  TLS with dev's CA under ``--client-tls`` and log in as ``DevSettings.user``
  (``$PAXON_USER``) once the cluster's auth is enabled. Without a user, a
  change the cluster refuses for want of a login is asked again as ``root``
  with a password typed at dev's terminal (``ask_password``; no terminal: the
  error says to set ``$PAXON_USER`` and ``$PAXON_PASSWORD``); a login that
  works is kept for the next changes.
- A change that is chosen is written to dev's record (``dev_record``), so that
  a later ``paxon dev`` on the same directory starts the same members.
- Every operation returns the line to print, or raises ``DevCommandError``
  with a one-line reason; nothing here prints.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from paxon.client import Client
from paxon.errors import BadRequest, PaxonError, Unauthenticated
from paxon.security.client_tls import ClientTls
from paxon.server.config import format_address
from paxon.server.dev_plan import (
    NODES_MAX,
    DevNode,
    PortBases,
    ports_in_use,
    with_certificates,
)
from paxon.server.dev_record import DevRecord, record_path, write_record

STOP_TIMEOUT_S = 10.0
CHANGE_TIMEOUT_S = 15.0  # one membership change (add, remove), as the CLI's default
STATUS_TIMEOUT_S = 1.0  # a node's own view in ``status`` (a paused node never answers)
LOG_TAIL_LINES = 15
ROOT_USER = "root"  # asked for when no $PAXON_USER is set: only root may change members

_T = TypeVar("_T")


class DevCommandError(Exception):
    """A console command that cannot be done; the message is one line."""


class _NeedsLogin(DevCommandError):
    """The cluster refused a request for want of a login, or of a right one."""


@dataclass(slots=True)
class _Row:
    node: DevNode
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False
    removed: bool = False
    exit_reported: bool = False
    signal_sent: str = ""  # the command that signalled it last (kill, stop, remove)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def state(self) -> str:
        if self.running:
            state = "paused" if self.paused else "running"
            return f"{state} (removed)" if self.removed else state
        return "removed" if self.removed else "exited"


@dataclass(frozen=True, slots=True)
class DevSettings:
    """What every node of one dev cluster shares."""

    data_dir: str
    bases: PortBases
    peers: str  # the --peers of the first nodes
    client_tls: bool = False
    ca_cert: str | None = None  # None: --insecure, no certificates
    commands: bool = True  # whether dev reads commands (messages suggest them)
    user: str | None = None  # who membership changes log in as ($PAXON_USER)
    password: str | None = None
    # Asks a person for a user's password (None: no terminal to ask at).
    ask_password: Callable[[str], str | None] | None = None

    def client_tls_settings(self) -> ClientTls | None:
        """How dev's own requests reach the client ports (TLS with ``--client-tls``)."""
        if not self.client_tls or self.ca_cert is None:
            return None
        return ClientTls(cacert=self.ca_cert)


class DevNodes:
    """The processes of one dev cluster, by node id."""

    def __init__(
        self, plan: Sequence[DevNode], settings: DevSettings, *, record: DevRecord | None = None
    ) -> None:
        """``record``: what to update when a change is chosen (None: keep none)."""
        self.settings = settings
        self.record = record
        self._rows: dict[int, _Row] = {node.node_id: _Row(node) for node in plan}
        self._user, self._password = settings.user, settings.password
        self._readiness: dict[int, str] = {}  # each node's readiness, as ``_roles`` last saw

    # ------------------------------------------------------------- lifecycle

    def start_all(self) -> None:
        for row in self._rows.values():
            self._start(row)

    def nodes(self) -> list[DevNode]:
        return [self._rows[node_id].node for node_id in sorted(self._rows)]

    def states(self) -> dict[int, str]:
        """Each node's state: ``running``, ``paused``, ``exited`` or ``removed``."""
        return {node_id: self._rows[node_id].state for node_id in sorted(self._rows)}

    def running_ids(self) -> list[int]:
        return sorted(i for i, row in self._rows.items() if row.running)

    def first_exited(self) -> int | None:
        """The id of a node whose process has ended, if any (used while starting)."""
        return next((i for i, row in self._rows.items() if row.process and not row.running), None)

    def exits(self) -> list[str]:
        """One line (and a log tail for a crash) per node that exited since the last call."""
        lines: list[str] = []
        for node_id in sorted(self._rows):
            row = self._rows[node_id]
            if row.process is None or row.running or row.exit_reported:
                continue
            row.exit_reported = True
            row.paused = False
            lines += self.exit_report(node_id, others="the others keep running", restartable=True)
        return lines

    def exit_report(self, node_id: int, *, others: str, restartable: bool) -> list[str]:
        """What to say about node ``node_id``, which has exited: one line, then its
        log's tail if it failed on its own; ``others``: what happens to the rest."""
        row = self._rows[node_id]
        assert row.process is not None and row.process.returncode is not None
        node = row.node
        how = _exit_how(row.process.returncode)
        if row.removed:
            return [f"node {node_id} {how} after its removal (log: {node.log_path})"]
        asked = f" ({row.signal_sent} {node_id})" if row.signal_sent else ""
        restart = restartable and self.settings.commands
        hint = f"; `restart {node_id}` starts it again" if restart else ""
        lines = [f"node {node_id} {how}{asked}; {others}; log: {node.log_path}{hint}"]
        if row.process.returncode > 0 and not row.signal_sent:
            lines += [f"  {line}" for line in log_tail(node.log_path)]
        return lines

    def stop_all(self) -> list[str]:
        """SIGTERM every running node (resumed if paused), SIGKILL what is left after
        ``STOP_TIMEOUT_S``; wait for all. A line for each node that had to be killed."""
        lines = []
        running = [row for row in self._rows.values() if row.running]
        for row in running:
            assert row.process is not None
            row.process.send_signal(signal.SIGTERM)
            if row.paused:
                row.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for row in running:
            assert row.process is not None
            try:
                row.process.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                lines.append(
                    f"node {row.node.node_id} did not stop within {STOP_TIMEOUT_S:g} s; killing it"
                )
                row.process.kill()
                row.process.wait()
        return lines

    # ------------------------------------------------------------- commands

    def status(self) -> list[str]:
        """A table: each node's state, pid, ports, role and readiness (from its own view:
        ``yes``, or ``no (CHECK)`` naming the check that fails, as ``GET /readyz``)."""
        roles = self._roles()
        readiness = self._readiness  # as the views ``_roles`` just fetched say
        header = ("node", "state", "pid", "native", "http", "peer", "role", "ready")
        table = [header]
        for node_id in sorted(self._rows):
            row = self._rows[node_id]
            node = row.node
            state = row.state
            if state == "exited" and row.process is not None:
                state = f"exited ({_exit_short(row.process.returncode)})"
            table.append(
                (
                    str(node_id),
                    state,
                    str(row.process.pid) if row.running and row.process else "-",
                    format_address(node.listen),
                    format_address(node.http),
                    format_address(node.peer) if node.peer else "-",
                    roles.get(node_id, "-"),
                    readiness.get(node_id, "-"),
                )
            )
        widths = [max(len(line[column]) for line in table) for column in range(len(header))]
        return [
            "  "
            + "  ".join(
                cell.ljust(width) for cell, width in zip(line, widths, strict=True)
            ).rstrip()
            for line in table
        ]

    def send(self, command: str, node_id: int) -> str:
        """``kill``, ``stop``, ``pause`` or ``resume`` node ``node_id``."""
        row = self._row(node_id)
        if not row.running:
            raise DevCommandError(f"node {node_id} is {row.state}; nothing to {command}")
        assert row.process is not None
        process = row.process
        match command:
            case "kill":
                process.kill()
                row.signal_sent, row.paused = command, False
                return f"node {node_id}: sent SIGKILL (pid {process.pid})"
            case "stop":
                process.send_signal(signal.SIGTERM)
                if row.paused:
                    process.send_signal(signal.SIGCONT)
                row.signal_sent, row.paused = command, False
                return f"node {node_id}: sent SIGTERM (pid {process.pid}); it stops in a moment"
            case "pause":
                if row.paused:
                    raise DevCommandError(f"node {node_id} is already paused")
                process.send_signal(signal.SIGSTOP)
                row.paused = True
                return f"node {node_id}: paused (SIGSTOP); `resume {node_id}` continues it"
            case "resume":
                if not row.paused:
                    raise DevCommandError(f"node {node_id} is not paused")
                process.send_signal(signal.SIGCONT)
                row.paused = False
                return f"node {node_id}: resumed (SIGCONT)"
            case _:
                raise AssertionError(f"not a signal command: {command}")

    def restart(self, node_id: int) -> str:
        row = self._row(node_id)
        if row.removed:
            raise DevCommandError(f"node {node_id} was removed; `add` makes a new node")
        if row.running:
            raise DevCommandError(f"node {node_id} is {row.state}; `kill` or `stop` it first")
        self._start(row)
        assert row.process is not None
        return f"node {node_id}: started again (pid {row.process.pid}) on {row.node.data_dir}"

    def add(self) -> str:
        """Add the next node as a learner promoted once caught up, and start it."""
        members = self._configuration_ids()
        taken = members | {i for i, row in self._rows.items() if not row.removed}
        free = [i for i in range(1, NODES_MAX + 1) if i not in taken]
        if not free:
            raise DevCommandError(f"paxon dev runs at most {NODES_MAX} nodes (ids 1..{NODES_MAX})")
        node = self._plan_joiner(free[0])
        address = format_address(node.peer_address)
        self._change("add-learner-auto-promote", node.node_id, address)
        recorded = self._record_change(lambda record: record.with_added(node.node_id))
        row = _Row(node)
        self._rows[node.node_id] = row
        self._start(row)
        assert row.process is not None
        return (
            f"node {node.node_id}: added as a learner at {address} and started with --join "
            f"(pid {row.process.pid}); the leader promotes it to voter once it has caught up"
            f"{recorded}"
        )

    def remove(self, node_id: int) -> str:
        row = self._row(node_id)
        if row.removed:
            raise DevCommandError(f"node {node_id} was already removed")
        configuration = self._change("remove", node_id)
        recorded = self._record_change(lambda record: record.with_removed(node_id))
        row.removed = True
        stopping = ""
        if row.running:
            assert row.process is not None
            row.process.send_signal(signal.SIGTERM)
            if row.paused:
                row.process.send_signal(signal.SIGCONT)
            stopping = "; sent it SIGTERM"
        return (
            f"node {node_id}: removed from the cluster (configuration epoch "
            f"{configuration.get('epoch')}){stopping}{recorded}"
        )

    # ------------------------------------------------------------- helpers

    def _row(self, node_id: int) -> _Row:
        row = self._rows.get(node_id)
        if row is None:
            known = ", ".join(str(i) for i in sorted(self._rows))
            raise DevCommandError(f"no node {node_id} in this dev cluster (nodes: {known})")
        return row

    def _start(self, row: _Row) -> None:
        node = row.node
        descriptor = os.open(node.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(descriptor, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- paxon dev: node {node.node_id} starting at {stamp} ---\n".encode())
            log.flush()
            row.process = subprocess.Popen(
                node.argv(self.settings.peers),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        row.paused = row.exit_reported = False
        row.signal_sent = ""

    def _plan_joiner(self, node_id: int) -> DevNode:
        """Node ``node_id`` planned, its ports checked, its certificate and an empty
        data dir made; ``--join`` names the running nodes."""
        settings = self.settings
        try:
            node = settings.bases.plan_node(node_id, settings.data_dir)
            others = [row.node for i, row in self._rows.items() if i != node_id]
            clash = set(node.ports()) & {port for other in others for port in other.ports()}
            if clash:
                names = ", ".join(format_address(address) for address in sorted(clash))
                raise BadRequest(f"node {node_id}'s ports {names} are other nodes' ports")
            busy = ports_in_use(node.ports())
            if busy:
                names = ", ".join(format_address(address) for address in busy)
                raise BadRequest(f"port(s) {names} are in use by another process")
            if settings.ca_cert is not None:
                tls = settings.client_tls
                [node], _ = with_certificates([node], settings.data_dir, client_tls=tls)
            if os.path.exists(node.data_dir):
                shutil.rmtree(node.data_dir)  # a removed node's: no member's state
            os.makedirs(node.data_dir, mode=0o700)
        except BadRequest as error:
            raise DevCommandError(f"cannot add node {node_id}: {error}") from None
        except OSError as error:
            raise DevCommandError(f"cannot add node {node_id}: {error}") from None
        return replace(node, join=",".join(self._client_endpoints()))

    def _client_endpoints(self) -> list[str]:
        endpoints = [
            format_address(row.node.listen)
            for row in self._rows.values()
            if row.running and not row.paused and not row.removed
        ]
        if not endpoints:
            raise DevCommandError("no node is running to ask")
        return endpoints

    def _configuration_ids(self) -> set[int]:
        status = self._ask(lambda client: client.status())
        configuration = status.get("configuration")
        if configuration is None:
            raise DevCommandError("no node answered with the cluster's members")
        return {int(member["id"]) for member in configuration.get("members", [])}

    def _record_change(self, change: Callable[[DevRecord], DevRecord]) -> str:
        """Write the record with ``change`` made; what to add to the command's line
        (nothing, or why the record could not be written: the change itself is made)."""
        if self.record is None:
            return ""
        updated = change(self.record)
        try:
            write_record(self.settings.data_dir, updated)
        except OSError as error:
            path = record_path(self.settings.data_dir)
            return f"; but cannot write {path} ({error}): a later paxon dev will not know"
        self.record = updated
        return ""

    def _change(self, action: str, node_id: int, address: str = "") -> dict[str, Any]:
        """Ask for one membership change, logging in first if the cluster asks for it."""

        def change(client: Client) -> Awaitable[dict[str, Any]]:
            return client.change_members(action, node_id, address)

        try:
            return self._ask(change, login=True)
        except _NeedsLogin as refused:
            ask = self.settings.ask_password
            if self._user is not None or ask is None:
                hint = (
                    ""
                    if self._user is not None
                    else (
                        "; start paxon dev with $PAXON_USER and $PAXON_PASSWORD set "
                        "(a user with role root)"
                    )
                )
                raise DevCommandError(f"{refused}{hint}") from None
            password = ask(ROOT_USER)
            if password is None:
                raise DevCommandError(f"{refused} (no password given)") from None
            self._user, self._password = ROOT_USER, password
            try:
                return self._ask(change, login=True)
            except _NeedsLogin as again:
                self._user = self._password = None  # a wrong one: ask again next time
                raise DevCommandError(str(again)) from None

    def _ask(
        self,
        call: Callable[[Client], Awaitable[_T]],
        timeout_s: float = CHANGE_TIMEOUT_S,
        endpoints: list[str] | None = None,
        *,
        login: bool = False,
    ) -> _T:
        """Run ``call(client)`` against ``endpoints`` (the running members' client ports),
        as dev's user when ``login``; ``DevCommandError`` if it fails (``_NeedsLogin``
        when the cluster wants a login or a right one)."""
        if endpoints is None:
            endpoints = self._client_endpoints()
        user, password = (self._user, self._password) if login else (None, None)

        async def run() -> _T:
            tls = self.settings.client_tls_settings()
            async with Client(
                endpoints, timeout=timeout_s, tls=tls, user=user, password=password
            ) as client:
                return await call(client)

        try:
            return asyncio.run(run())
        except Unauthenticated as error:
            raise _NeedsLogin(_one_line(str(error) or type(error).__name__)) from None
        except PaxonError as error:
            raise DevCommandError(_one_line(str(error) or type(error).__name__)) from None

    def _roles(self) -> dict[int, str]:
        """Each answering node's role in its own view (leader, follower, learner, removed)."""
        endpoints = [
            format_address(row.node.listen)
            for row in self._rows.values()
            if row.running and not row.paused
        ]
        self._readiness = {}
        if not endpoints:
            return {}
        try:
            views = self._ask(lambda client: client.node_views(), STATUS_TIMEOUT_S, endpoints)
        except DevCommandError:
            return {}
        roles: dict[int, str] = {}
        for view in views:
            if not view:
                continue
            me = view.get("node_id")
            health = view.get("health")
            if isinstance(me, int) and isinstance(health, dict):
                ready = bool(health.get("ready"))
                self._readiness[me] = "yes" if ready else f"no ({health.get('failed')})"
            for member in view.get("members", []):
                if member.get("id") == me and isinstance(me, int):
                    roles[me] = str(member.get("role") or "?")
            if isinstance(me, int) and me not in roles:
                roles[me] = "removed"
        return roles


# ------------------------------------------------------------------- helpers


def log_tail(path: str) -> list[str]:
    """The last ``LOG_TAIL_LINES`` lines of a node's log (one line saying why not)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(log.tell() - 16_384, 0))
            text = log.read().decode(errors="replace")
    except OSError as error:
        return [f"(cannot read it: {error.strerror or error})"]
    return text.splitlines()[-LOG_TAIL_LINES:]


def _exit_how(code: int) -> str:
    if code < 0:
        return f"was killed by {_signal_name(-code)}"
    return f"exited with code {code}"


def _exit_short(code: int | None) -> str:
    if code is not None and code < 0:
        return _signal_name(-code)
    return f"code {code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
