"""Certificates for a paxon cluster: a CA, node and client certificates, and who one names.

Formats (the TLS transport relies on exactly these):
- Identity: every node and client certificate carries exactly one SAN URI
  ``paxon://<cluster_id>/node/<id>`` or ``paxon://<cluster_id>/client/<name>``.
  ``identity_of_der`` reads it back; a certificate with no such URI, with two,
  or with a malformed one names nobody (None).
- Node certificates: CN ``node-<id>``, DNS SAN ``localhost``, IP SANs
  ``127.0.0.1`` and ``::1`` plus every ``hosts`` entry, ExtendedKeyUsage
  serverAuth and clientAuth (peers dial each other with the same certificate).
- Client certificates: CN ``<name>``, ExtendedKeyUsage clientAuth only.
- The CA: self-signed, basicConstraints CA:true pathlen 0 (critical), keyUsage
  keyCertSign and cRLSign; its subject's OU is the cluster id, which is how
  ``issue_node_cert`` and ``issue_client_cert`` know the cluster of a CA dir.
- Keys: ECDSA P-256, unencrypted PKCS#8 PEM, mode 0600. Certificates: PEM, 0644.
  A directory that ``write_cluster_certs`` creates is 0700; an existing one
  that other users can write is refused (they could swap the CA key).
- Files: ``ca.pem``, ``ca-key.pem``, ``node-<id>.pem``, ``node-<id>-key.pem``,
  ``client-<name>.pem``, ``client-<name>-key.pem``. Nothing is overwritten
  unless ``force=True``; without it, one existing target refuses the whole
  call before anything is written.
- Validity: leaves ``days`` (730 by default), the CA 10 years; a leaf starts 5
  minutes in the past (clock skew between hosts) and never outlives its CA.

Limits (each refused with ``CertificateError``, a ``BadRequest``: exit 2):
- cluster id: 1..64 bytes of ``[A-Za-z0-9._-]``, starting with a letter or digit
  (``CERT_CLUSTER_ID_MAX_BYTES``; tighter than a data dir's 255 bytes so that
  it is a plain URI host);
- client name: 1..64 characters, same charset (``CERT_NAME_MAX_CHARS``);
- node id: 1..2**63-1, decimal without leading zeros, as the wire carries it;
- hosts per node certificate: 64 (``HOSTS_MAX``); nodes or clients in one
  ``write_cluster_certs``: 256 each (``MEMBERS_MAX``);
- days: 1..3650 (``DAYS_MAX``);
- ``identity_of_der`` reads at most 64 KiB of DER (``CERT_DER_MAX_BYTES``;
  paxon's certificates are about 700 bytes).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from paxon.errors import BadRequest

CERT_CLUSTER_ID_MAX_BYTES: Final = 64
CERT_NAME_MAX_CHARS: Final = 64
NODE_ID_END: Final = 2**63
HOSTS_MAX: Final = 64
MEMBERS_MAX: Final = 256
DAYS_MAX: Final = 3650
DAYS_DEFAULT: Final = 730
CA_DAYS: Final = 3650
CERT_DER_MAX_BYTES: Final = 64 * 1024
CLOCK_SKEW: Final = dt.timedelta(minutes=5)

URI_SCHEME: Final = "paxon"
CA_CERT_NAME: Final = "ca.pem"
CA_KEY_NAME: Final = "ca-key.pem"
DEFAULT_NODE_HOSTS: Final = ("localhost", "127.0.0.1", "::1")

_LABEL = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_LABEL_RE: Final = re.compile(_LABEL)
_NODE_ID_RE: Final = re.compile(r"[1-9][0-9]{0,18}")
_URI_RE: Final = re.compile(rf"paxon://({_LABEL})/(node|client)/({_LABEL})")
_DNS_RE: Final = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9*](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)

Kind = Literal["node", "client"]
_E = TypeVar("_E", bound=x509.ExtensionType)
_K = TypeVar("_K", int, str)


class CertificateError(BadRequest):
    """A certificate, key or CA directory is missing, malformed or refused."""

    code = "certificate"


@dataclass(frozen=True, slots=True)
class CertIdentity:
    """Who a certificate names: a node (``name`` is its id in decimal) or a client."""

    cluster_id: str
    kind: Kind
    name: str

    def __post_init__(self) -> None:
        check_cluster_id(self.cluster_id)
        if self.kind == "node":
            if not _NODE_ID_RE.fullmatch(self.name) or int(self.name) >= NODE_ID_END:
                raise CertificateError(f"bad node id {self.name!r}: expected 1..2**63-1")
        elif self.kind == "client":
            check_client_name(self.name)
        else:
            raise CertificateError(f"bad identity kind {self.kind!r}: expected node or client")

    @property
    def node_id(self) -> int | None:
        """The node id for a node, None for a client."""
        return int(self.name) if self.kind == "node" else None

    @property
    def uri(self) -> str:
        """The SAN URI that carries this identity."""
        return f"{URI_SCHEME}://{self.cluster_id}/{self.kind}/{self.name}"

    @classmethod
    def node(cls, cluster_id: str, node_id: int) -> CertIdentity:
        return cls(cluster_id, "node", str(node_id))

    @classmethod
    def client(cls, cluster_id: str, name: str) -> CertIdentity:
        return cls(cluster_id, "client", name)


@dataclass(frozen=True, slots=True)
class CertKeyPaths:
    """A certificate file and its private key file."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class ClusterCertPaths:
    """What ``write_cluster_certs`` wrote."""

    directory: Path
    cluster_id: str
    ca: CertKeyPaths
    nodes: Mapping[int, CertKeyPaths]
    clients: Mapping[str, CertKeyPaths]


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What ``paxon certs show`` prints about one certificate."""

    subject: str
    issuer: str
    identity: CertIdentity | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    uris: tuple[str, ...]
    usages: tuple[str, ...]
    is_ca: bool
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int

    def to_json(self, now: dt.datetime | None = None) -> dict[str, object]:
        now = now or _now()
        identity = self.identity
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "identity": None
            if identity is None
            else {"cluster_id": identity.cluster_id, "kind": identity.kind, "name": identity.name},
            "dns": list(self.dns_names),
            "ip": list(self.ip_addresses),
            "uri": list(self.uris),
            "usages": list(self.usages),
            "ca": self.is_ca,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "expired": not self.not_before <= now <= self.not_after,
            "serial": f"{self.serial:x}",
        }


# ------------------------------------------------------------------ identity


def identity_of_der(der: bytes) -> CertIdentity | None:
    """The one paxon identity a DER certificate names; None for none, several or a bad one."""
    if len(der) > CERT_DER_MAX_BYTES:
        return None
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    return identity_of_certificate(certificate)


def identity_of_certificate(certificate: x509.Certificate) -> CertIdentity | None:
    """As ``identity_of_der``, for a parsed certificate."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # a malformed extension
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    ours = [uri for uri in uris if uri.lower().startswith(URI_SCHEME + ":")]
    if len(ours) != 1:
        return None
    return parse_identity_uri(ours[0])


