"""``paxon dev``: a local cluster of ``paxon serve`` processes on 127.0.0.1, in the
foreground, that survives its nodes and takes commands from its terminal.

Rules:
- Where the nodes live (ids, ports, data dirs, certificates): ``dev_plan``.
  At most ``NODES_MAX`` nodes, the first ``--nodes`` and those ``add`` makes.
- Run again on the same DIR, dev starts the members it recorded there
  (``dev_record``): nodes added earlier come back, removed ones stay down.
- Membership changes log in as ``$PAXON_USER`` with ``$PAXON_PASSWORD`` when
  set (once the cluster's auth is enabled only a root user may change the
  members); when they are not and the cluster asks for a login, dev asks its
  terminal for root's password (``dev_nodes``).
- Secure by default: the nodes speak mutual TLS to each other on peer ports of
  their own, with a CA and node certificates that ``paxon dev`` makes once in
  ``DIR/certs`` (``paxon certs``) and reuses. Client ports stay plain on
  127.0.0.1 so the README's commands work as written; ``--client-tls`` puts
  them under TLS too (``PAXON_CACERT`` then points clients at the CA).
  ``--insecure`` turns peer TLS off: one port per node, and every node warns
  that its peers are not authenticated.
- Nothing starts unless every port is free and the data directory can be made;
  otherwise one clear line on stderr and exit 2.
- The banner (endpoints, dashboard, commands to try) is printed once every node
  accepts connections on both ports. A node that exits before that is a
  failed start: say which, with the last lines of its log, stop the others, exit 1.
- After the banner a node that exits is reported in one line and the others
  keep running (``dev_nodes``); the terminal's commands (``dev_console``) kill,
  stop, pause, resume, restart, add and remove nodes.
- ``--chaos``: dev also serves its own dashboard, with kill/pause/resume/restart
  buttons, on 127.0.0.1 one port below node 1's HTTP port
  (``dev_dashboard``); that port is bound before anything is written, and a
  taken one is a refusal like the others (exit 2). The buttons' commands run
  on this thread between console lines.
- Ctrl-C, SIGTERM or ``quit``: SIGTERM to every node, wait for them (SIGKILL
  after ``STOP_TIMEOUT_S``), exit 0.

The children run in their own session, so a Ctrl-C at the terminal reaches
only this process, which then stops them in order.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import ssl
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from paxon.errors import BadRequest
from paxon.server.config import Address, format_address
from paxon.server.dev_console import LineReader, help_lines, run_line, stdin_reader
from paxon.server.dev_dashboard import ChaosDashboard
from paxon.server.dev_nodes import STOP_TIMEOUT_S, DevNodes, DevSettings
from paxon.server.dev_plan import (
    HOST,
    NODES_MAX,
    PEER_BASE_PORT,
    DevNode,
    PortBases,
    check_ports,
    plan_nodes,
    ports_in_use,
    with_certificates,
)
from paxon.server.dev_record import DevRecord, read_record, reconcile, record_path, write_record

DEFAULT_ENDPOINTS = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
DEFAULT_NODES = 3
DEFAULT_BASE_PORT = 7001
DEFAULT_HTTP_BASE_PORT = 8001
POLL_INTERVAL_S = 0.1
READY_TIMEOUT_S = 30.0


def run_dev(
    nodes: int | None,
    base_port: int | None,
    http_base_port: int | None,
    data_dir: str,
    *,
    peer_base_port: int | None = None,
    insecure: bool = False,
    client_tls: bool = False,
    chaos: bool = False,
) -> int:
    """Start the cluster, print how to use it, and keep it until a signal or ``quit``.
    A count or port left None is the recorded one (``dev_record``), else the default."""
    ca_cert = None
    shown = _Published()
    dashboard = None
    try:
        if insecure and client_tls:
            raise BadRequest("--client-tls needs peer TLS: leave out --insecure")
        recorded = read_record(data_dir)
        if recorded is None:
            record = _new_record(nodes, base_port, http_base_port, peer_base_port, insecure)
        else:
            record = recorded
            notes = reconcile(
                record,
                nodes=nodes,
                base_port=base_port,
                http_base_port=http_base_port,
                peer_base_port=peer_base_port,
                insecure=insecure,
                data_dir=data_dir,
            )
            _say(notes, sys.stderr)
        plan = record.plan(data_dir)
        check_ports(plan)
        if chaos:  # bound before anything is written: a taken port changes nothing
            dashboard = _chaos_dashboard(record.bases.http - 1, shown)
        _make_dirs(plan, data_dir)
        if recorded is None:
            _write_record(data_dir, record)
        if not insecure:
            plan, ca_cert = with_certificates(plan, data_dir, client_tls=client_tls)
        if dashboard is not None and client_tls:
            dashboard.ssl_context = ssl.create_default_context(cafile=ca_cert)
        user, password = _credentials()
    except BadRequest as error:
        if dashboard is not None:
            dashboard.close()
        print(f"paxon dev: {error}", file=sys.stderr)
        return 2
    console = stdin_reader()
    settings = DevSettings(
        data_dir,
        record.bases,
        record.first_peers(data_dir),
        client_tls=client_tls,
        ca_cert=ca_cert,
        commands=console is not None,
        user=user,
        password=password,
        ask_password=_terminal_password if console is not None and console.is_terminal else None,
    )
    cluster = DevNodes(plan, settings, record=record)
    stop = _StopSignals()
    serving = False
    try:
        cluster.start_all()
        failed = _wait_until_ready(cluster, stop)
        if failed is not None:
            report = cluster.exit_report(failed, others="stopping the others", restartable=False)
            _say(report, sys.stderr)
            return 1
        if stop.requested:
            return 0
        again = recorded is not None
        _print_banner(
            plan, data_dir, ca_cert, client_tls=client_tls, console=console is not None, again=again
        )
        serving = True
        if dashboard is not None:
            shown.publish(cluster, client_tls)
            dashboard.start()
            host, port = dashboard.address
            _say(
                [f"chaos dashboard: http://{host}:{port}/ (kill, pause, resume, restart)"],
                sys.stdout,
            )
        _serve_until_stopped(cluster, console, stop, dashboard, shown, client_tls)
        return 0
    finally:
        if dashboard is not None:
            dashboard.close()
        if serving and cluster.running_ids():  # a leader hands over first: up to 2 s
            _say(["stopping the nodes"], sys.stderr)
        _say(cluster.stop_all(), sys.stderr)
        stop.restore()


def _new_record(
    nodes: int | None,
    base_port: int | None,
    http_base_port: int | None,
    peer_base_port: int | None,
    insecure: bool,
) -> DevRecord:
    """The record of a cluster started now from these flags (defaults where None)."""
    count = DEFAULT_NODES if nodes is None else nodes
    native = DEFAULT_BASE_PORT if base_port is None else base_port
    http = DEFAULT_HTTP_BASE_PORT if http_base_port is None else http_base_port
    peer = None if insecure else PEER_BASE_PORT if peer_base_port is None else peer_base_port
    plan_nodes(count, native, http, ".", peer_base_port=peer)  # BadRequest if they do not fit
    return DevRecord(PortBases(native, http, peer), count, tuple(range(1, count + 1)))


def _write_record(data_dir: str, record: DevRecord) -> None:
    try:
        write_record(data_dir, record)
    except OSError as error:
        raise BadRequest(f"cannot write {record_path(data_dir)}: {error}") from None


def _credentials() -> tuple[str | None, str | None]:
    """Who dev's membership changes log in as: ``$PAXON_USER`` and ``$PAXON_PASSWORD``,
    as every client command (needed once the cluster's auth is enabled)."""
    user = os.environ.get("PAXON_USER") or None
    password = os.environ.get("PAXON_PASSWORD")
    if user is not None and password is None:
        raise BadRequest("$PAXON_USER is set but $PAXON_PASSWORD is not: set both, or neither")
    return user, password if user is not None else None


def _terminal_password(user: str) -> str | None:
    """Ask this terminal for ``user``'s password (not echoed); None if none is typed."""
    try:
        prompt = f"paxon dev: the cluster asks for a login; password for {user}: "
        password = getpass.getpass(prompt)
    except (EOFError, OSError):
        return None
    return password or None


# ------------------------------------------------------------------- helpers


def _chaos_dashboard(port: int, shown: _Published) -> ChaosDashboard:
    """``--chaos``'s server, bound (not started); ``BadRequest`` if the port is taken."""
    try:
        if port < 1:
            raise OSError("there is no port below 1")
        return ChaosDashboard(HOST, port, node_urls=lambda: shown.urls, states=lambda: shown.states)
    except (OSError, OverflowError) as error:
        raise BadRequest(
            f"--chaos: cannot serve its dashboard on {HOST}:{port} "
            f"(one below --http-base-port): {error}"
        ) from None


class _Published:
    """What the chaos dashboard's thread reads: swapped whole by the main thread."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.states: dict[int, str] = {}

    def publish(self, cluster: DevNodes, client_tls: bool) -> None:
        scheme = "https" if client_tls else "http"
        running = set(cluster.running_ids())
        self.urls = [
            f"{scheme}://{format_address(node.http)}"
            for node in cluster.nodes()
            if node.node_id in running
        ]
        self.states = cluster.states()


def _serve_until_stopped(
    cluster: DevNodes,
    console: LineReader | None,
    stop: _StopSignals,
    dashboard: ChaosDashboard | None = None,
    shown: _Published | None = None,
    client_tls: bool = False,
) -> None:
    """Report exits and run the console's and the chaos dashboard's commands until a
    stop signal or ``quit``."""

    def from_dashboard(line: str) -> tuple[list[str], list[str]]:
        done, errors, _ = run_line(line, cluster)
        _say([f"(dashboard) {line}", *done], sys.stdout)
        _say(errors, sys.stderr)
        if shown is not None:
            # Before the button's request is answered: a page that reads the
            # states right after its POST must see what the command did (the
            # chaos TLS test read "running" after a pause, now and then).
            shown.publish(cluster, client_tls)
        return done, errors

    while not stop.requested:
        _say(cluster.exits(), sys.stderr)
        if dashboard is not None and shown is not None:
            dashboard.run_pending(from_dashboard)
            shown.publish(cluster, client_tls)
        if console is None:
            time.sleep(POLL_INTERVAL_S)
            continue
        for line in console.read_lines(POLL_INTERVAL_S):
            done, errors, quit_requested = run_line(line, cluster)
            _say(done, sys.stdout)
            _say(errors, sys.stderr)
            if quit_requested:
                return


def _say(lines: Sequence[str], stream: TextIO) -> None:
    """Each line, prefixed ``paxon dev:`` unless indented (a table row, a log tail)."""
    for line in lines:
        print(line if line.startswith("  ") else f"paxon dev: {line}", file=stream, flush=True)


class _StopSignals:
    """SIGINT and SIGTERM set ``requested`` instead of interrupting; ``restore`` undoes it."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {
            number: signal.signal(number, self._on_signal)
            for number in (signal.SIGINT, signal.SIGTERM)
        }

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self.requested = True


