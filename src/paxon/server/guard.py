"""Which ``Host`` and ``Origin`` an HTTP request may carry: the browser-facing edge.

The attacker here is a web page in someone's browser. It can make the browser
send requests to the node (a cross-site ``POST``, or DNS rebinding: its own
name re-pointed at the node's address), but it cannot forge ``Host`` or
``Origin``, and without CORS headers (we never send any) it cannot send a
``PUT``/``DELETE`` or read an answer across origins. So two checks suffice:

- ``Host`` must be a name of this node. Known by default: the HTTP listen host
  as given, ``localhost``, ``127.0.0.1``, ``::1`` and the local address the
  connection arrived on, each with the connection's local port (an IP literal
  equal to our own address cannot be a rebound name). ``http_allowed_hosts``
  adds ``HOST`` (any port) or ``HOST:PORT`` entries, or ``*`` for any host
  (behind a proxy that checks it).
- ``Origin``, when present, must be the request's own origin (the scheme we
  serve plus its ``Host``) or one of ``http_allowed_origins``
  (``scheme://host[:port]``). ``null`` and malformed origins are foreign.

Decision table (first matching row wins):

| ``Host``                   | ``Origin``                         | answer                     |
|----------------------------|------------------------------------|----------------------------|
| present, not known         | any                                | 403 ``host_not_allowed``   |
| malformed                  | any                                | 403 ``host_not_allowed``   |
| absent (HTTP/1.0 tools;    | absent                             | allowed                    |
| browsers always send it)   |                                    |                            |
| known or absent            | absent                             | allowed                    |
| known or absent            | in ``http_allowed_origins``        | allowed                    |
| known                      | same scheme, host and port as Host | allowed                    |
| known or absent            | anything else                      | 403 ``origin_not_allowed`` |

403 rather than 421 for an unknown ``Host``: clients read 421 as "not the
leader, see ``leader_address``" (docs/api.md), which this is not.

Names compare case-insensitively; IP literals compare as addresses
(``[0::1]`` is ``::1``); a missing port means the scheme's default (80, 443).
This module is pure: no sockets, no aiohttp.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

ANY_HOST: Final = "*"
LOOPBACK_NAMES: Final = ("localhost", "127.0.0.1", "::1")
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
NAME_MAX_BYTES: Final = 255
"""A DNS name is at most 253 characters; anything longer is malformed."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: an error ``code`` and a one-line ``message``."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class RequestGuard:
    """The ``Host`` and ``Origin`` policy of one HTTP endpoint; see the module docstring."""

    listen_host: str | None
    hosts_allowed: frozenset[tuple[str, int | None]]
    any_host: bool
    origins_allowed: frozenset[Origin]

    @classmethod
    def build(
        cls,
        listen_host: str | None = None,
        *,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
    ) -> RequestGuard:
        """The policy from settings; ``ValueError`` naming a malformed entry."""
        hosts: set[tuple[str, int | None]] = set()
        any_host = False
        for entry in allowed_hosts:
            if entry.strip() == ANY_HOST:
                any_host = True
            else:
                hosts.add(parse_host_entry(entry))
        origins = {parse_origin_entry(entry) for entry in allowed_origins}
        listen = _name(listen_host) if listen_host else None
        return cls(listen, frozenset(hosts), any_host, frozenset(origins))

    def refusal(
        self,
        *,
        host_header: str | None,
        origin_header: str | None,
        scheme: str,
        local_address: tuple[str, int] | None,
    ) -> Refusal | None:
        """None if the request may proceed, else why not."""
        host: tuple[str, int] | None = None
        if host_header is not None:
            host = parse_host_header(host_header, scheme)
            if host is None or not self._host_known(host, local_address):
                return Refusal(
                    "host_not_allowed",
                    f"Host {_shown(host_header)} is not a name of this node; "
                    "add it with --http-allowed-hosts",
                )
        if origin_header is None:
            return None
        origin = parse_origin(origin_header)
        if origin is not None and (
            origin in self.origins_allowed
            or (host is not None and origin == Origin(scheme, host[0], host[1]))
        ):
            return None
        return Refusal(
            "origin_not_allowed",
            f"cross-origin request from {_shown(origin_header)} refused; "
            "add the origin with --http-allowed-origins",
        )

    def _host_known(self, host: tuple[str, int], local_address: tuple[str, int] | None) -> bool:
        if self.any_host:
            return True
        name, port = host
        if (name, port) in self.hosts_allowed or (name, None) in self.hosts_allowed:
            return True
        if local_address is None or port != local_address[1]:
            return False
        own = {*LOOPBACK_NAMES, _name(local_address[0])}
        if self.listen_host is not None:
            own.add(self.listen_host)
        return name in own