def parse_identity_uri(uri: str) -> CertIdentity | None:
    """``paxon://<cluster>/<node|client>/<name>`` as an identity; None if malformed."""
    match = _URI_RE.fullmatch(uri)
    if match is None:
        return None
    cluster_id, kind, name = match.groups()
    try:
        return CertIdentity(cluster_id, "node" if kind == "node" else "client", name)
    except CertificateError:
        return None


def check_cluster_id(cluster_id: str) -> str:
    if not _LABEL_RE.fullmatch(cluster_id) or len(cluster_id) > CERT_CLUSTER_ID_MAX_BYTES:
        raise CertificateError(
            f"bad cluster id {cluster_id!r} for a certificate: expected 1.."
            f"{CERT_CLUSTER_ID_MAX_BYTES} characters of A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return cluster_id


def check_client_name(name: str) -> str:
    if not _LABEL_RE.fullmatch(name) or len(name) > CERT_NAME_MAX_CHARS:
        raise CertificateError(
            f"bad client name {name!r}: expected 1..{CERT_NAME_MAX_CHARS} characters of "
            "A-Z a-z 0-9 . _ -, starting with a letter or digit"
        )
    return name


def check_node_id(node_id: int) -> int:
    if isinstance(node_id, bool) or not isinstance(node_id, int) or not 0 < node_id < NODE_ID_END:
        raise CertificateError(f"bad node id {node_id!r}: expected 1..2**63-1")
    return node_id


# ------------------------------------------------------------------ issuing


def write_cluster_certs(
    out_dir: str | os.PathLike[str],
    cluster_id: str,
    node_ids: Iterable[int],
    *,
    hosts: Iterable[str] = (),
    clients: Iterable[str] = (),
    days: int = DAYS_DEFAULT,
    force: bool = False,
    now: dt.datetime | None = None,
) -> ClusterCertPaths:
    """A new CA in ``out_dir`` and a certificate for every node and client (see module doc)."""
    check_cluster_id(cluster_id)
    nodes = _unique("node id", [check_node_id(node_id) for node_id in node_ids])
    names = _unique("client name", [check_client_name(name) for name in clients])
    host_names = _check_hosts(hosts)
    _check_days(days)
    directory = Path(out_dir)
    ca_paths = _ca_paths(directory)
    node_paths = {node_id: _leaf_paths(directory, f"node-{node_id}") for node_id in nodes}
    client_paths = {name: _leaf_paths(directory, f"client-{name}") for name in names}
    every = [ca_paths, *node_paths.values(), *client_paths.values()]
    _prepare_dir(directory)
    if not force:
        _refuse_existing([path for pair in every for path in (pair.cert, pair.key)])
    now = now or _now()
    ca = _new_ca(cluster_id, now)
    _write_pair(ca_paths, ca.certificate, ca.key, force)
    for node_id, paths in node_paths.items():
        _issue(ca, CertIdentity.node(cluster_id, node_id), host_names, days, now, paths, force)
    for name, paths in client_paths.items():
        _issue(ca, CertIdentity.client(cluster_id, name), (), days, now, paths, force)
    return ClusterCertPaths(directory, cluster_id, ca_paths, node_paths, client_paths)


def issue_node_cert(
    ca_dir: str | os.PathLike[str],
    node_id: int,
    *,
    hosts: Iterable[str] = (),
    days: int = DAYS_DEFAULT,
    force: bool = False,
    now: dt.datetime | None = None,
) -> CertKeyPaths:
    """A certificate for node ``node_id``, signed by the CA in ``ca_dir``, written beside it."""
    check_node_id(node_id)
    host_names = _check_hosts(hosts)
    _check_days(days)
    directory = Path(ca_dir)
    ca = _load_ca(directory)
    paths = _leaf_paths(directory, f"node-{node_id}")
    if not force:
        _refuse_existing([paths.cert, paths.key])
    identity = CertIdentity.node(ca.cluster_id, node_id)
    _issue(ca, identity, host_names, days, now or _now(), paths, force)
    return paths


def issue_client_cert(
    ca_dir: str | os.PathLike[str],
    name: str,
    *,
    days: int = DAYS_DEFAULT,
    force: bool = False,
    now: dt.datetime | None = None,
) -> CertKeyPaths:
    """A client certificate for ``name``, signed by the CA in ``ca_dir``, written beside it."""
    check_client_name(name)
    _check_days(days)
    directory = Path(ca_dir)
    ca = _load_ca(directory)
    paths = _leaf_paths(directory, f"client-{name}")
    if not force:
        _refuse_existing([paths.cert, paths.key])
    identity = CertIdentity.client(ca.cluster_id, name)
    _issue(ca, identity, (), days, now or _now(), paths, force)
    return paths


def read_certificate_infos(path: str | os.PathLike[str]) -> list[CertificateInfo]:
    """Every certificate in a PEM (or DER) file, described."""
    data = _read(Path(path), "certificate")
    try:
        if b"-----BEGIN" in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateError(f"{path}: not a PEM or DER certificate") from None
    return [certificate_info(certificate) for certificate in certificates]


def certificate_info(certificate: x509.Certificate) -> CertificateInfo:
    extensions = certificate.extensions
    dns: list[str] = []
    ips: list[str] = []
    uris: list[str] = []
    san = _extension(extensions, x509.SubjectAlternativeName)
    if san is not None:
        dns = san.get_values_for_type(x509.DNSName)
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    eku = _extension(extensions, x509.ExtendedKeyUsage)
    usages = tuple(_USAGE_NAMES.get(oid, oid.dotted_string) for oid in eku or ())
    constraints = _extension(extensions, x509.BasicConstraints)
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        identity=identity_of_certificate(certificate),
        dns_names=tuple(dns),
        ip_addresses=tuple(ips),
        uris=tuple(uris),
        usages=usages,
        is_ca=constraints is not None and constraints.ca,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        serial=certificate.serial_number,
    )


