"""The settings of one server (``paxon serve``), from flags, a TOML file, or both.

Rules:
- Every setting has one name. The TOML key is the flag without ``--`` and with
  ``_`` for ``-`` (``--data-dir`` is ``data_dir``); the node id is ``--id`` / ``id``.
- A flag that was given wins over the file. A flag that was not given (absent
  or None) leaves the file's value, and then the default.
- Flags are text as typed. TOML values are typed: ids, sizes and seconds are
  TOML numbers; addresses are ``"HOST:PORT"`` strings; ``peers`` is either the
  flag's ``"1=HOST:PORT,2=HOST:PORT"`` string or a table ``{"1" = "HOST:PORT"}``.
- ``listen`` defaults to this node's own address in ``peers``; ``http`` is
  optional (no HTTP endpoint without it).
- ``join`` (client endpoints of existing members, ``"HOST:PORT,..."`` or a
  TOML array) starts a new member that asks the cluster for its configuration
  (``paxon.node.join``); it excludes ``peers`` and needs ``listen``. Neither
  is needed to restart on a data directory that keeps its members
  (``FIRST-CONFIG``); ``listen`` then is.
- ``peer_listen`` gives peers a port of their own; ``peers`` then names peer
  addresses and ``listen`` (required then) is the client port. Peer TLS
  (``peer_cert``, ``peer_key``, ``peer_ca``: all three) and client TLS
  (``cert``, ``key``, optional ``client_ca``) need it; a cluster secret
  (``cluster_secret_file``) does not. Peer TLS and a secret exclude each other.
  Client TLS needs peer TLS: nodes forward to each other's client ports and
  trust the peer CA for it.
- Everything is checked here, at the edge. A bad value is a ``BadRequest``
  whose one-line message names where it came from (``--listen: ...`` or
  ``config.toml: key 'listen': ...``), so ``paxon serve`` refuses to start with
  exit 2 and says why.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, cast

from paxon.errors import BadRequest
from paxon.kv.model import HISTORY_REVISIONS_MAX
from paxon.node.history import HISTORY_REVISIONS_DEFAULT, HISTORY_SECONDS_MAX
from paxon.server.guard import ANY_HOST, parse_host_entry, parse_origin_entry
from paxon.storage.identity import CLUSTER_ID_MAX_BYTES
from paxon.storage.layout import FIRST_CONFIG_NAME

Address = tuple[str, int]
LogFormat = Literal["text", "json"]

MIB = 1024 * 1024
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    node_id: int
    data_dir: str
    listen: Address
    http: Address | None
    # Every member, this node included, by node id (empty with ``join``).
    peers: Mapping[int, Address]
    cluster_id: str = "paxon"
    log_format: LogFormat = "text"
    log_level: str = "info"
    # Timing of the replica (seconds of its clock).
    heartbeat_interval_s: float = 0.05
    election_timeout_min_s: float = 0.3
    election_timeout_max_s: float = 0.6
    # Lease reads (docs/protocol.md "Lease reads"): every member alike, or none.
    lease_reads: bool = False
    clock_drift_max: float = 0.05
    # Limits: a larger value is refused (413); a request gets no answer after this long.
    value_max_bytes: int = 1 * MIB
    request_timeout_s: float = 10.0
    # History the leader keeps readable (paxon.node.history): revisions, and
    # seconds of log time (None: no time-based retention).
    history_revisions: int = HISTORY_REVISIONS_DEFAULT
    history_seconds: float | None = None
    # Benchmarks only: skip every fsync (paxon.storage.unsynced). A power loss
    # then loses acknowledged writes and can break agreement.
    unsafe_no_fsync: bool = False
    # Security (docs/security.md): a peer port, how peers prove who they are,
    # client TLS, and the client address told to the other members.
    peer_listen: Address | None = None
    peer_cert: str | None = None
    peer_key: str | None = None
    peer_ca: str | None = None
    cluster_secret_file: str | None = None
    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None
    advertise_client: Address | None = None
    # HTTP: names (HOST or HOST:PORT, or *) this node answers to besides its listen
    # host, localhost and its own IPs; origins (scheme://host[:port]) whose pages may
    # call the API. Empty: only same-origin requests (see paxon.server.guard).
    http_allowed_hosts: tuple[str, ...] = ()
    http_allowed_origins: tuple[str, ...] = ()
    # A new member: the client endpoints it asks for the configuration (no peers then).
    join: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.join and self.peers:
            raise BadRequest(_JOIN_AND_PEERS)
        if self.peers:  # none: --join, or a restart (load_serve_config checks which)
            _check_member(self.node_id, self.peers)
        if self.http is not None and self.http == self.listen:
            raise BadRequest(f"http and listen are the same address {format_address(self.http)}")
        self._check_security()
        if not self.heartbeat_interval_s < self.election_timeout_min_s:
            raise BadRequest("heartbeat_interval_s must be below election_timeout_min_s")
        if self.election_timeout_max_s < self.election_timeout_min_s:
            raise BadRequest("election_timeout_max_s must be >= election_timeout_min_s")

    @property
    def peer_tls(self) -> bool:
        return self.peer_cert is not None

    @property
    def client_tls(self) -> bool:
        return self.cert is not None

    def _check_security(self) -> None:
        peer_files = (self.peer_cert, self.peer_key, self.peer_ca)
        if any(peer_files) and not all(peer_files):
            raise BadRequest("peer TLS needs all of --peer-cert, --peer-key and --peer-ca")
        if (self.cert is None) != (self.key is None):
            raise BadRequest("client TLS needs both --cert and --key")
        if self.client_ca is not None and self.cert is None:
            raise BadRequest("--client-ca needs --cert and --key (client TLS)")
        if self.peer_tls and self.cluster_secret_file is not None:
            raise BadRequest("use peer TLS or --cluster-secret-file, not both")
        if self.client_tls and not self.peer_tls:
            raise BadRequest(
                "client TLS (--cert) needs peer TLS too: nodes forward requests to each "
                "other's client ports and trust --peer-ca for it"
            )
        if self.peer_listen is None:
            if self.peer_tls or self.client_tls:
                raise BadRequest("TLS needs --peer-listen: peers and clients on separate ports")
            return
        for name, address in (("listen", self.listen), ("http", self.http)):
            if address == self.peer_listen:
                shared = format_address(self.peer_listen)
                raise BadRequest(f"peer_listen and {name} are the same address {shared}")


def load_serve_config(flags: Mapping[str, object], toml_path: str | None) -> ServeConfig:
    """Merge the flags given over the TOML file at ``toml_path`` (if any) and check it all."""
    values: dict[str, object] = {}
    if toml_path is not None:
        for key, value in _read_toml(toml_path).items():
            if key not in _SETTINGS:
                raise BadRequest(f"{toml_path}: unknown key {key!r}{_did_you_mean(key)}")
            values[key] = _convert(key, value, f"{toml_path}: key {key!r}", from_text=False)
    for key, value in flags.items():
        if key not in _SETTINGS:
            raise BadRequest(f"unknown setting {key!r}{_did_you_mean(key)}")
        if value is not None:
            values[key] = _convert(key, value, _flag_name(key), from_text=True)
    for key in _REQUIRED:
        if key not in values:
            raise BadRequest(f"missing {_flag_name(key)} (or {key!r} in the config file)")
    node_id = cast(int, values["id"])
    if "join" in values:
        if "peers" in values:
            raise BadRequest(_JOIN_AND_PEERS)
        if "listen" not in values:
            raise BadRequest("--join needs --listen (there is no --peers entry to take it from)")
        values["peers"] = MappingProxyType({})
    elif "peers" not in values:
        # A restart: the data directory keeps the members it started with
        # (FIRST-CONFIG) and its log the changes since, so --peers is not needed.
        if not os.path.exists(os.path.join(str(values["data_dir"]), FIRST_CONFIG_NAME)):
            raise BadRequest(
                "missing --peers (or 'peers' in the config file), or --join; a node "
                "restarted on a data directory that holds its members needs neither"
            )
        if "listen" not in values:
            raise BadRequest("a restart without --peers needs --listen")
        values["peers"] = MappingProxyType({})
    peers = cast(Mapping[int, Address], values["peers"])
    if peers:
        _check_member(node_id, peers)
    if "peer_listen" in values and "listen" not in values:
        raise BadRequest(
            "--peer-listen needs --listen too: --peers then names peer addresses, "
            "and --listen is the client port"
        )
    values.setdefault("listen", peers.get(node_id))
    fields = {_SETTINGS[key][0]: value for key, value in values.items()}
    fields.setdefault("http", None)
    return ServeConfig(**fields)  # type: ignore[arg-type]


def parse_address(text: str) -> Address:
    """``"HOST:PORT"`` (``"[::1]:PORT"`` for IPv6) as ``(host, port)``; ValueError if malformed."""
    host, colon, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port_text.isdigit():
        raise ValueError(f"bad address {text!r} (want HOST:PORT)")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"bad port in {text!r} (want 1..65535)")
    return host, port


def format_address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_peers(text: str) -> dict[int, Address]:
    """``"1=HOST:PORT,2=HOST:PORT"`` as ``{1: (host, port), ...}``; ValueError if malformed."""
    pairs: list[tuple[object, object]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        node_text, equals, address_text = part.partition("=")
        if not equals:
            raise ValueError(f"bad peer {part.strip()!r} (want ID=HOST:PORT)")
        pairs.append((node_text.strip(), address_text))
    return _peer_map(pairs)


# ------------------------------------------------------------------- helpers


def _check_member(node_id: int, peers: Mapping[int, Address]) -> None:
    if node_id not in peers:
        members = ", ".join(str(member) for member in sorted(peers))
        raise BadRequest(f"id {node_id} is not among the peers ({members})")


def _read_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise BadRequest(f"{path}: cannot read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise BadRequest(f"{path}: not valid TOML: {error}") from None


def _convert(key: str, value: object, where: str, *, from_text: bool) -> object:
    _, converter = _SETTINGS[key]
    try:
        return converter(value, from_text)
    except ValueError as error:
        raise BadRequest(f"{where}: {error}") from None


def _flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, list(_SETTINGS), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _node_id(value: object, from_text: bool) -> int:
    number = _integer(value, from_text)
    if number < 1:
        raise ValueError(f"node id must be >= 1, got {number}")
    return number


def _positive_int(value: object, from_text: bool) -> int:
    number = _integer(value, from_text)
    if number < 1:
        raise ValueError(f"must be >= 1, got {number}")
    return number


def _integer(value: object, from_text: bool) -> int:
    if from_text and isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"not an integer: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, got {_describe(value)}")
    return value


def _history_revisions(value: object, from_text: bool) -> int:
    number = _integer(value, from_text)
    if not 1 <= number <= HISTORY_REVISIONS_MAX:
        raise ValueError(
            f"must be from 1 to {HISTORY_REVISIONS_MAX} (the store's hard cap on history), "
            f"got {number}"
        )
    return number


def _history_seconds(value: object, from_text: bool) -> float:
    number = _seconds(value, from_text)
    if number > HISTORY_SECONDS_MAX:
        raise ValueError(f"must be at most {HISTORY_SECONDS_MAX} (a year), got {value}")
    return number


def _number(value: object, from_text: bool, what: str) -> float:
    """A number from a flag's text or a TOML number (not a bool)."""
    if from_text and isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be {what}, got {_describe(value)}")
    return float(value)


