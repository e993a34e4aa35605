"""Endpoints as a person writes them: ``HOST:PORT`` or ``http(s)://HOST:PORT[/]``."""

from __future__ import annotations

import pytest

from paxon import Client
from paxon.client import endpoints_want_tls, parse_endpoints
from paxon.errors import BadRequest


@pytest.mark.parametrize(
    ("given", "parsed", "tls"),
    [
        ("127.0.0.1:7001", ["127.0.0.1:7001"], False),
        ("http://127.0.0.1:8001/", ["127.0.0.1:8001"], False),
        ("HTTP://node-1:7001,http://node-2:7001", ["node-1:7001", "node-2:7001"], False),
        ("https://kv.example:7001", ["kv.example:7001"], True),
        (["https://[::1]:7001/", "https://10.0.0.2:7001"], ["[::1]:7001", "10.0.0.2:7001"], True),
    ],
)
def test_url_forms_become_host_port(given: str | list[str], parsed: list[str], tls: bool) -> None:
    assert parse_endpoints(given) == parsed
    assert endpoints_want_tls(given) is tls


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("ftp://127.0.0.1:7001", "expected HOST:PORT or http(s)://HOST:PORT"),
        ("http://127.0.0.1", "expected HOST:PORT"),
        ("http://127.0.0.1:7001/v1/kv", "expected HOST:PORT"),
    ],
)
def test_bad_forms_are_refused(given: str, problem: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_endpoints(given)
    assert problem in str(refused.value)


def test_a_mix_of_https_and_plain_is_refused() -> None:
    with pytest.raises(BadRequest, match="mix https"):
        endpoints_want_tls("https://a:1,b:2")


def test_https_endpoints_give_the_client_tls_with_the_system_cas() -> None:
    assert Client("https://127.0.0.1:7001").tls is not None
    assert Client("http://127.0.0.1:7001").tls is None
