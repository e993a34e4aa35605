"""``paxon dev``: a local cluster of N ``paxon serve`` processes on 127.0.0.1, in the foreground.

Rules:
- Node ``i`` (from 1) listens on ``base_port + i - 1`` (native) and
  ``http_base_port + i - 1`` (HTTP), keeps its data in ``DIR/node<i>`` and has
  every node as a peer. Its stdout and stderr are appended to ``DIR/node<i>.log``.
- Secure by default: the nodes speak mutual TLS to each other on peer ports of
  their own (``peer_base_port + i - 1``), with a CA and node certificates that
  ``paxon dev`` makes once in ``DIR/certs`` (``paxon certs``) and reuses.
  Client ports stay plain on 127.0.0.1 so the README's commands work as
  written; ``--client-tls`` puts them under TLS too (``PAXON_CACERT`` then
  points clients at the CA). ``--insecure`` turns peer TLS off: one port per
  node, and every node warns that its peers are not authenticated.
- Nothing starts unless every port is free and the data directory can be made;
  otherwise one clear line on stderr and exit 2.
- The banner (endpoints, dashboard, commands to try) is printed once every node
  accepts connections on both ports.
- Ctrl-C or SIGTERM: SIGTERM to every node, wait for them (SIGKILL after
  ``STOP_TIMEOUT_S``), exit 0.
- A node that exits on its own: say which, with its exit code and the last
  lines of its log, stop the others, exit 1.

The children run in their own session, so a Ctrl-C at the terminal reaches
only this process, which then stops them in order.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import FrameType

from paxon.errors import BadRequest
from paxon.server.config import Address, format_address

HOST = "127.0.0.1"
DEFAULT_ENDPOINTS = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
POLL_INTERVAL_S = 0.1
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 15
NODES_MAX = 9


CERTS_DIR = "certs"
CLUSTER_ID = "paxon"
PEER_BASE_PORT = 7101


@dataclass(frozen=True, slots=True)
class DevNode:
    node_id: int
    listen: Address
    http: Address
    data_dir: str
    log_path: str
    peer: Address | None = None  # a peer port of its own (peer TLS)
    tls_args: tuple[str, ...] = ()

    @property
    def peer_address(self) -> Address:
        return self.peer or self.listen

    def argv(self, peers: str) -> list[str]:
        peer_listen = ("--peer-listen", format_address(self.peer)) if self.peer else ()
        return [
            sys.executable,
            "-m",
            "paxon",
            "serve",
            "--id",
            str(self.node_id),
            "--data-dir",
            self.data_dir,
            "--listen",
            format_address(self.listen),
            "--http",
            format_address(self.http),
            "--peers",
            peers,
            *peer_listen,
            *self.tls_args,
        ]


def plan_nodes(
    nodes: int,
    base_port: int,
    http_base_port: int,
    data_dir: str,
    *,
    peer_base_port: int | None = None,
) -> list[DevNode]:
    """The nodes ``paxon dev`` would start (with peer ports when ``peer_base_port``
    is given); ``BadRequest`` if the ports do not fit."""
    if not 1 <= nodes <= NODES_MAX:
        raise BadRequest(f"--nodes must be 1..{NODES_MAX}, got {nodes}")
    native = range(base_port, base_port + nodes)
    http = range(http_base_port, http_base_port + nodes)
    named = [("native", "--base-port", native), ("http", "--http-base-port", http)]
    if peer_base_port is not None:
        named.append(("peer", "--peer-base-port", range(peer_base_port, peer_base_port + nodes)))
    for _, flag, ports in named:
        if ports.start < 1 or ports.stop - 1 > 65535:
            raise BadRequest(f"{flag}: ports {ports.start}..{ports.stop - 1} are not all valid")
    for i, (name_a, _, ports_a) in enumerate(named):
        for name_b, _, ports_b in named[i + 1 :]:
            if set(ports_a) & set(ports_b):
                raise BadRequest(
                    f"{name_a} ports {ports_a.start}..{ports_a.stop - 1} overlap "
                    f"{name_b} ports {ports_b.start}..{ports_b.stop - 1}"
                )
    return [
        DevNode(
            node_id=index + 1,
            listen=(HOST, native[index]),
            http=(HOST, http[index]),
            data_dir=os.path.join(data_dir, f"node{index + 1}"),
            log_path=os.path.join(data_dir, f"node{index + 1}.log"),
            peer=None if peer_base_port is None else (HOST, peer_base_port + index),
        )
        for index in range(nodes)
    ]


def with_certificates(
    plan: Sequence[DevNode], data_dir: str, *, client_tls: bool
) -> tuple[list[DevNode], str]:
    """``plan`` with each node's TLS flags, from the CA in ``DATA_DIR/certs`` (made on
    first use, reused after; a node without a certificate yet gets one); the CA file."""
    from paxon.security.certs import issue_node_cert, write_cluster_certs

    directory = os.path.join(data_dir, CERTS_DIR)
    ca_cert = os.path.join(directory, "ca.pem")
    ids = [node.node_id for node in plan]
    try:
        if not os.path.exists(ca_cert):
            write_cluster_certs(directory, CLUSTER_ID, ids, clients=["dev"])
        for node_id in ids:
            if not os.path.exists(os.path.join(directory, f"node-{node_id}.pem")):
                issue_node_cert(directory, node_id)
    except (OSError, ValueError) as error:
        raise BadRequest(f"cannot make certificates in {directory}: {error}") from None
    nodes = []
    for node in plan:
        cert = os.path.join(directory, f"node-{node.node_id}.pem")
        key = os.path.join(directory, f"node-{node.node_id}-key.pem")
        args = ["--peer-cert", cert, "--peer-key", key, "--peer-ca", ca_cert]
        if client_tls:
            args += ["--cert", cert, "--key", key]
        nodes.append(replace(node, tls_args=tuple(args)))
    return nodes, ca_cert


def ports_in_use(addresses: Sequence[Address]) -> list[Address]:
    """The addresses that cannot be bound now (bound as a server binds: SO_REUSEADDR)."""
    busy = []
    for address in addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError:
                busy.append(address)
    return busy


def run_dev(
    nodes: int,
    base_port: int,
    http_base_port: int,
    data_dir: str,
    *,
    peer_base_port: int = PEER_BASE_PORT,
    insecure: bool = False,
    client_tls: bool = False,
) -> int:
    """Start the cluster, print how to use it, and keep it until a signal or a crash."""
    ca_cert = None
    try:
        if insecure and client_tls:
            raise BadRequest("--client-tls needs peer TLS: leave out --insecure")
        plan = plan_nodes(
            nodes,
            base_port,
            http_base_port,
            data_dir,
            peer_base_port=None if insecure else peer_base_port,
        )
        _check_ports(plan)
        _make_dirs(plan, data_dir)
        if not insecure:
            plan, ca_cert = with_certificates(plan, data_dir, client_tls=client_tls)
    except BadRequest as error:
        print(f"paxon dev: {error}", file=sys.stderr)
        return 2
    stop = _StopSignals()
    children: list[_Child] = []
    try:
        peers = ",".join(f"{node.node_id}={format_address(node.peer_address)}" for node in plan)
        for node in plan:
            children.append(_Child.start(node, peers))
        dead = _wait_until_ready(children, stop)
        if dead is None and not stop.requested:
            _print_banner(plan, data_dir, ca_cert, client_tls=client_tls)
            dead = _wait_for_stop_or_death(children, stop)
        if dead is not None:
            _report_death(dead)
        return 0 if dead is None else 1
    finally:
        _stop_all(children)
        stop.restore()


# ------------------------------------------------------------------- helpers


@dataclass(slots=True)
class _Child:
    node: DevNode
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, node: DevNode, peers: str) -> _Child:
        descriptor = os.open(node.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(descriptor, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- paxon dev: node {node.node_id} starting at {stamp} ---\n".encode())
            log.flush()
            process = subprocess.Popen(
                node.argv(peers),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return cls(node, process)


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


def _check_ports(plan: Sequence[DevNode]) -> None:
    addresses = [node.listen for node in plan] + [node.http for node in plan]
    addresses += [node.peer for node in plan if node.peer is not None]
    busy = ports_in_use(addresses)
    if busy:
        names = ", ".join(format_address(address) for address in busy)
        raise BadRequest(
            f"port(s) already in use: {names} (another paxon dev? pick others with "
            "--base-port, --http-base-port and --peer-base-port)"
        )


def _make_dirs(plan: Sequence[DevNode], data_dir: str) -> None:
    try:
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        for node in plan:
            os.makedirs(node.data_dir, mode=0o700, exist_ok=True)
    except OSError as error:
        raise BadRequest(f"cannot create {data_dir}: {error.strerror or error}") from None


def _wait_until_ready(children: Sequence[_Child], stop: _StopSignals) -> _Child | None:
    """Wait until every node accepts connections; the first child that died, if any."""
    pending = [address for child in children for address in (child.node.listen, child.node.http)]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while pending and not stop.requested and time.monotonic() < deadline:
        dead = _first_dead(children)
        if dead is not None:
            return dead
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
    return _first_dead(children)


def _wait_for_stop_or_death(children: Sequence[_Child], stop: _StopSignals) -> _Child | None:
    while not stop.requested:
        dead = _first_dead(children)
        if dead is not None:
            return dead
        time.sleep(POLL_INTERVAL_S)
    return None


def _first_dead(children: Sequence[_Child]) -> _Child | None:
    return next((child for child in children if child.process.poll() is not None), None)


def _accepts(address: Address) -> bool:
    try:
        with socket.create_connection(address, timeout=POLL_INTERVAL_S):
            return True
    except OSError:
        return False


def _stop_all(children: Sequence[_Child]) -> None:
    running = [child for child in children if child.process.poll() is None]
    for child in running:
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in running:
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            print(
                f"paxon dev: node {child.node.node_id} did not stop within "
                f"{STOP_TIMEOUT_S:g} s; killing it",
                file=sys.stderr,
            )
            child.process.kill()
            child.process.wait()


def _report_death(child: _Child) -> None:
    code = child.process.returncode
    if code is not None and code < 0:
        how = f"was killed by {signal.Signals(-code).name}"
    else:
        how = f"exited with code {code}"
    lines = [
        f"paxon dev: node {child.node.node_id} {how}; stopping the others.",
        f"last lines of {child.node.log_path}:",
    ]
    lines += [f"  {line}" for line in _log_tail(child.node.log_path)]
    print("\n".join(lines), file=sys.stderr)


def _log_tail(path: str) -> list[str]:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(log.tell() - 16_384, 0))
            text = log.read().decode(errors="replace")
    except OSError as error:
        return [f"(cannot read it: {error.strerror or error})"]
    return text.splitlines()[-LOG_TAIL_LINES:]


def _print_banner(
    plan: Sequence[DevNode], data_dir: str, ca_cert: str | None, *, client_tls: bool
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
    lines = [f"paxon dev: {len(plan)} nodes on {HOST}, data in {data_dir}", ""]
    lines += [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines += [
        "",
        f"dashboard  {dashboard}  (every node's http port serves one)",
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
        "Ctrl-C stops the cluster.",
    ]
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
