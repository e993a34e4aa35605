"""Certificates: what they name, what they allow, where they are written and how."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from paxon.errors import BadRequest
from paxon.security.certs import (
    CERT_DER_MAX_BYTES,
    CertIdentity,
    CertificateError,
    ClusterCertPaths,
    identity_of_der,
    is_issued_by,
    issue_client_cert,
    issue_node_cert,
    parse_identity_uri,
    read_certificate_infos,
    write_cluster_certs,
)

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def cluster(tmp_path: Path) -> ClusterCertPaths:
    return write_cluster_certs(
        tmp_path / "certs",
        "demo",
        [1, 2, 3],
        hosts=["db1.example", "10.0.0.5", "fd00::7"],
        clients=["admin"],
        now=T0,
    )


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def der(path: Path) -> bytes:
    return load(path).public_bytes(serialization.Encoding.DER)


def hand_made(uris: list[str] | None) -> bytes:
    """A self-signed DER certificate with these SAN URIs (no SAN at all when None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(T0)
        .not_valid_after(T0 + dt.timedelta(days=1))
    )
    if uris is not None:
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        names += [x509.UniformResourceIdentifier(uri) for uri in uris]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


# ------------------------------------------------------------------ identity


def test_identity_round_trips_through_node_and_client_certificates(
    cluster: ClusterCertPaths,
) -> None:
    for node_id in (1, 2, 3):
        identity = identity_of_der(der(cluster.nodes[node_id].cert))
        assert identity == CertIdentity("demo", "node", str(node_id))
        assert identity is not None and identity.node_id == node_id
    client = identity_of_der(der(cluster.clients["admin"].cert))
    assert client == CertIdentity("demo", "client", "admin")
    assert client is not None and client.node_id is None
    assert client.uri == "paxon://demo/client/admin"


def test_the_ca_names_nobody(cluster: ClusterCertPaths) -> None:
    assert identity_of_der(der(cluster.ca.cert)) is None


@pytest.mark.parametrize(
    ("uris", "expected"),
    [
        (None, None),
        ([], None),
        (["https://example.com/node/1"], None),
        (["paxon://demo/node/1", "paxon://demo/node/2"], None),
        (["paxon://demo/node/1", "paxon://demo/node/1"], None),
        (["paxon://demo/node/1", "paxon://demo/client/x"], None),
        (["paxon://demo/node/1", "PAXON://demo/node/2"], None),
        (["paxon://demo/node/1", "paxon://bad"], None),
        (["https://example.com/", "paxon://demo/node/4"], CertIdentity("demo", "node", "4")),
        (["paxon://c.d-e_f/client/a.b_c-d"], CertIdentity("c.d-e_f", "client", "a.b_c-d")),
    ],
)
def test_exactly_one_paxon_uri_names_the_holder(
    uris: list[str] | None, expected: CertIdentity | None
) -> None:
    assert identity_of_der(hand_made(uris)) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "paxon://demo/node/0",
        "paxon://demo/node/01",
        "paxon://demo/node/-1",
        "paxon://demo/node/9223372036854775808",  # 2**63: the wire cannot carry it
        "paxon://demo/node/x",
        "paxon://demo/node/1/",
        "paxon://demo/node/1?x=1",
        "paxon://demo/node/1#x",
        "paxon://demo/admin/x",
        "paxon://demo/client/",
        "paxon://demo/client/.hidden",
        "paxon://demo/client/a%2Fb",
        "paxon://demo/client/" + "a" * 65,
        "paxon:///node/1",
        "paxon://-demo/node/1",
        "paxon://user@demo/node/1",
        "paxon://demo:7001/node/1",
        "paxon://" + "c" * 65 + "/node/1",
        "PAXON://demo/node/1",
        "paxon:demo/node/1",
        "paxon://demo/node/1\n",
    ],
)
def test_a_malformed_paxon_uri_names_nobody(uri: str) -> None:
    assert parse_identity_uri(uri) is None
    if "\n" not in uri:
        assert identity_of_der(hand_made([uri])) is None


def test_bounds_of_a_well_formed_uri_are_accepted() -> None:
    longest = "c" * 64
    assert parse_identity_uri(f"paxon://{longest}/client/{'n' * 64}") == CertIdentity(
        longest, "client", "n" * 64
    )
    top = parse_identity_uri(f"paxon://demo/node/{2**63 - 1}")
    assert top is not None and top.node_id == 2**63 - 1


