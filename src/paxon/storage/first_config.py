"""The first configuration of a data directory: which members the node started with.

Rules:
- Written once, at the first start of a directory (``paxon serve --peers`` at
  a cluster's first start, or the configuration ``--join`` fetched from the
  cluster), by the atomic-file recipe (``write_durably``: temporary file,
  fsync, rename, fsync the directory), and never rewritten. Read at every
  later start instead of ``--peers``: a node rebuilds its configurations from
  it plus the changes in its log (or from its newest snapshot), so what it
  starts from never depends on flags an operator may change.
- A directory written before paxon kept this file has none; its first start
  with this version writes it from ``--peers``, as that start always read them.
- A damaged file is ``CorruptFirstConfiguration``: the node does not start.

Layout: ``b"PAXONFC1"``, length u32 (little-endian), the configuration as
``Configuration.encode`` writes it, CRC32C u32 of everything before it.
"""

from __future__ import annotations

import struct

from crc32c import crc32c

from paxon.protocol.membership import CONFIG_BYTES_MAX, Configuration, InvalidConfiguration
from paxon.storage.errors import DataDirDamaged
from paxon.storage.fs import FileSystem, join, write_durably
from paxon.storage.layout import FIRST_CONFIG_NAME

_MAGIC = b"PAXONFC1"
_HEAD = struct.Struct("<8sI")
_CRC = struct.Struct("<I")


class CorruptFirstConfiguration(DataDirDamaged):
    """The first-configuration file is unreadable."""


def encode_first_configuration(configuration: Configuration) -> bytes:
    body = configuration.encode()
    data = _HEAD.pack(_MAGIC, len(body)) + body
    return data + _CRC.pack(crc32c(data))


def decode_first_configuration(data: bytes, file: str) -> Configuration:
    # The simulator's storage faults strike IDENTITY, segments and snapshots;
    # tests/storage/test_first_config.py damages this file by hand.
    if len(data) < _HEAD.size + _CRC.size:  # sim: one-way: no fault strikes FIRST-CONFIG
        raise CorruptFirstConfiguration(file, f"{len(data)} bytes is too short")
    magic, length = _HEAD.unpack_from(data)
    if magic != _MAGIC:  # sim: one-way: no fault strikes FIRST-CONFIG
        raise CorruptFirstConfiguration(file, "not a paxon first configuration (bad magic)", 0)
    end = _HEAD.size + length
    if length > CONFIG_BYTES_MAX or len(data) != end + _CRC.size:  # sim: one-way: as above
        raise CorruptFirstConfiguration(file, f"{len(data)} bytes, expected {end + _CRC.size}")
    if crc32c(data[:end]) != _CRC.unpack_from(data, end)[0]:  # sim: one-way: as above
        raise CorruptFirstConfiguration(file, "checksum mismatch", end)
    try:
        return Configuration.decode(data[_HEAD.size : end])
    except InvalidConfiguration as error:  # sim: unreachable: the CRC holds, so encode wrote it
        raise CorruptFirstConfiguration(file, str(error), _HEAD.size) from None


def read_first_configuration(fs: FileSystem, directory: str) -> Configuration | None:
    """The first configuration kept in ``directory``, or None when there is none yet."""
    path = join(directory, FIRST_CONFIG_NAME)
    if not fs.exists(path):
        return None
    return decode_first_configuration(fs.read(path), path)


def write_first_configuration(fs: FileSystem, directory: str, configuration: Configuration) -> None:
    """Keep ``configuration`` durably as the directory's first configuration."""
    data = encode_first_configuration(configuration)
    write_durably(fs, directory, FIRST_CONFIG_NAME, lambda file: file.write(data))
