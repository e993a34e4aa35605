"""The node runtime: drives the pure core with real sockets, disks and clocks."""

from paxon.node.config import NodeConfig
from paxon.node.history import HistoryRetention
from paxon.node.node import Node

__all__ = ["HistoryRetention", "Node", "NodeConfig"]