def test_garbage_and_oversized_der_names_nobody(cluster: ClusterCertPaths) -> None:
    assert identity_of_der(b"") is None
    assert identity_of_der(b"\x30\x82\xff\xff" + b"\x00" * 100) is None
    real = der(cluster.nodes[1].cert)
    assert identity_of_der(real[:-10]) is None
    assert identity_of_der(real + b"\x00" * CERT_DER_MAX_BYTES) is None


def test_an_identity_validates_on_construction() -> None:
    with pytest.raises(CertificateError):
        CertIdentity("demo", "node", "0")
    with pytest.raises(CertificateError):
        CertIdentity("no spaces", "client", "x")
    with pytest.raises(CertificateError):
        CertIdentity("demo", "peer", "1")  # type: ignore[arg-type]


# ------------------------------------------------------------------ contents


def test_node_certificates_name_local_addresses_and_hosts_for_both_directions(
    cluster: ClusterCertPaths,
) -> None:
    certificate = load(cluster.nodes[2].cert)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "db1.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.0.0.5"),
        ipaddress.ip_address("fd00::7"),
    ]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["paxon://demo/node/2"]
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is False
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "node-2"
    key = certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def test_client_certificates_are_for_client_auth_only(cluster: ClusterCertPaths) -> None:
    certificate = load(cluster.clients["admin"].cert)
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == []


def test_the_ca_signs_certificates_and_nothing_below_it(cluster: ClusterCertPaths) -> None:
    ca = load(cluster.ca.cert)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and not usage.digital_signature
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == dt.timedelta(days=3650, minutes=5)
    for paths in (*cluster.nodes.values(), *cluster.clients.values()):
        load(paths.cert).verify_directly_issued_by(ca)
        assert is_issued_by(paths.cert, cluster.ca.cert)


def test_validity_is_days_and_never_outlives_the_ca(tmp_path: Path) -> None:
    paths = write_cluster_certs(tmp_path / "c", "demo", [1], days=30, now=T0)
    node = load(paths.nodes[1].cert)
    assert node.not_valid_before_utc == T0 - dt.timedelta(minutes=5)  # clock skew
    assert node.not_valid_after_utc == T0 + dt.timedelta(days=30)
    late = T0 + dt.timedelta(days=3000)
    issued = issue_node_cert(tmp_path / "c", 9, days=3650, now=late)
    assert load(issued.cert).not_valid_after_utc == load(paths.ca.cert).not_valid_after_utc


def test_a_certificate_from_another_ca_is_not_issued_by_this_one(
    cluster: ClusterCertPaths, tmp_path: Path
) -> None:
    other = write_cluster_certs(tmp_path / "other", "demo", [1], now=T0)
    assert not is_issued_by(other.nodes[1].cert, cluster.ca.cert)
    assert not is_issued_by(cluster.nodes[1].cert, other.ca.cert)
    # Same cluster id and node id, so the identity alone does not tell them apart:
    assert identity_of_der(der(other.nodes[1].cert)) == identity_of_der(der(cluster.nodes[1].cert))


# ------------------------------------------------------------------ files


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_are_0600_certificates_0644_and_a_new_dir_0700(
    tmp_path: Path, open_umask: None
) -> None:
    paths = write_cluster_certs(tmp_path / "a" / "certs", "demo", [1, 2], clients=["ops"])
    assert mode(paths.directory) == 0o700
    pairs = [paths.ca, *paths.nodes.values(), *paths.clients.values()]
    for pair in pairs:
        assert mode(pair.key) == 0o600
        assert mode(pair.cert) == 0o644
    added = issue_client_cert(paths.directory, "later")
    assert (mode(added.key), mode(added.cert)) == (0o600, 0o644)
    names = sorted(path.name for path in paths.directory.iterdir())
    assert names == sorted(
        [
            "ca.pem",
            "ca-key.pem",
            "node-1.pem",
            "node-1-key.pem",
            "node-2.pem",
            "node-2-key.pem",
            "client-ops.pem",
            "client-ops-key.pem",
            "client-later.pem",
            "client-later-key.pem",
        ]
    )


def test_a_directory_other_users_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(CertificateError, match="other users can write it"):
        write_cluster_certs(shared, "demo", [1])
    assert list(shared.iterdir()) == []


def test_nothing_is_overwritten_without_force(cluster: ClusterCertPaths) -> None:
    before = {path: path.read_bytes() for path in cluster.directory.iterdir()}
    with pytest.raises(CertificateError, match="already exists"):
        write_cluster_certs(cluster.directory, "demo", [1])
    with pytest.raises(CertificateError, match=r"node-2\.pem already exists"):
        issue_node_cert(cluster.directory, 2)
    with pytest.raises(CertificateError, match=r"client-admin\.pem already exists"):
        issue_client_cert(cluster.directory, "admin")
    assert {path: path.read_bytes() for path in cluster.directory.iterdir()} == before


