"""The HTTP endpoint (``http``: JSON API, ``/metrics``, dashboard), the node's
Prometheus metrics (``metrics``), ``paxon serve`` settings (``config``) and the
``paxon dev`` launcher (``dev``; its nodes' ids, ports and certificates in
``dev_plan``, their processes in ``dev_nodes``, its terminal commands in
``dev_console``).

Nothing is imported here, so a client that only needs ``config`` or
``metrics`` does not pay for loading aiohttp.
"""