def is_issued_by(cert_path: str | os.PathLike[str], ca_path: str | os.PathLike[str]) -> bool:
    """Whether the first certificate in ``cert_path`` is signed by the CA in ``ca_path``."""
    certificate = _load_cert(Path(cert_path))
    ca = _load_cert(Path(ca_path))
    try:
        certificate.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# ------------------------------------------------------------------ helpers

_USAGE_NAMES: Final = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
}


@dataclass(frozen=True, slots=True)
class _Ca:
    cluster_id: str
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _new_ca(cluster_id: str, now: dt.datetime) -> _Ca:
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paxon"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, cluster_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"paxon CA {cluster_id}"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Ca(cluster_id, certificate, key)


def _issue(
    ca: _Ca,
    identity: CertIdentity,
    hosts: tuple[x509.GeneralName, ...],
    days: int,
    now: dt.datetime,
    paths: CertKeyPaths,
    force: bool,
) -> None:
    key = _new_key()
    common_name = f"node-{identity.name}" if identity.kind == "node" else identity.name
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paxon"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.cluster_id),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if identity.kind == "node":
        names += _dedupe([*_check_hosts(DEFAULT_NODE_HOSTS), *hosts])
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    not_after = min(now + dt.timedelta(days=days), ca.certificate.not_valid_after_utc)
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    _write_pair(paths, certificate, key, force)