def _make_dirs(plan: Sequence[DevNode], data_dir: str) -> None:
    try:
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        for node in plan:
            os.makedirs(node.data_dir, mode=0o700, exist_ok=True)
    except OSError as error:
        raise BadRequest(f"cannot create {data_dir}: {error.strerror or error}") from None


def _wait_until_ready(cluster: DevNodes, stop: _StopSignals) -> int | None:
    """Wait until every node accepts connections; the id of a node that exited, if any."""
    pending = [address for node in cluster.nodes() for address in (node.listen, node.http)]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while pending and not stop.requested and time.monotonic() < deadline:
        failed = cluster.first_exited()
        if failed is not None:
            return failed
        pending = [address for address in pending if not _accepts(address)]
        if pending:
            time.sleep(POLL_INTERVAL_S)
    if pending and not stop.requested:
        names = ", ".join(format_address(address) for address in pending)
        print(
            f"paxon dev: still waiting for {names} after {READY_TIMEOUT_S:g} s; "
            "going on (see the node logs)",
            file=sys.stderr,
        )
    return cluster.first_exited()


def _accepts(address: Address) -> bool:
    try:
        with socket.create_connection(address, timeout=POLL_INTERVAL_S):
            return True
    except OSError:
        return False


def _print_banner(
    plan: Sequence[DevNode],
    data_dir: str,
    ca_cert: str | None,
    *,
    client_tls: bool,
    console: bool,
    again: bool,
) -> None:
    endpoints = ",".join(format_address(node.listen) for node in plan)
    paxon = _paxon_command()
    scheme = "https" if client_tls else "http"
    dashboard = f"{scheme}://{format_address(plan[0].http)}/"
    rows = [("node", "native", "http", "data")] + [
        (
            str(node.node_id),
            format_address(node.listen),
            f"{scheme}://{format_address(node.http)}/",
            node.data_dir,
        )
        for node in plan
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    if ca_cert is None:
        peers = "peers: NOT authenticated (--insecure): anything on this host can pose as a node"
    else:
        peers = f"peers: mutual TLS on their own ports, CA {ca_cert}"
    clients = "clients: TLS" if client_tls else "clients: plain TCP on 127.0.0.1"
    ids = ", ".join(str(node.node_id) for node in plan)
    record = f" (the members in {record_path(data_dir)}: {ids})" if again else ""
    lines = [f"paxon dev: {len(plan)} nodes on {HOST}, data in {data_dir}{record}", ""]
    lines += [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines += [
        "",
        f"dashboard  {dashboard}  (every node's http port serves one; --chaos adds buttons)",
        f"endpoints  {endpoints}",
        f"logs       {os.path.join(data_dir, 'node<i>.log')} (each node's stderr)",
        f"security   {peers}; {clients}",
        "",
        "try it:",
    ]
    if endpoints != DEFAULT_ENDPOINTS:
        lines.append(f"  export PAXON_ENDPOINTS={endpoints}")
    if client_tls and ca_cert is not None:
        lines.append(f"  export PAXON_CACERT={ca_cert}")
    lines += [
        f"  {paxon} put hello world",
        f"  {paxon} get hello",
        f"  curl {'--cacert ' + ca_cert + ' ' if client_tls and ca_cert else ''}"
        f"{dashboard}v1/kv/hello",
        f"  {paxon} status",
        "",
    ]
    if console:
        lines += ["commands (type them here; a node that exits leaves the others running):"]
        lines += help_lines()
        lines += [f"  (at most {NODES_MAX} nodes: ports go up from each base port)", ""]
    else:
        lines += ["(stdin is not a terminal in the foreground: no commands are read)"]
    lines += ["Ctrl-C stops the cluster."]
    print("\n".join(lines), flush=True)


def _paxon_command() -> str:
    """How to run ``paxon`` from here: the console script on PATH, else the one beside Python."""
    if shutil.which("paxon"):
        return "paxon"
    beside = os.path.join(os.path.dirname(sys.executable), "paxon")
    if not os.path.exists(beside):
        return f"{sys.executable} -m paxon"
    relative = os.path.relpath(beside)
    return beside if relative.startswith("..") else relative


__all__ = [
    "HOST",
    "NODES_MAX",
    "STOP_TIMEOUT_S",
    "DevNode",
    "plan_nodes",
    "ports_in_use",
    "run_dev",
    "with_certificates",
]
