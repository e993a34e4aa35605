"""``paxon serve`` settings: flags over TOML, defaults, and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from paxon.errors import BadRequest
from paxon.server.config import (
    ServeConfig,
    format_address,
    load_serve_config,
    parse_address,
    parse_peers,
)

PEERS = "1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001"


def _flags(**overrides: object) -> dict[str, object]:
    flags: dict[str, object] = {"id": "2", "data_dir": "/var/lib/paxon", "peers": PEERS}
    flags.update(overrides)
    return flags


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def _refused(flags: dict[str, object], toml_path: str | None = None) -> str:
    with pytest.raises(BadRequest) as caught:
        load_serve_config(flags, toml_path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_flags_alone_with_defaults() -> None:
    config = load_serve_config(_flags(), None)
    assert config == ServeConfig(
        node_id=2,
        data_dir="/var/lib/paxon",
        listen=("10.0.0.2", 7001),
        http=None,
        peers={1: ("10.0.0.1", 7001), 2: ("10.0.0.2", 7001), 3: ("10.0.0.3", 7001)},
    )
    assert config.cluster_id == "paxon"
    assert config.log_format == "text"
    assert config.heartbeat_interval_s == 0.05
    assert config.value_max_bytes == 1024 * 1024
    assert (config.history_revisions, config.history_seconds) == (10_000, None)


def test_history_retention_comes_from_flags_or_the_file(tmp_path: Path) -> None:
    config = load_serve_config(_flags(history_revisions="500", history_seconds="90.5"), None)
    assert (config.history_revisions, config.history_seconds) == (500, 90.5)
    path = _toml(tmp_path, "history_revisions = 2000\nhistory_seconds = 3600\n")
    config = load_serve_config(_flags(), path)
    assert (config.history_revisions, config.history_seconds) == (2000, 3600.0)


def test_flags_not_given_are_none_and_ignored() -> None:
    config = load_serve_config(_flags(listen=None, http=None, cluster_id=None), None)
    assert config.listen == ("10.0.0.2", 7001)
    assert config.cluster_id == "paxon"


def test_the_toml_file_alone(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        """
id = 1
data_dir = "data/n1"
listen = "0.0.0.0:7001"
http = "127.0.0.1:8001"
cluster_id = "prod"
log_format = "json"
log_level = "DEBUG"
heartbeat_interval_s = 0.1
election_timeout_min_s = 1
election_timeout_max_s = 2.5
value_max_bytes = 4096
request_timeout_s = 3