def _load_ca(directory: Path) -> _Ca:
    paths = _ca_paths(directory)
    certificate = _load_cert(paths.cert)
    key_data = _read(paths.key, "CA key")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError):
        raise CertificateError(f"{paths.key}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{paths.key}: not an ECDSA key")
    if key.public_key() != certificate.public_key():
        raise CertificateError(f"{paths.key} does not belong to {paths.cert}")
    constraints = _extension(certificate.extensions, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CertificateError(f"{paths.cert}: not a CA certificate")
    units = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    cluster_id = str(units[0].value) if len(units) == 1 else ""
    if not _LABEL_RE.fullmatch(cluster_id):
        raise CertificateError(f"{paths.cert}: not a paxon CA (no cluster id in its subject OU)")
    return _Ca(cluster_id, certificate, key)


def _load_cert(path: Path) -> x509.Certificate:
    data = _read(path, "certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CertificateError(f"{path}: not a PEM certificate") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise CertificateError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _extension(extensions: x509.Extensions, kind: type[_E]) -> _E | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _check_hosts(hosts: Iterable[str]) -> tuple[x509.GeneralName, ...]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        host = host.strip()
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if not _DNS_RE.fullmatch(host):
            raise CertificateError(f"bad host {host!r}: expected a DNS name or an IP address")
        names.append(x509.DNSName(host.lower()))
    if len(names) > HOSTS_MAX:
        raise CertificateError(f"{len(names)} hosts given; at most {HOSTS_MAX}")
    return tuple(names)


def _dedupe(names: list[x509.GeneralName]) -> list[x509.GeneralName]:
    return list(dict.fromkeys(names))


def _check_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= DAYS_MAX:
        raise CertificateError(f"bad validity {days!r} days: expected 1..{DAYS_MAX}")


def _unique(what: str, values: list[_K]) -> list[_K]:
    if len(values) > MEMBERS_MAX:
        raise CertificateError(f"{len(values)} {what}s given; at most {MEMBERS_MAX}")
    if len(set(values)) != len(values):
        raise CertificateError(f"duplicate {what} in {values}")
    return values


def _ca_paths(directory: Path) -> CertKeyPaths:
    return CertKeyPaths(directory / CA_CERT_NAME, directory / CA_KEY_NAME)


def _leaf_paths(directory: Path, stem: str) -> CertKeyPaths:
    return CertKeyPaths(directory / f"{stem}.pem", directory / f"{stem}-key.pem")


def _prepare_dir(directory: Path) -> None:
    """Creates ``directory`` 0700; refuses an existing one that other users can write."""
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not directory.is_dir():
            raise CertificateError(f"{directory}: exists and is not a directory") from None
        if directory.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise CertificateError(
                f"{directory}: other users can write it; chmod 700 it or choose another"
            ) from None
    except OSError as exc:
        raise CertificateError(f"{directory}: cannot create: {exc.strerror or exc}") from None
    else:
        directory.chmod(0o700)  # mkdir's mode is filtered by the umask


def _refuse_existing(paths: list[Path]) -> None:
    for path in paths:
        if path.exists() or path.is_symlink():
            raise CertificateError(f"{path} already exists (--force replaces it)")


def _write_pair(
    paths: CertKeyPaths, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey, force: bool
) -> None:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_file(paths.key, key_pem, 0o600, force)
    _write_file(paths.cert, certificate.public_bytes(serialization.Encoding.PEM), 0o644, force)


def _write_file(path: Path, data: bytes, mode: int, force: bool) -> None:
    """Writes durably: a temporary file with ``mode``, fsynced, then moved into place.

    Without ``force`` the move is a hard link, which fails if ``path`` appeared meanwhile.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(descriptor, mode)  # the umask filters os.open's mode
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        if force:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    except FileExistsError:
        raise CertificateError(f"{path} already exists (--force replaces it)") from None
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


__all__ = [
    "CERT_CLUSTER_ID_MAX_BYTES",
    "CertIdentity",
    "CertKeyPaths",
    "CertificateError",
    "CertificateInfo",
    "ClusterCertPaths",
    "certificate_info",
    "identity_of_der",
    "issue_client_cert",
    "issue_node_cert",
    "parse_identity_uri",
    "read_certificate_infos",
    "write_cluster_certs",
]