def _seconds(value: object, from_text: bool) -> float:
    number = _number(value, from_text, "a number of seconds")
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"must be a number of seconds > 0, got {value}")
    return number


def _switch(value: object, from_text: bool) -> bool:
    if from_text and isinstance(value, str):
        word = value.strip().lower()
        if word in ("on", "true", "yes", "1"):
            return True
        if word in ("off", "false", "no", "0"):
            return False
        raise ValueError(f"must be on or off, got {value!r}")
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {_describe(value)}")
    return value


CLOCK_DRIFT_MAX_LIMIT = 0.5
"""``clock_drift_max`` is at most this: a lease of a third of the election timeout."""


def _drift(value: object, from_text: bool) -> float:
    number = _number(value, from_text, "a number")
    if not (math.isfinite(number) and 0 <= number <= CLOCK_DRIFT_MAX_LIMIT):
        raise ValueError(f"must be a fraction from 0 to {CLOCK_DRIFT_MAX_LIMIT}, got {value}")
    return number


def _text(value: object, from_text: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_describe(value)}")
    if not value:
        raise ValueError("must not be empty")
    return value


def _cluster_id(value: object, from_text: bool) -> str:
    text = _text(value, from_text)
    if len(text.encode()) > CLUSTER_ID_MAX_BYTES:
        raise ValueError(f"must be at most {CLUSTER_ID_MAX_BYTES} bytes of UTF-8")
    return text


