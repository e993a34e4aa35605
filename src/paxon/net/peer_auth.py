"""How a node knows that a connection really comes from the peer it claims to be.

Three modes, chosen by ``paxon serve``'s flags (``docs/security.md``):

| mode       | flags                                | who can join the peer links          |
|------------|--------------------------------------|--------------------------------------|
| ``tls``    | ``--peer-cert --peer-key --peer-ca`` | a certificate from the CA that names |
|            |                                      | ``paxon://CLUSTER/node/ID``          |
| ``secret`` | ``--cluster-secret-file``            | a holder of the shared secret        |
| ``none``   | neither (a loud warning at start-up) | anyone who can reach the port        |

The peer handshake, after TLS (if any) has finished:

    dialer  -> acceptor  Hello(cluster_id, dialer_id, version)
    acceptor -> dialer   Challenge(nonce_a)                  (or Refused)
    dialer  -> acceptor  PeerProof(nonce_d, proof_d, client_address_d, incarnation_d)
    acceptor -> dialer   PeerWelcome(acceptor_id, proof_a, client_address_a, incarnation_a)

With a secret, ``proof_d`` and ``proof_a`` are HMAC-SHA256 (stdlib ``hmac``)
of everything both sides said, under the secret, with a different label per
role: a proof cannot be replayed (fresh nonces on both sides), reflected (the
labels differ) or moved to another node id, cluster, client address or
incarnation (they are in the MAC). The incarnation is the random number of the
sender's data directory (``storage.identity``): a member whose directory was
wiped comes back with another one, and is refused by the members that have it
bound (``docs/membership.md``, "Incarnations"). Both sides prove, so a dialer
never treats an impostor acceptor as its peer either. With TLS the proofs are
empty: the certificates, checked by ``ssl`` against the CA and then for the
node id, already did that job. In ``secret`` mode the handshake is
authenticated but the stream after it is not encrypted or MACed: an attacker
who can splice TCP segments into an existing connection (on the path, not
merely able to reach the port) is not stopped; that is what TLS is for.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
from dataclasses import dataclass
from typing import Final, Literal

import msgpack  # type: ignore[import-untyped]

from paxon.net.client_messages import NONCE_BYTES

PeerAuthMode = Literal["tls", "secret", "none"]

SECRET_MIN_BYTES: Final = 16
SECRET_MAX_BYTES: Final = 4096
_LABEL_DIALER: Final = "paxon peer proof v2: dialer"
_LABEL_ACCEPTOR: Final = "paxon peer proof v2: acceptor"


@dataclass(frozen=True, slots=True)
class PeerSecurity:
    """What a transport needs to authenticate its peers (one of the three modes)."""

    # TLS: the context that accepts peers (client certificates required) and the
    # one that dials them (presents this node's certificate).
    tls_accept: ssl.SSLContext | None = None
    tls_dial: ssl.SSLContext | None = None
    secret: bytes | None = None

    def __post_init__(self) -> None:
        if (self.tls_accept is None) != (self.tls_dial is None):
            raise ValueError("peer TLS needs both an accepting and a dialing context")
        if self.tls_accept is not None and self.secret is not None:
            raise ValueError("use peer TLS or a cluster secret, not both")
        if self.secret is not None and not (
            SECRET_MIN_BYTES <= len(self.secret) <= SECRET_MAX_BYTES
        ):
            raise ValueError(
                f"a cluster secret must be {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes"
            )

    @property
    def mode(self) -> PeerAuthMode:
        if self.tls_accept is not None:
            return "tls"
        return "secret" if self.secret is not None else "none"


INSECURE: Final = PeerSecurity()


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


@dataclass(frozen=True, slots=True)
class HandshakeTranscript:
    """Everything both sides of one peer handshake said, in the order the MAC covers it."""

    cluster_id: str
    dialer_id: int
    acceptor_id: int
    nonce_acceptor: bytes
    nonce_dialer: bytes
    client_address_dialer: str
    incarnation_dialer: int = 0

    def dialer_proof(self, secret: bytes) -> bytes:
        return self._mac(secret, _LABEL_DIALER, "", 0)

    def acceptor_proof(
        self, secret: bytes, client_address_acceptor: str, incarnation_acceptor: int = 0
    ) -> bytes:
        return self._mac(secret, _LABEL_ACCEPTOR, client_address_acceptor, incarnation_acceptor)

    def _mac(
        self, secret: bytes, label: str, client_address_acceptor: str, incarnation_acceptor: int
    ) -> bytes:
        message = msgpack.packb(
            [
                label,
                self.cluster_id,
                self.dialer_id,
                self.acceptor_id,
                self.nonce_acceptor,
                self.nonce_dialer,
                self.client_address_dialer,
                self.incarnation_dialer,
                client_address_acceptor,
                incarnation_acceptor,
            ],
            use_bin_type=True,
        )
        return hmac.new(secret, message, hashlib.sha256).digest()


def proofs_match(expected: bytes, given: bytes) -> bool:
    """Constant-time comparison (``hmac.compare_digest``)."""
    return hmac.compare_digest(expected, given)


def read_secret_file(path: str) -> bytes:
    """The secret in ``path`` (surrounding whitespace stripped); ValueError with a
    one-line reason if it is unreadable, too short or readable by other users."""
    try:
        status = os.stat(path)
        with open(path, "rb") as file:
            secret = file.read(SECRET_MAX_BYTES + 1).strip()
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror or error}") from None
    if status.st_mode & 0o077:
        raise ValueError(
            f"{path}: the cluster secret is readable by other users "
            f"(mode {status.st_mode & 0o777:o}); chmod 600 it"
        )
    if not SECRET_MIN_BYTES <= len(secret) <= SECRET_MAX_BYTES:
        raise ValueError(
            f"{path}: a cluster secret must be {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes "
            f"(try: head -c 32 /dev/urandom | base64 > {path})"
        )
    return secret