def test_one_existing_target_refuses_the_whole_init(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    directory.mkdir(mode=0o700)
    (directory / "node-3-key.pem").write_bytes(b"precious")
    with pytest.raises(CertificateError, match=r"node-3-key\.pem already exists"):
        write_cluster_certs(directory, "demo", [1, 2, 3])
    assert [path.name for path in directory.iterdir()] == ["node-3-key.pem"]


def test_force_replaces(cluster: ClusterCertPaths) -> None:
    old_ca = cluster.ca.cert.read_bytes()
    old_key = cluster.nodes[1].key.read_bytes()
    write_cluster_certs(cluster.directory, "demo", [1], force=True)
    assert cluster.ca.cert.read_bytes() != old_ca
    assert cluster.nodes[1].key.read_bytes() != old_key
    assert mode(cluster.nodes[1].key) == 0o600
    assert [p.name for p in cluster.directory.iterdir() if p.name.endswith(".tmp")] == []


def test_members_added_later_belong_to_the_ca_cluster(cluster: ClusterCertPaths) -> None:
    node = issue_node_cert(cluster.directory, 4, hosts=["db4.example"])
    assert identity_of_der(der(node.cert)) == CertIdentity("demo", "node", "4")
    assert is_issued_by(node.cert, cluster.ca.cert)
    names = read_certificate_infos(node.cert)[0].dns_names
    assert names == ("localhost", "db4.example")
    client = issue_client_cert(cluster.directory, "backup")
    assert identity_of_der(der(client.cert)) == CertIdentity("demo", "client", "backup")
    assert is_issued_by(client.cert, cluster.ca.cert)


def test_issuing_needs_a_matching_paxon_ca(cluster: ClusterCertPaths, tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="no such certificate file"):
        issue_node_cert(tmp_path / "nowhere", 1)
    other = write_cluster_certs(tmp_path / "other", "demo", [1])
    other.ca.key.write_bytes(cluster.ca.key.read_bytes())
    with pytest.raises(CertificateError, match="does not belong to"):
        issue_node_cert(other.directory, 5)
    mixed = tmp_path / "mixed"
    mixed.mkdir(mode=0o700)
    (mixed / "ca.pem").write_bytes(cluster.nodes[1].cert.read_bytes())
    (mixed / "ca-key.pem").write_bytes(cluster.nodes[1].key.read_bytes())
    with pytest.raises(CertificateError, match="not a CA certificate"):
        issue_client_cert(mixed, "x")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: write_cluster_certs(d, "a b", [1]), "bad cluster id"),
        (lambda d: write_cluster_certs(d, "c" * 65, [1]), "bad cluster id"),
        (lambda d: write_cluster_certs(d, "", [1]), "bad cluster id"),
        (lambda d: write_cluster_certs(d, "demo", [0]), "bad node id"),
        (lambda d: write_cluster_certs(d, "demo", [2**63]), "bad node id"),
        (lambda d: write_cluster_certs(d, "demo", [1, 1]), "duplicate node id"),
        (lambda d: write_cluster_certs(d, "demo", range(1, 258)), "at most 256"),
        (lambda d: write_cluster_certs(d, "demo", [1], clients=["a", "a"]), "duplicate client"),
        (lambda d: write_cluster_certs(d, "demo", [1], clients=["../x"]), "bad client name"),
        (lambda d: write_cluster_certs(d, "demo", [1], hosts=["a b"]), "bad host"),
        (lambda d: write_cluster_certs(d, "demo", [1], hosts=["ünï.example"]), "bad host"),
        (
            lambda d: write_cluster_certs(d, "demo", [1], hosts=[f"h{i}" for i in range(65)]),
            "at most 64",
        ),
        (lambda d: write_cluster_certs(d, "demo", [1], days=0), "bad validity"),
        (lambda d: write_cluster_certs(d, "demo", [1], days=3651), "bad validity"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    tmp_path: Path, call: object, message: str
) -> None:
    directory = tmp_path / "certs"
    with pytest.raises(CertificateError, match=message) as caught:
        call(directory)  # type: ignore[operator]
    assert isinstance(caught.value, BadRequest) and caught.value.exit_code == 2
    assert not directory.exists()
