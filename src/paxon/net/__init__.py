"""The network layer: frames, the wire codec, peer links and client connections.

``docs/wire.md`` describes the bytes; ``transport.py`` the node's side (peers
and clients on one port); ``client_link.py`` the client's side of one
connection. Everything that arrives is decoded and validated here, at the edge,
before the node sees it.
"""

from paxon.net.client_link import ClientLink
from paxon.net.client_messages import (
    ANY_CLUSTER,
    CLIENT_NODE_ID,
    PROTOCOL_VERSION,
    Authenticate,
    ChangeMembers,
    ClientRequest,
    ClientResponse,
    Failure,
    HandshakeMessage,
    Hello,
    Query,
    Redirect,
    Refused,
    Reply,
    StatusReply,
    StatusRequest,
    Submit,
    Welcome,
)
from paxon.net.codec import TYPE_CODES, DecodeError, WireMessage, decode_body, encode, encode_body
from paxon.net.config import NetConfig
from paxon.net.frames import FrameDecoder, FrameTooLarge
from paxon.net.transport import ClientConnection, PeerState, Transport, TransportStats

__all__ = [
    "ANY_CLUSTER",
    "CLIENT_NODE_ID",
    "PROTOCOL_VERSION",
    "TYPE_CODES",
    "Authenticate",
    "ChangeMembers",
    "ClientConnection",
    "ClientLink",
    "ClientRequest",
    "ClientResponse",
    "DecodeError",
    "Failure",
    "FrameDecoder",
    "FrameTooLarge",
    "HandshakeMessage",
    "Hello",
    "NetConfig",
    "PeerState",
    "Query",
    "Redirect",
    "Refused",
    "Reply",
    "StatusReply",
    "StatusRequest",
    "Submit",
    "Transport",
    "TransportStats",
    "Welcome",
    "WireMessage",
    "decode_body",
    "encode",
    "encode_body",
]
