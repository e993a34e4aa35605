"""``paxon serve``: one key-value node with its native port and HTTP API.

Start-up refuses, with one line on stderr and exit code 2, a data directory of
another node or cluster, a damaged log, a port in use; with ``--join``, a
node the cluster has not added (exit 3 when no member answers). ``--join`` on
a data directory that already holds state is ignored: the node recovers its
members from there. SIGTERM and SIGINT stop
the node cleanly (the in-flight fsync finishes) with exit code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import ssl
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from paxon.errors import BadRequest, PaxonError
from paxon.kv.model import KvLimits
from paxon.kv.store import KvStore
from paxon.net.peer_auth import INSECURE, PeerSecurity, read_secret_file
from paxon.node.activity import ActivitySampler, own_row
from paxon.node.config import NodeConfig
from paxon.node.environment import REAL, UNSYNCED
from paxon.node.history import HistoryRetention
from paxon.node.join import fetch_configuration, held_state
from paxon.node.kvservice import NodeKvService
from paxon.node.node import Node
from paxon.node.readiness import DiskProbe, Readiness
from paxon.protocol.config import ReplicaConfig
from paxon.protocol.membership import Configuration
from paxon.security.client_tls import ClientTls
from paxon.server.config import ServeConfig
from paxon.server.dev_plan import ports_in_use
from paxon.server.http import start_http
from paxon.storage.errors import StorageError
from paxon.tuning import (
    freeze_survivors,
    log_long_gc_pauses,
    raise_file_limit,
    tune_for_throughput,
)


class _StartupError(Exception):
    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def serve(config: ServeConfig) -> int:
    _setup_logging(config.log_format, config.log_level)
    tune_for_throughput()
    log_long_gc_pauses(logging.getLogger(f"paxon.node.{config.node_id}"))
    try:
        return _run(_serve(config))
    except _StartupError as error:
        print(f"paxon serve: {error}", file=sys.stderr)
        return error.exit_code


async def _serve(config: ServeConfig) -> int:
    log = logging.getLogger(f"paxon.node.{config.node_id}")
    # Ports first: a node that cannot serve must not open its data directory
    # or dial its peers. (Binding again below still reports a lost race.)
    shared = "peers and clients " if config.peer_listen is None else "clients "
    ports = ((shared, config.listen), ("peers ", config.peer_listen), ("HTTP ", config.http))
    for name, address in ports:
        if address is not None and ports_in_use([address]):
            raise _StartupError(
                f"cannot listen for {name}on {_fmt(address)}: the address is in use"
            )
    try:
        limits = KvLimits(value_max_bytes=config.value_max_bytes)
        node_config = _node_config(config, limits)
        security = _security(config)
    except ValueError as error:
        raise _StartupError(str(error)) from None
    raise_file_limit()
    joined = None
    peers: dict[int, str | tuple[str, int]] = dict(config.peers)
    if config.join:
        found = held_state(config.data_dir)
        if found is None:
            joined = await _join(config, security.forwarding, log)
            peers = dict(members_of(joined))
        else:
            # Joined before: the data directory holds the members; --join is
            # the flag a service manager starts the node with every time.
            log.info(
                "[%d] --join ignored: %s already holds this node's state (%s)",
                config.node_id,
                config.data_dir,
                found,
            )
            peers = {config.node_id: _fmt(config.peer_listen or config.listen)}
    if not peers:  # a restart without --peers: the data directory holds the members
        peers = {config.node_id: _fmt(config.peer_listen or config.listen)}
    node = Node(
        config.node_id,
        peers,
        config.data_dir,
        KvStore(limits),
        config=node_config,
        listen=config.listen,
        logger=log,
        peer_listen=config.peer_listen,
        peer_security=security.peers,
        client_tls=security.clients,
        advertise_client=_fmt(config.advertise_client) if config.advertise_client else None,
        forward_tls=security.forwarding,
        joined=joined,
        environment=UNSYNCED if config.unsafe_no_fsync else REAL,
    )
    if config.unsafe_no_fsync:
        log.warning(
            "[%d] --unsafe-no-fsync: nothing is ever fsynced; a power loss loses "
            "acknowledged writes and can break agreement (benchmarks only)",
            config.node_id,
        )
    try:
        await node.start()
    except (StorageError, BadRequest) as error:
        raise _StartupError(str(error)) from None
    except OSError as error:
        raise _StartupError(f"cannot listen on {_fmt(config.listen)}: {error}") from None
    probe = DiskProbe(config.data_dir)
    node.health_report = Readiness(node, probe).report
    prober = asyncio.ensure_future(probe.run())
    activity = ActivitySampler(config.node_id, lambda: own_row(node.status()), node.metrics)
    sampler = asyncio.ensure_future(activity.run())
    if security.peers.mode == "none":  # after start-up, so a refusal stays one line
        _warn_unauthenticated(log, config)
    runner = None
    exit_code = 0
    try:
        if config.http is not None:
            service = NodeKvService(node, limits, activity=activity)
            try:
                runner = await start_http(
                    service,
                    config.http[0],
                    config.http[1],
                    body_max_bytes=config.value_max_bytes + 64 * 1024,
                    allowed_hosts=config.http_allowed_hosts,
                    allowed_origins=config.http_allowed_origins,
                    ssl_context=security.clients,
                    metrics=node.metrics,
                )
            except OSError as error:
                raise _StartupError(
                    f"cannot listen for HTTP on {_fmt(config.http)}: {error}"
                ) from None
            scheme = "https" if security.clients is not None else "http"
            node.http_address = f"{scheme}://{_fmt(config.http)}"
        log.info(
            "[%d] serving: native %s%s, peers %s (%s), http %s%s",
            config.node_id,
            _fmt(config.listen),
            " (TLS)" if config.client_tls else "",
            _fmt(config.peer_listen or config.listen),
            {"tls": "mutual TLS", "secret": "cluster secret", "none": "UNAUTHENTICATED"}[
                security.peers.mode
            ],
            _fmt(config.http) if config.http else "off",
            " (TLS)" if config.http and config.client_tls else "",
        )
        freezer = asyncio.ensure_future(freeze_survivors())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        stopped = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(node.wait_failed())
        await asyncio.wait([stopped, failed], return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            print(
                f"paxon serve: node {config.node_id} stopped: {failed.result()!r}", file=sys.stderr
            )
            exit_code = 1
        else:
            log.info("[%d] stopping on signal", config.node_id)
            failed.cancel()
        freezer.cancel()
    finally:
        prober.cancel()
        sampler.cancel()
        if runner is not None:
            await runner.cleanup()
        await node.stop()
    return exit_code


async def _join(config: ServeConfig, tls: ClientTls | None, log: logging.Logger) -> Configuration:
    """The configuration a new member starts from, asked of ``--join``'s members."""
    try:
        joined = await fetch_configuration(
            config.join,
            config.node_id,
            cluster_id=config.cluster_id,
            tls=tls,
            timeout_s=config.request_timeout_s,
        )
    except PaxonError as error:
        raise _StartupError(f"--join: {error}", error.exit_code) from None
    me = joined.member(config.node_id)
    assert me is not None  # fetch_configuration checked it
    own = _fmt(config.peer_listen or config.listen)
    if me.address != own:
        log.warning(
            "[%d] the cluster dials this node at %s, but it listens for peers on %s",
            config.node_id,
            me.address,
            own,
        )
    log.info(
        "[%d] joining as a %s: configuration %d from %s, members %s",
        config.node_id,
        "voter" if me.voter else "learner",
        joined.epoch,
        ",".join(config.join),
        sorted(joined.ids),
    )
    return joined