def _address(value: object, from_text: bool) -> Address:
    if not isinstance(value, str):
        raise ValueError(f"must be a 'HOST:PORT' string, got {_describe(value)}")
    return parse_address(value)


def _peers(value: object, from_text: bool) -> Mapping[int, Address]:
    if isinstance(value, str):
        peers = parse_peers(value)
    elif isinstance(value, Mapping):
        peers = _peer_map(list(value.items()))
    else:
        raise ValueError(f"must be '1=HOST:PORT,...' or a table, got {_describe(value)}")
    if not peers:
        raise ValueError("no peers given")
    return MappingProxyType(dict(sorted(peers.items())))


def _peer_map(pairs: list[tuple[object, object]]) -> dict[int, Address]:
    peers: dict[int, Address] = {}
    owners: dict[Address, int] = {}
    for node, address_value in pairs:
        node_id = _node_id(node, from_text=True)
        if node_id in peers:
            raise ValueError(f"duplicate node id {node_id}")
        address = _address(address_value, from_text=True)
        if address in owners:
            shared = format_address(address)
            raise ValueError(f"nodes {owners[address]} and {node_id} share the address {shared}")
        peers[node_id] = address
        owners[address] = node_id
    return peers


def _endpoints(value: object, from_text: bool) -> tuple[str, ...]:
    endpoints = _text_list(value, from_text)
    if not endpoints:
        raise ValueError("no endpoints given (want HOST:PORT,...)")
    for endpoint in endpoints:
        parse_address(endpoint)
    return endpoints


