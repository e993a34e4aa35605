"""TLS contexts for a node's ports, from certificate files (stdlib ``ssl``).

- Peers: mutual TLS 1.3. Both sides present a certificate from the peer CA and
  require one from the other. Host names are not checked: a peer is named by
  the node id in its certificate (``paxon://CLUSTER/node/ID``, see
  ``paxon.security.certs``), which the transport compares with the id the
  connection claims, so a certificate of node 2 can never speak as node 1.
- Clients: TLS 1.2 or later on the native and HTTP ports; with a client CA a
  client must present a certificate from it.

Every function raises ``ValueError`` with one line naming the file when a file
is missing, unreadable or not what it should be, so ``paxon serve`` can refuse
to start with exit 2.
"""

from __future__ import annotations

import ssl
from typing import Any

from paxon.net.peer_auth import PeerSecurity
from paxon.security.certs import CertIdentity, identity_of_der


def peer_security(cert: str, key: str, ca: str) -> PeerSecurity:
    """The accepting and dialing contexts of peer mutual TLS."""
    accept = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    dial = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    dial.check_hostname = False  # the node id in the certificate is checked instead
    for context in (accept, dial):
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.verify_mode = ssl.CERT_REQUIRED
        _load_chain(context, cert, key, "--peer-cert/--peer-key")
        _load_ca(context, ca, "--peer-ca")
    return PeerSecurity(tls_accept=accept, tls_dial=dial)


def client_port_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """The server side of client TLS (native and HTTP ports)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key, "--cert/--key")
    if client_ca is not None:
        _load_ca(context, client_ca, "--client-ca")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def identity_of_transport(transport: Any) -> CertIdentity | None:
    """The paxon identity in the certificate the other end of ``transport``
    presented, or None (no TLS, no certificate, or no paxon identity in it)."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    return identity_of_der(der)


def _load_chain(context: ssl.SSLContext, cert: str, key: str, flags: str) -> None:
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as error:
        raise ValueError(f"{flags}: no such file {error.filename!r}") from None
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"{flags}: cannot load {cert} with {key}: {_reason(error)}") from None


def _load_ca(context: ssl.SSLContext, ca: str, flag: str) -> None:
    try:
        context.load_verify_locations(cafile=ca)
    except FileNotFoundError:
        raise ValueError(f"{flag}: no such file {ca!r}") from None
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"{flag}: cannot load {ca}: {_reason(error)}") from None


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason).lower().replace("_", " ")
    return str(error)
