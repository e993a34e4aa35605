"""The Host and Origin policy (``paxon.server.guard``), row by row of its decision table."""

from __future__ import annotations

import pytest

from paxon.server.guard import (
    MEMO_ENTRIES_MAX,
    MEMO_HEADER_MAX_BYTES,
    Origin,
    RememberingGuard,
    RequestGuard,
    parse_host_entry,
    parse_host_header,
    parse_origin,
    parse_origin_entry,
)

LOCAL = ("127.0.0.1", 8001)


def refusal_code(
    guard: RequestGuard,
    host: str | None,
    origin: str | None = None,
    *,
    scheme: str = "http",
    local: tuple[str, int] | None = LOCAL,
) -> str | None:
    refusal = guard.refusal(
        host_header=host, origin_header=origin, scheme=scheme, local_address=local
    )
    if refusal is None:
        return None
    assert refusal.message
    return refusal.code


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8001",
        "localhost:8001",
        "LOCALHOST:8001",
        "[::1]:8001",
        "[0:0:0:0:0:0:0:1]:8001",
        "node1.internal:8001",  # the listen host as given
    ],
)
def test_own_names_with_the_connections_port_are_known(host: str) -> None:
    guard = RequestGuard.build("node1.internal")
    assert refusal_code(guard, host) is None


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:8001",  # DNS rebinding: the attacker's name pointed at us
        "localhost:9999",  # our name, another port
        "127.0.0.1",  # port 80 implied, we are on 8001
        "localhost.:8001",
        "",
        "[::1",
        "::1:8001",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        "a@127.0.0.1:8001",
        "127.0.0.1:8001/x",
        "x" * 10_000,
    ],
)
def test_foreign_or_malformed_hosts_are_refused(host: str) -> None:
    assert refusal_code(RequestGuard.build("127.0.0.1"), host) == "host_not_allowed"


def test_the_local_address_a_connection_arrived_on_is_known() -> None:
    guard = RequestGuard.build("0.0.0.0")
    assert refusal_code(guard, "10.1.2.3:8001", local=("10.1.2.3", 8001)) is None
    assert refusal_code(guard, "10.1.2.4:8001", local=("10.1.2.3", 8001)) == "host_not_allowed"
    assert refusal_code(guard, "0.0.0.0:8001", local=("10.1.2.3", 8001)) is None
    assert refusal_code(guard, "localhost:8001", local=None) == "host_not_allowed"


def test_allowed_hosts_add_names_with_or_without_a_port_and_star_allows_any() -> None:
    guard = RequestGuard.build(allowed_hosts=["kv.example.com", "proxy:443"])
    assert refusal_code(guard, "kv.example.com:1234") is None
    assert refusal_code(guard, "kv.example.com") is None
    assert refusal_code(guard, "proxy:443") is None
    assert refusal_code(guard, "proxy:444") == "host_not_allowed"
    assert refusal_code(RequestGuard.build(allowed_hosts=["*"]), "anything.at.all:1") is None


def test_absent_host_is_allowed_but_not_with_a_foreign_origin() -> None:
    guard = RequestGuard.build()
    assert refusal_code(guard, None) is None
    assert refusal_code(guard, None, "http://127.0.0.1:8001") == "origin_not_allowed"


@pytest.mark.parametrize(
    ("host", "origin", "scheme", "code"),
    [
        ("127.0.0.1:8001", "http://127.0.0.1:8001", "http", None),
        ("localhost:8001", "http://LOCALHOST:8001", "http", None),
        ("localhost:8001", "http://127.0.0.1:8001", "http", "origin_not_allowed"),
        ("127.0.0.1:8001", "https://127.0.0.1:8001", "http", "origin_not_allowed"),
        ("127.0.0.1:8001", "https://127.0.0.1:8001", "https", None),
        ("127.0.0.1:8001", "http://evil.example", "http", "origin_not_allowed"),
        ("127.0.0.1:8001", "null", "http", "origin_not_allowed"),
        ("127.0.0.1:8001", "http://127.0.0.1:8001/path", "http", "origin_not_allowed"),
        ("127.0.0.1:8001", "file://", "http", "origin_not_allowed"),
        ("127.0.0.1:8001", "", "http", "origin_not_allowed"),
    ],
)
def test_origin_must_be_the_requests_own(
    host: str, origin: str, scheme: str, code: str | None
) -> None:
    assert refusal_code(RequestGuard.build(), host, origin, scheme=scheme) == code


def test_allowed_origins_pass_and_default_ports_are_the_schemes() -> None:
    guard = RequestGuard.build(allowed_origins=["https://ops.example.com", "http://[::1]:3000"])
    assert refusal_code(guard, "127.0.0.1:8001", "https://ops.example.com:443") is None
    assert refusal_code(guard, "127.0.0.1:8001", "https://ops.example.com") is None
    assert refusal_code(guard, "127.0.0.1:8001", "http://[0::1]:3000") is None
    assert refusal_code(guard, "127.0.0.1:8001", "http://ops.example.com") == "origin_not_allowed"
    # An allowed origin does not excuse an unknown Host.
    assert refusal_code(guard, "evil:8001", "https://ops.example.com") == "host_not_allowed"


def test_parsers() -> None:
    assert parse_host_header("Example.COM", "https") == ("example.com", 443)
    assert parse_host_header("[::1]:80", "http") == ("::1", 80)
    assert parse_host_header("example.com", "ftp") is None
    assert parse_origin("http://a:1") == Origin("http", "a", 1)
    assert parse_origin("ws://a:1") is None
    assert str(Origin("https", "::1", 8443)) == "https://[::1]:8443"
    assert parse_host_entry(" node:8001 ") == ("node", 8001)
    assert parse_host_entry("node") == ("node", None)
    for bad in ("", "a b", "[::1]x", "node:port"):
        with pytest.raises(ValueError, match="bad host"):
            parse_host_entry(bad)
    for bad in ("example.com", "null", "http://", "http://a/b"):
        with pytest.raises(ValueError, match="bad origin"):
            parse_origin_entry(bad)
    with pytest.raises(ValueError, match="bad origin"):
        RequestGuard.build(allowed_origins=["*"])


def test_a_remembering_guard_answers_as_the_guard_and_stays_bounded() -> None:
    guard = RequestGuard.build("node1.internal", allowed_origins=["https://ui.example"])
    remembering = RememberingGuard(guard)
    asked = [
        ("127.0.0.1:8001", None),
        ("evil.example:8001", None),
        ("localhost:8001", "http://evil.example"),
        ("localhost:8001", "https://ui.example"),
        (None, "http://evil.example"),
        *((f"h{number}.example:8001", None) for number in range(3 * MEMO_ENTRIES_MAX)),
        ("127.0.0.1:8001", None),  # asked again after the memo was emptied
        ("x" * MEMO_HEADER_MAX_BYTES + ":8001", None),  # too long to keep
    ]
    for _ in range(2):  # the second pass answers from what was kept
        for host, origin in asked:
            kept = remembering.refusal(
                host_header=host, origin_header=origin, scheme="http", local_address=LOCAL
            )
            assert kept == guard.refusal(
                host_header=host, origin_header=origin, scheme="http", local_address=LOCAL
            )
            assert remembering.entries <= MEMO_ENTRIES_MAX
    assert remembering.entries > 0
