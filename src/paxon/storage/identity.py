"""The identity file: which node of which cluster owns a data directory.

Rules:
- Written once, when the directory is first used, by the atomic-file recipe
  (write ``IDENTITY.tmp``, fsync it, rename to ``IDENTITY``, fsync the
  directory) and never rewritten. Checked at every start.
- ``incarnation`` is a random 64-bit number drawn at that first start. Every
  segment and snapshot header carries it, so a file copied in from another
  data directory (even one of the same node id) is refused by name.

Layout (little-endian): ``b"PAXONID1"``, node_id u64, incarnation u64,
cluster id length u16, cluster id (UTF-8), CRC32C u32 of everything before it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from crc32c import crc32c

from paxon.storage.errors import CorruptIdentity, IdentityMismatch
from paxon.storage.fs import FileSystem, join, write_durably
from paxon.storage.layout import IDENTITY_NAME

_MAGIC = b"PAXONID1"
_FIXED = struct.Struct("<8sQQH")
_CRC = struct.Struct("<I")
CLUSTER_ID_MAX_BYTES = 255


@dataclass(frozen=True, slots=True)
class Identity:
    node_id: int
    cluster_id: str
    incarnation: int

    def __post_init__(self) -> None:
        # Argument checks. decode_identity checks the CRC first, so only a file
        # written with bad fields would reach them; the simulator writes none.
        if self.node_id <= 0:
            raise ValueError(  # sim: unreachable: argument check
                f"node id must be > 0, got {self.node_id}"
            )
        if not 0 < len(self.cluster_id.encode()) <= CLUSTER_ID_MAX_BYTES:
            raise ValueError(  # sim: unreachable: argument check
                f"cluster id must be 1..{CLUSTER_ID_MAX_BYTES} bytes of UTF-8"
            )
        if not 0 <= self.incarnation < 2**64:
            raise ValueError("incarnation must fit in 64 bits")  # sim: unreachable: argument check

    def describe(self) -> str:
        return f"node {self.node_id} of cluster {self.cluster_id!r}"


def encode_identity(identity: Identity) -> bytes:
    cluster = identity.cluster_id.encode()
    body = _FIXED.pack(_MAGIC, identity.node_id, identity.incarnation, len(cluster)) + cluster
    return body + _CRC.pack(crc32c(body))


def decode_identity(data: bytes, file: str) -> Identity:
    # IDENTITY is written whole before its rename (write_durably), and no
    # storage fault shortens a file: lost and misdirected writes keep its size.
    if len(data) < _FIXED.size + _CRC.size:  # sim: one-way: no fault shortens IDENTITY
        raise CorruptIdentity(file, f"identity file of {len(data)} bytes is too short", 0)
    magic, node_id, incarnation, cluster_len = _FIXED.unpack_from(data)
    if magic != _MAGIC:
        raise CorruptIdentity(file, "not a paxon identity file (bad magic)", 0)
    end = _FIXED.size + cluster_len
    if len(data) != end + _CRC.size:
        raise CorruptIdentity(file, f"identity file of {len(data)} bytes, expected {end + 4}", 0)
    if crc32c(data[:end]) != _CRC.unpack_from(data, end)[0]:
        raise CorruptIdentity(file, "checksum mismatch", end)
    try:
        return Identity(node_id, data[_FIXED.size : end].decode(), incarnation)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptIdentity(file, f"invalid identity: {exc}", 0) from None


def read_identity(  # sim: unreachable: API helper; recovery reads IDENTITY itself
    fs: FileSystem, directory: str
) -> Identity | None:
    """The identity stored in ``directory``, or None when there is none yet."""
    path = join(directory, IDENTITY_NAME)
    if not fs.exists(path):
        return None
    return decode_identity(fs.read(path), path)


def write_identity(fs: FileSystem, directory: str, identity: Identity) -> None:
    """Store ``identity`` durably (temporary file, fsync, rename, fsync directory)."""
    write_durably(fs, directory, IDENTITY_NAME, lambda file: file.write(encode_identity(identity)))


def check_identity(found: Identity, node_id: int, cluster_id: str, file: str) -> None:
    # The simulator opens each disk as its own node, and a damaged IDENTITY
    # fails its checksum first (tests/storage/test_storage_wal.py tries another).
    if found.node_id != node_id or found.cluster_id != cluster_id:  # sim: one-way: same node
        raise IdentityMismatch(
            file,
            f"data directory belongs to {found.describe()}, "
            f"not to node {node_id} of cluster {cluster_id!r}",
        )
