"""Who may speak for a cluster: certificates and TLS.

- ``certs``: the cluster's CA, node and client certificates, and the paxon
  identity a certificate names (``paxon://<cluster>/node/<id>``). Import it
  as ``paxon.security.certs``: it loads ``cryptography`` (about 35 ms), which
  ``import paxon`` should not pay.
- ``client_tls``: the TLS settings of a client (``ClientTls``).
"""

from paxon.security.client_tls import ClientTls

__all__ = ["ClientTls"]
