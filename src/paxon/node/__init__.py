"""The node runtime: drives the pure core with real sockets, disks and clocks."""

from paxon.node.config import NodeConfig
from paxon.node.node import Node

__all__ = ["Node", "NodeConfig"]