def _log_format(value: object, from_text: bool) -> LogFormat:
    text = _text(value, from_text)
    for log_format in LOG_FORMATS:
        if text == log_format:
            return log_format
    raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}, got {text!r}")


def _log_level(value: object, from_text: bool) -> str:
    text = _text(value, from_text).lower()
    if text not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return text


def _text_list(value: object, from_text: bool) -> tuple[str, ...]:
    """A comma list from a flag, or a TOML array of strings (or one comma string)."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = [item.strip() for item in value]
    else:
        raise ValueError(f"must be a comma list or an array of strings, got {_describe(value)}")
    return tuple(item for item in items if item)


def _http_hosts(value: object, from_text: bool) -> tuple[str, ...]:
    hosts = _text_list(value, from_text)
    for host in hosts:
        if host != ANY_HOST:
            parse_host_entry(host)
    return hosts


def _http_origins(value: object, from_text: bool) -> tuple[str, ...]:
    origins = _text_list(value, from_text)
    for origin in origins:
        parse_origin_entry(origin)
    return origins


def _describe(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


_SETTINGS: dict[str, tuple[str, Callable[[object, bool], object]]] = {
    # key: (ServeConfig field, converter)
    "id": ("node_id", _node_id),
    "data_dir": ("data_dir", _text),
    "listen": ("listen", _address),
    "http": ("http", _address),
    "peers": ("peers", _peers),
    "join": ("join", _endpoints),
    "cluster_id": ("cluster_id", _cluster_id),
    "log_format": ("log_format", _log_format),
    "log_level": ("log_level", _log_level),
    "heartbeat_interval_s": ("heartbeat_interval_s", _seconds),
    "election_timeout_min_s": ("election_timeout_min_s", _seconds),
    "election_timeout_max_s": ("election_timeout_max_s", _seconds),
    "lease_reads": ("lease_reads", _switch),
    "clock_drift_max": ("clock_drift_max", _drift),
    "value_max_bytes": ("value_max_bytes", _positive_int),
    "request_timeout_s": ("request_timeout_s", _seconds),
    "history_revisions": ("history_revisions", _history_revisions),
    "history_seconds": ("history_seconds", _history_seconds),
    "unsafe_no_fsync": ("unsafe_no_fsync", _switch),
    "peer_listen": ("peer_listen", _address),
    "peer_cert": ("peer_cert", _text),
    "peer_key": ("peer_key", _text),
    "peer_ca": ("peer_ca", _text),
    "cluster_secret_file": ("cluster_secret_file", _text),
    "cert": ("cert", _text),
    "key": ("key", _text),
    "client_ca": ("client_ca", _text),
    "advertise_client": ("advertise_client", _address),
    "http_allowed_hosts": ("http_allowed_hosts", _http_hosts),
    "http_allowed_origins": ("http_allowed_origins", _http_origins),
}
_REQUIRED = ("id", "data_dir")  # and "peers" or "join"
_JOIN_AND_PEERS = (
    "--join and --peers exclude each other: --peers names the members at a cluster's "
    "first start, --join asks a running cluster for them"
)
SETTING_NAMES = tuple(_SETTINGS)
"""Every setting's key, in the order ``paxon serve --help`` lists them."""
