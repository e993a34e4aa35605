"""Bad input on every port of every node: refused at the edge, and the cluster serves on.

Native port: bytes that are not frames, frames that are not messages, a
stream cut inside a frame, length prefixes out of range, garbage after a good
handshake, handshakes for the wrong cluster, an unknown peer or a future
protocol version. Each must end that connection only (with ``Refused`` first
for a handshake the node understood). HTTP port: malformed and ill-shaped
transactions (400), a body over the limit (413), a failed CAS (412), all as
JSON ``{"error", "code"}``. Values over the limit are refused by the client
and, when a client skips that check, by the server. Afterwards every node is
up, a client connected all along still works, and nothing written is lost.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time

import pytest
from tests.cluster.harness import Cluster, HttpAnswer, ServerNode, http_request

import paxon
from paxon.kv.model import KvLimits
from paxon.net import (
    PROTOCOL_VERSION,
    Hello,
    Refused,
    StatusRequest,
    Welcome,
    WireMessage,
    decode_body,
    encode,
)

pytestmark = pytest.mark.cluster

MIB = 1024 * 1024
CLOSE_TIMEOUT_S = 15.0
CLUSTER_ID = "paxon"  # the default of ``paxon serve``
BASELINE = {f"base-{i}": f"value-{i}" for i in range(10)}


def _write_baseline(cluster: Cluster) -> None:
    with cluster.client() as kv:
        for key, value in BASELINE.items():
            kv.put(key, value)


def _check_still_serving(cluster: Cluster) -> None:
    for node in cluster.nodes:
        assert node.running, node.describe()
    cluster.wait_for_leader()
    for node in cluster.nodes:
        with node.client() as kv:
            items = kv.get_prefix("base-")
            assert {item.key: item.value.decode() for item in items} == BASELINE
            assert kv.get("big") is None
            kv.put(f"after-{node.node_id}", "ok")


# ------------------------------------------------------------------ native port


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the node sends until it closes the connection (EOF or reset)."""
    received = bytearray()
    deadline = time.monotonic() + CLOSE_TIMEOUT_S
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received)
        except TimeoutError:
            raise AssertionError(f"the node kept the connection open; got {received!r}") from None
        if not chunk:
            return bytes(received)
        received += chunk


def _recv_frame(sock: socket.socket) -> WireMessage:
    """One whole frame from ``sock``, decoded."""
    (size,) = struct.unpack(">I", _recv_exactly(sock, 4))
    return decode_body(_recv_exactly(sock, size))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    sock.settimeout(CLOSE_TIMEOUT_S)
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def _decode_frames(data: bytes) -> list[WireMessage]:
    messages = []
    while data:
        (size,) = struct.unpack(">I", data[:4])
        messages.append(decode_body(data[4 : 4 + size]))
        data = data[4 + size :]
    return messages


def _send_then_closed(node: ServerNode, data: bytes, *, end_stream: bool = False) -> bytes:
    """Sends ``data`` on a new connection; what came back before the node closed it."""
    with socket.create_connection(node.listen, timeout=CLOSE_TIMEOUT_S) as sock:
        try:
            sock.sendall(data)
            if end_stream:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        return _read_until_closed(sock)


def _garbage_cases() -> dict[str, tuple[bytes, bool]]:
    """Name to (bytes sent, whether our side then ends the stream)."""
    rng = random.Random(20240611)
    body = b"\xc1" + rng.randbytes(199)  # 0xc1 is never valid msgpack
    return {
        "random bytes": (rng.randbytes(4096), False),
        "a random frame body": (struct.pack(">I", len(body)) + body, False),
        "a truncated frame, then close": (struct.pack(">I", 100) + b"0123456789", True),
        "an oversize length prefix": (b"\xff\xff\xff\xff" + rng.randbytes(64), False),
        "a zero length prefix": (b"\x00\x00\x00\x00", False),
        "a client request before Hello": (encode(StatusRequest(1)), False),
    }