MEMO_ENTRIES_MAX: Final = 256
"""Decisions a ``RememberingGuard`` keeps; it forgets them all when full, so a client
that varies its headers costs only the check it would cost anyway."""
MEMO_HEADER_MAX_BYTES: Final = 256
"""``Host`` plus ``Origin`` longer than this are checked every time, never kept."""

_Asked = tuple[str | None, str | None, str, tuple[str, int] | None]


@dataclass(slots=True)
class RememberingGuard:
    """A ``RequestGuard`` that keeps its decisions: a client sends the same ``Host``
    and ``Origin`` with every request, and parsing them (addresses compared as
    addresses) was a few percent of an HTTP write's CPU. A decision is a pure
    function of the four things asked, so keeping it changes no answer."""

    guard: RequestGuard
    entries_max: int = MEMO_ENTRIES_MAX
    _memo: dict[_Asked, Refusal | None] = field(default_factory=dict)

    def refusal(
        self,
        *,
        host_header: str | None,
        origin_header: str | None,
        scheme: str,
        local_address: tuple[str, int] | None,
    ) -> Refusal | None:
        """As ``RequestGuard.refusal``."""
        asked = (host_header, origin_header, scheme, local_address)
        try:
            return self._memo[asked]
        except KeyError:
            pass
        refusal = self.guard.refusal(
            host_header=host_header,
            origin_header=origin_header,
            scheme=scheme,
            local_address=local_address,
        )
        if len(host_header or "") + len(origin_header or "") <= MEMO_HEADER_MAX_BYTES:
            if len(self._memo) >= self.entries_max:
                self._memo.clear()
            self._memo[asked] = refusal
        return refusal

    @property
    def entries(self) -> int:
        return len(self._memo)


def parse_host_header(text: str, scheme: str) -> tuple[str, int] | None:
    """``Host`` as ``(name, port)``, the scheme's port if none is given; None if malformed."""
    parsed = _host_and_port(text)
    if parsed is None:
        return None
    name, port = parsed
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
        if port is None:
            return None
    return name, port


def parse_origin(text: str) -> Origin | None:
    """An ``Origin`` header (``scheme://host[:port]``) or None if malformed or ``null``."""
    scheme, separator, rest = text.strip().partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in DEFAULT_PORTS:
        return None
    parsed = _host_and_port(rest)
    if parsed is None:
        return None
    name, port = parsed
    return Origin(scheme, name, DEFAULT_PORTS[scheme] if port is None else port)


def parse_origin_entry(text: str) -> Origin:
    """An ``http_allowed_origins`` entry; ``ValueError`` if it is not ``scheme://host[:port]``."""
    origin = parse_origin(text)
    if origin is None:
        raise ValueError(f"bad origin {text!r} (want http://HOST[:PORT] or https://HOST[:PORT])")
    return origin


def parse_host_entry(text: str) -> tuple[str, int | None]:
    """An ``http_allowed_hosts`` entry, ``HOST`` or ``HOST:PORT``; ``ValueError`` if malformed."""
    parsed = _host_and_port(text.strip())
    if parsed is None:
        raise ValueError(f"bad host {text!r} (want HOST, HOST:PORT, [IPV6]:PORT or *)")
    return parsed


def _host_and_port(text: str) -> tuple[str, int | None] | None:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``, normalised; None if malformed."""
    if not text or len(text) > NAME_MAX_BYTES + 8 or not text.isascii():
        return None
    port_text: str | None = None
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, colon, after = text.rpartition(":")
        if not colon:
            name = after
        elif ":" in name:
            return None  # an IPv6 address must be bracketed
        else:
            port_text = after
    if not name or any(c in name for c in "/?#@ \t\\") or "%" in name:
        return None
    port: int | None = None
    if port_text is not None:
        if not (port_text.isdigit() and len(port_text) <= 5 and 1 <= int(port_text) <= 65535):
            return None
        port = int(port_text)
    return _name(name), port


def _name(host: str) -> str:
    """A host name as compared: lower case; an IP literal in its canonical text."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _shown(header: str) -> str:
    """A header value quoted for an error message, cut short so it cannot flood a log."""
    return repr(header[:100] + ("..." if len(header) > 100 else ""))
