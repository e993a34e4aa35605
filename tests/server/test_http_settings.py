"""The HTTP guard settings of `paxon serve`: `http_allowed_hosts`, `http_allowed_origins`."""

from __future__ import annotations

from pathlib import Path

import pytest

from paxon.errors import BadRequest
from paxon.server.config import SETTING_NAMES, load_serve_config

PEERS = "1=127.0.0.1:7001,2=127.0.0.1:7002"


def _flags(**overrides: object) -> dict[str, object]:
    flags: dict[str, object] = {"id": "1", "data_dir": "d", "peers": PEERS}
    flags.update(overrides)
    return flags


def test_defaults_are_empty_so_only_own_names_and_origin_are_served() -> None:
    config = load_serve_config(_flags(), None)
    assert config.http_allowed_hosts == ()
    assert config.http_allowed_origins == ()
    assert {"http_allowed_hosts", "http_allowed_origins"} <= set(SETTING_NAMES)


def test_flags_are_comma_lists() -> None:
    config = load_serve_config(
        _flags(
            http_allowed_hosts=" kv.example.com, proxy:8443,[::1]:9000,",
            http_allowed_origins="https://ops.example.com,http://localhost:3000",
        ),
        None,
    )
    assert config.http_allowed_hosts == ("kv.example.com", "proxy:8443", "[::1]:9000")
    assert config.http_allowed_origins == ("https://ops.example.com", "http://localhost:3000")


def test_toml_takes_arrays_or_a_comma_string(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'http_allowed_hosts = ["*"]\nhttp_allowed_origins = "https://a.example, https://b.example"\n'
    )
    config = load_serve_config(_flags(), str(path))
    assert config.http_allowed_hosts == ("*",)
    assert config.http_allowed_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"http_allowed_hosts": "a b"}, "--http-allowed-hosts: bad host 'a b'"),
        ({"http_allowed_hosts": "h:0"}, "--http-allowed-hosts: bad host 'h:0'"),
        ({"http_allowed_origins": "evil.example"}, "--http-allowed-origins: bad origin"),
        ({"http_allowed_origins": "*"}, "--http-allowed-origins: bad origin '*'"),
        ({"http_allowed_origins": "null"}, "--http-allowed-origins: bad origin 'null'"),
        ({"http_allowed_origins": "https://a.example/app"}, "bad origin"),
    ],
)
def test_bad_entries_are_refused_with_one_line(flags: dict[str, object], words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        load_serve_config(_flags(**flags), None)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_toml_with_a_wrong_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("http_allowed_hosts = [1, 2]\n")
    with pytest.raises(BadRequest, match="key 'http_allowed_hosts': must be a comma list"):
        load_serve_config(_flags(), str(path))
