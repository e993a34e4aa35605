"""A client's TLS settings: the CA it trusts and, optionally, its own certificate.

``ClientTls(cacert=..., cert=..., key=...)`` is what ``paxon.Client`` and
``SyncClient`` take as ``tls=``; the CLI builds it from ``--cacert``,
``--cert``, ``--key`` or ``$PAXON_CACERT``, ``$PAXON_CERT``, ``$PAXON_KEY``
(``from_options``: a flag wins over its variable; none of them means plain TCP).

- The server is always verified: against ``cacert`` when given, else against
  the system's trust store; its certificate must name the host dialed (for
  paxon's node certificates: ``localhost``, ``127.0.0.1``, ``::1`` and the
  ``--hosts`` they were made with). TLS 1.2 is the oldest version accepted.
- ``cert`` and ``key`` present a client certificate (``paxon certs
  add-client``); ``key`` may be left out when ``cert`` holds the key too.
- ``context()`` reads the files at once: a missing or malformed file is a
  ``BadRequest`` naming it (CLI exit 2), before anything connects.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from paxon.errors import BadRequest

ENV_CACERT = "PAXON_CACERT"
ENV_CERT = "PAXON_CERT"
ENV_KEY = "PAXON_KEY"

_Path = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class ClientTls:
    """Speak TLS to the cluster, trusting ``cacert``, presenting ``cert``/``key`` if given."""

    cacert: _Path | None = None
    cert: _Path | None = None
    key: _Path | None = None

    def __post_init__(self) -> None:
        if self.key is not None and self.cert is None:
            raise BadRequest("TLS: a client key needs its certificate (cert) too")

    @classmethod
    def from_options(
        cls,
        cacert: _Path | None = None,
        cert: _Path | None = None,
        key: _Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientTls | None:
        """From flags, each falling back to its environment variable; None if none is set."""
        env = os.environ if environ is None else environ
        cacert = cacert or env.get(ENV_CACERT) or None
        cert = cert or env.get(ENV_CERT) or None
        key = key or env.get(ENV_KEY) or None
        if cacert is None and cert is None and key is None:
            return None
        return cls(cacert, cert, key)

    def context(self) -> ssl.SSLContext:
        """A client ``SSLContext`` for these settings (reads the files now)."""
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cacert)
        except (OSError, ssl.SSLError) as exc:
            raise BadRequest(f"TLS: cannot load CA file {self.cacert}: {_reason(exc)}") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert is not None:
            try:
                context.load_cert_chain(self.cert, self.key)
            except (OSError, ssl.SSLError) as exc:
                files = self.cert if self.key is None else f"{self.cert} / {self.key}"
                raise BadRequest(
                    f"TLS: cannot load client certificate {files}: {_reason(exc)}"
                ) from None
        return context


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)


__all__ = ["ENV_CACERT", "ENV_CERT", "ENV_KEY", "ClientTls"]