[peers]
1 = "a.example:7001"
2 = "b.example:7001"
3 = "[::1]:7003"
""",
    )
    config = load_serve_config({}, path)
    assert config.node_id == 1
    assert config.data_dir == "data/n1"
    assert config.listen == ("0.0.0.0", 7001)
    assert config.http == ("127.0.0.1", 8001)
    assert config.peers == {1: ("a.example", 7001), 2: ("b.example", 7001), 3: ("::1", 7003)}
    assert config.cluster_id == "prod"
    assert config.log_format == "json"
    assert config.log_level == "debug"
    assert config.heartbeat_interval_s == 0.1
    assert config.election_timeout_min_s == 1.0
    assert config.election_timeout_max_s == 2.5
    assert config.value_max_bytes == 4096
    assert config.request_timeout_s == 3.0


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        f'id = 1\ndata_dir = "from-file"\npeers = "{PEERS}"\nlog_level = "warning"\n'
        'http = "127.0.0.1:8001"\n',
    )
    config = load_serve_config({"id": "3", "data_dir": "from-flag", "http": None}, path)
    assert config.node_id == 3
    assert config.data_dir == "from-flag"
    assert config.listen == ("10.0.0.3", 7001)
    assert config.log_level == "warning"  # not given as a flag: the file's
    assert config.http == ("127.0.0.1", 8001)


def test_flags_may_also_be_typed_values() -> None:
    config = load_serve_config(_flags(id=3, heartbeat_interval_s=0.01, peers={"3": "h:1"}), None)
    assert config.node_id == 3
    assert config.peers == {3: ("h", 1)}


def test_peers_as_a_string_in_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, f'id = 1\ndata_dir = "d"\npeers = "{PEERS}"\n')
    assert sorted(load_serve_config({}, path).peers) == [1, 2, 3]


def test_unknown_key_names_it_and_suggests(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'listne = "127.0.0.1:7001"\n')
    message = _refused(_flags(), path)
    assert message == f"{path}: unknown key 'listne' (did you mean 'listen'?)"


def test_a_table_that_is_not_peers_is_an_unknown_key(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[server]\nlisten = "127.0.0.1:7001"\n')
    assert "unknown key 'server'" in _refused(_flags(), path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('id = "1"', "key 'id': must be an integer, got str '1'"),
        ("id = true", "key 'id': must be an integer"),
        ("id = 0", "key 'id': node id must be >= 1"),
        ("data_dir = 5", "key 'data_dir': must be a string"),
        ("listen = 7001", "key 'listen': must be a 'HOST:PORT' string"),
        ('listen = "localhost"', "key 'listen': bad address 'localhost'"),
        ('http = "h:99999"', "key 'http': bad port"),
        ("peers = 3", "key 'peers': must be '1=HOST:PORT,...' or a table"),
        ('heartbeat_interval_s = "fast"', "key 'heartbeat_interval_s': must be a number"),
        ("request_timeout_s = -1", "key 'request_timeout_s': must be a number of seconds > 0"),
        ("value_max_bytes = 1.5", "key 'value_max_bytes': must be an integer"),
        ('log_format = "xml"', "key 'log_format': must be one of text, json"),
        ('log_level = "loud"', "key 'log_level': must be one of debug"),
        ('cluster_id = ""', "key 'cluster_id': must not be empty"),
    ],
)
def test_wrong_values_in_the_file(tmp_path: Path, line: str, expected: str) -> None:
    path = _toml(tmp_path, line + "\n")
    message = _refused(_flags(), path)
    assert message.startswith(f"{path}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (_flags(id="two"), "--id: not an integer: 'two'"),
        (_flags(listen="127.0.0.1"), "--listen: bad address '127.0.0.1' (want HOST:PORT)"),
        (_flags(listen=":7001"), "--listen: bad address"),
        (_flags(http="127.0.0.1:0"), "--http: bad port"),
        (_flags(peers="1=a:1,1=b:2"), "--peers: duplicate node id 1"),
        (_flags(peers="1=a:1,2=a:1"), "--peers: nodes 1 and 2 share the address a:1"),
        (_flags(peers="1=a:1,2"), "--peers: bad peer '2' (want ID=HOST:PORT)"),
        (_flags(peers="x=a:1"), "--peers: not an integer: 'x'"),
        (_flags(peers=","), "--peers: no peers given"),
        (_flags(election_timeout_max_s="0"), "--election-timeout-max-s: must be a number"),
        (_flags(cluster_id="x" * 256), "--cluster-id: must be at most 255 bytes"),
        (_flags(history_revisions="0"), "--history-revisions: must be from 1 to 1000000"),
        (_flags(history_revisions="1000001"), "the store's hard cap on history"),
        (_flags(history_revisions="many"), "--history-revisions: not an integer"),
        (_flags(history_seconds="0"), "--history-seconds: must be a number of seconds > 0"),
        (_flags(history_seconds="1e9"), "--history-seconds: must be at most 31622400"),
        (_flags(id="4"), "id 4 is not among the peers (1, 2, 3)"),
        (_flags(listen="h:1", http="h:1"), "http and listen are the same address h:1"),
        (_flags(heartbeat_interval_s="0.5"), "heartbeat_interval_s must be below"),
        (
            _flags(election_timeout_min_s="1", election_timeout_max_s="0.5"),
            "election_timeout_max_s must be >= election_timeout_min_s",
        ),
        ({"id": "1", "peers": "1=a:1"}, "missing --data-dir (or 'data_dir' in the config file)"),
        ({"id": "1", "data_dir": "d"}, "missing --peers"),
        ({"data_dir": "d", "peers": "1=a:1"}, "missing --id"),
        (_flags(colour="blue"), "unknown setting 'colour'"),
    ],
)
def test_wrong_flags(flags: dict[str, object], expected: str) -> None:
    assert expected in _refused(flags)


def test_invalid_toml_and_unreadable_files(tmp_path: Path) -> None:
    broken = _toml(tmp_path, "id = = 1\n")
    assert _refused(_flags(), broken).startswith(f"{broken}: not valid TOML: ")
    missing = str(tmp_path / "missing.toml")
    assert _refused(_flags(), missing).startswith(f"{missing}: cannot read: ")


def test_a_bad_file_value_is_refused_even_when_a_flag_overrides_it(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'listen = "nope"\n')
    assert "key 'listen'" in _refused(_flags(listen="h:1"), path)


def test_addresses_and_peers_parse() -> None:
    assert parse_address("example.com:80") == ("example.com", 80)
    assert parse_address(" [::1]:7001 ") == ("::1", 7001)
    assert format_address(("::1", 7001)) == "[::1]:7001"
    assert format_address(("h", 1)) == "h:1"
    assert parse_peers(" 2 = h:2 , 1=h:1,") == {2: ("h", 2), 1: ("h", 1)}
    for bad in ("h", "h:", ":1", "h:x", "h:65536", "h:-1"):
        with pytest.raises(ValueError):
            parse_address(bad)


# ------------------------------------------------------------------ security settings

_PEER_TLS = {"peer_cert": "n.pem", "peer_key": "n-key.pem", "peer_ca": "ca.pem"}


def test_a_peer_port_of_its_own_with_peer_and_client_tls() -> None:
    config = load_serve_config(
        _flags(
            listen="0.0.0.0:7101",
            peer_listen="0.0.0.0:7001",
            cert="c.pem",
            key="c-key.pem",
            client_ca="clients.pem",
            advertise_client="10.0.0.2:7101",
            **_PEER_TLS,
        ),
        None,
    )
    assert (config.listen, config.peer_listen) == (("0.0.0.0", 7101), ("0.0.0.0", 7001))
    assert config.peer_tls and config.client_tls
    assert config.advertise_client == ("10.0.0.2", 7101)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"peer_listen": "0.0.0.0:7001"}, "--peer-listen needs --listen too"),
        ({"peer_cert": "n.pem", "peer_listen": "h:1", "listen": "h:2"}, "needs all of"),
        ({"cert": "c.pem", "peer_listen": "h:1", "listen": "h:2", **_PEER_TLS}, "both --cert"),
        ({"client_ca": "x.pem"}, "--client-ca needs --cert"),
        (_PEER_TLS, "TLS needs --peer-listen"),
        (
            {"cluster_secret_file": "s", "peer_listen": "h:1", "listen": "h:2", **_PEER_TLS},
            "not both",
        ),
        (
            {"cert": "c.pem", "key": "k.pem", "peer_listen": "h:1", "listen": "h:2"},
            "client TLS (--cert) needs peer TLS",
        ),
        ({"peer_listen": "h:1", "listen": "h:1"}, "peer_listen and listen are the same"),
    ],
)
def test_security_settings_that_do_not_fit_are_refused(
    overrides: dict[str, object], reason: str
) -> None:
    assert reason in _refused(_flags(**overrides))


def test_a_cluster_secret_shares_the_port() -> None:
    config = load_serve_config(_flags(cluster_secret_file="/etc/paxon/secret"), None)
    assert config.peer_listen is None and config.cluster_secret_file == "/etc/paxon/secret"


def test_lease_reads_and_the_drift_bound_are_read_from_flags_and_toml(tmp_path: Path) -> None:
    config = load_serve_config(_flags(lease_reads="on", clock_drift_max="0.1"), None)
    assert config.lease_reads and config.clock_drift_max == 0.1
    default = load_serve_config(_flags(), None)
    assert not default.lease_reads and default.clock_drift_max == 0.05
    toml = _toml(tmp_path, "lease_reads = true\nclock_drift_max = 0\n")
    from_file = load_serve_config({"id": "2", "data_dir": "d", "peers": PEERS}, toml)
    assert from_file.lease_reads and from_file.clock_drift_max == 0.0
    assert "from 0 to 0.5" in _refused(_flags(clock_drift_max="0.6"))
    assert "not a number" in _refused(_flags(clock_drift_max="five percent"))
    assert "on or off" in _refused(_flags(lease_reads="sometimes"))
    assert "true or false" in _refused({}, _toml(tmp_path, 'id = 2\nlease_reads = "yes"\n'))
