"""Where ``paxon dev``'s nodes live: ids, ports, data directories, certificates.

Rules:
- Node ``i`` (1 to ``NODES_MAX``) listens on ``base_port + i - 1`` (native),
  ``http_base_port + i - 1`` (HTTP) and, with peer TLS, ``peer_base_port + i - 1``
  (peers); it keeps its data in ``DIR/node<i>`` and appends its stdout and
  stderr to ``DIR/node<i>.log``. So a dev cluster holds at most ``NODES_MAX``
  nodes, the ones it starts with and the ones ``add`` makes while it runs.
- The first nodes start with ``--peers`` naming all of them; a node added while
  the cluster runs starts with ``--join`` and the client ports of the running
  members (``DevNode.join``). A restart reuses the same argv: ``serve`` ignores
  ``--peers`` and ``--join`` on a data directory that already holds state.
- Certificates: a CA and one certificate per node in ``DIR/certs`` (``paxon
  certs``), made on first use and reused; a node added later gets its own.
- Pure planning: nothing here starts a process; ``ports_in_use`` and
  ``with_certificates`` touch sockets and files, nothing else does.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

from paxon.errors import BadRequest
from paxon.server.config import Address, format_address

HOST = "127.0.0.1"
NODES_MAX = 9  # ids 1..9: each base port starts a range of 9 ports
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
    join: str = ""  # client ports of members to ask (a node added while dev runs)

    @property
    def peer_address(self) -> Address:
        return self.peer or self.listen

    def ports(self) -> list[Address]:
        return [self.listen, self.http] + ([self.peer] if self.peer else [])

    def argv(self, peers: str) -> list[str]:
        peer_listen = ("--peer-listen", format_address(self.peer)) if self.peer else ()
        members = ("--join", self.join) if self.join else ("--peers", peers)
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
            *members,
            *peer_listen,
            *self.tls_args,
        ]


@dataclass(frozen=True, slots=True)
class PortBases:
    """Node 1's ports; node ``i``'s are ``i - 1`` above them."""

    native: int
    http: int
    peer: int | None = None  # None: no peer TLS, peers share the native port

    def plan_node(self, node_id: int, data_dir: str) -> DevNode:
        """Node ``node_id`` of a dev cluster keeping its data under ``data_dir``."""
        if not 1 <= node_id <= NODES_MAX:
            raise BadRequest(f"paxon dev runs nodes 1..{NODES_MAX}, not {node_id}")
        offset = node_id - 1
        return DevNode(
            node_id=node_id,
            listen=(HOST, self.native + offset),
            http=(HOST, self.http + offset),
            data_dir=os.path.join(data_dir, f"node{node_id}"),
            log_path=os.path.join(data_dir, f"node{node_id}.log"),
            peer=None if self.peer is None else (HOST, self.peer + offset),
        )


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
    bases = PortBases(base_port, http_base_port, peer_base_port)
    return [bases.plan_node(node_id, data_dir) for node_id in range(1, nodes + 1)]


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


def check_ports(plan: Sequence[DevNode]) -> None:
    """``BadRequest`` naming every port of ``plan`` that is taken."""
    busy = ports_in_use([address for node in plan for address in node.ports()])
    if busy:
        names = ", ".join(format_address(address) for address in busy)
        raise BadRequest(
            f"port(s) already in use: {names} (another paxon dev? pick others with "
            "--base-port, --http-base-port and --peer-base-port)"
        )