def _refused_cases() -> dict[str, tuple[Hello, str]]:
    """Name to (a Hello the node must refuse, a word its reason must hold)."""
    return {
        "a Hello for another cluster": (Hello("not-" + CLUSTER_ID, 0, PROTOCOL_VERSION), "cluster"),
        "a peer Hello from an unknown node": (Hello(CLUSTER_ID, 99, PROTOCOL_VERSION), "99"),
        "a Hello of a future protocol": (Hello(CLUSTER_ID, 0, PROTOCOL_VERSION + 98), "version"),
    }


def test_bad_bytes_on_the_native_port_end_only_that_connection(cluster: Cluster) -> None:
    _write_baseline(cluster)
    with cluster.client() as bystander:
        assert bystander.get("base-0") is not None
        for node in cluster.nodes:
            for name, (data, end_stream) in _garbage_cases().items():
                answer = _send_then_closed(node, data, end_stream=end_stream)
                assert answer == b"", f"node {node.node_id}, {name}: answered {answer!r}"
            for name, (hello, word) in _refused_cases().items():
                refusal = _decode_frames(_send_then_closed(node, encode(hello)))
                assert len(refusal) == 1 and isinstance(refusal[0], Refused), (name, refusal)
                assert word in refusal[0].reason, f"node {node.node_id}, {name}: {refusal[0]}"
            with socket.create_connection(node.listen, timeout=CLOSE_TIMEOUT_S) as sock:
                sock.sendall(encode(Hello("", 0, PROTOCOL_VERSION)))
                welcome = _recv_frame(sock)
                assert isinstance(welcome, Welcome) and welcome.node_id == node.node_id
                sock.sendall(struct.pack(">I", 8) + b"\xc1garbage")
                assert _read_until_closed(sock) == b"", "garbage after a good handshake"
        assert bystander.get("base-9") is not None, "a good connection was disturbed"
    _check_still_serving(cluster)


# ------------------------------------------------------------------ HTTP port


def _check_error(answer: HttpAnswer, status: int, code: str) -> None:
    assert answer.status == status, answer
    body = answer.json()
    assert body["code"] == code and isinstance(body["error"], str) and body["error"], body


BAD_TXNS = {
    "malformed JSON": b'{"compare": [',
    "not an object": b"[]",
    "compare not a list": b'{"compare": "nope"}',
    "an unknown compare op": (
        b'{"compare": [{"key": "a", "target": "version", "op": "~", "operand": 1}]}'
    ),
    "a put without a value": b'{"success": [{"put": {"key": "a"}}]}',
    "an unknown op": b'{"success": [{"frobnicate": {"key": "a"}}]}',
    "not UTF-8": b'{"success": "\xff"}',
}


def test_bad_requests_on_the_http_port_get_json_errors(cluster: Cluster) -> None:
    _write_baseline(cluster)
    for node in cluster.nodes:
        for name, body in BAD_TXNS.items():
            answer = http_request(node.http, "POST", "/v1/txn", body)
            assert answer.status == 400, f"node {node.node_id}, {name}: {answer}"
            _check_error(answer, 400, "bad_request")
        answer = http_request(node.http, "PUT", "/v1/kv/big", b"x" * (2 * MIB))
        _check_error(answer, 413, "too_large")
        answer = http_request(node.http, "PUT", "/v1/kv/base-1?expect_version=99", b"lost")
        _check_error(answer, 412, "compare_failed")
        assert answer.json()["version"] == 1
    _check_still_serving(cluster)


def test_values_over_the_limit_are_refused_by_client_and_server(cluster: Cluster) -> None:
    _write_baseline(cluster)
    big = b"x" * (2 * MIB)
    with cluster.client() as kv, pytest.raises(paxon.ValueTooLarge):
        kv.put("big", big)
    for node in cluster.nodes:
        with pytest.raises(paxon.ValueTooLarge):
            asyncio.run(_unchecked_put_via(node, big))
    _check_still_serving(cluster)


async def _unchecked_put_via(node: ServerNode, value: bytes) -> None:
    """A put through ``node`` by a client that does not check the value size itself."""
    limits = KvLimits(value_max_bytes=8 * MIB)
    async with paxon.Client([node.endpoint], timeout=20.0, limits=limits) as kv:
        await kv.put("big", value)