def members_of(configuration: Configuration) -> dict[int, str]:
    return {member.node_id: member.address for member in configuration.members}


def _warn_unauthenticated(log: logging.Logger, config: ServeConfig) -> None:
    log.warning(
        "[%d] PEERS ARE NOT AUTHENTICATED: any process that can reach %s can pose as a "
        "member and rewrite this node's state. Use --peer-cert/--peer-key/--peer-ca "
        "(paxon certs makes them) or --cluster-secret-file.",
        config.node_id,
        _fmt(config.peer_listen or config.listen),
    )


@dataclass(frozen=True, slots=True)
class _Security:
    peers: PeerSecurity
    clients: ssl.SSLContext | None  # the native (and HTTP) client ports
    forwarding: ClientTls | None  # reaching the other members' client ports


def _security(config: ServeConfig) -> _Security:
    """The TLS contexts and secret the flags name; ValueError with one line if a
    file is missing or wrong."""
    peers = INSECURE
    forwarding = None
    if config.peer_cert is not None:
        from paxon.security.tls import peer_security

        assert config.peer_key is not None and config.peer_ca is not None
        peers = peer_security(config.peer_cert, config.peer_key, config.peer_ca)
    elif config.cluster_secret_file is not None:
        peers = PeerSecurity(secret=read_secret_file(config.cluster_secret_file))
    clients = None
    if config.cert is not None:
        from paxon.security.tls import client_port_context

        assert config.key is not None
        clients = client_port_context(config.cert, config.key, config.client_ca)
        # A member reaches another's client port as a client that trusts the
        # peer CA and shows its own node certificate.
        forwarding = ClientTls(config.peer_ca, config.peer_cert, config.peer_key)
    return _Security(peers, clients, forwarding)


def _node_config(config: ServeConfig, limits: KvLimits) -> NodeConfig:
    return NodeConfig(
        cluster_id=config.cluster_id,
        replica=ReplicaConfig(
            heartbeat_interval_s=config.heartbeat_interval_s,
            election_timeout_min_s=config.election_timeout_min_s,
            election_timeout_max_s=config.election_timeout_max_s,
            lease_reads=config.lease_reads,
            clock_drift_max=config.clock_drift_max,
        ),
        command_max_bytes=config.value_max_bytes + limits.key_max_bytes + 8192,
        request_timeout_s=config.request_timeout_s,
        history=HistoryRetention(config.history_revisions, config.history_seconds),
    )


def _run(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _fmt(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def _setup_logging(log_format: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    with contextlib.suppress(ValueError):
        root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
