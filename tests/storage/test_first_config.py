"""FIRST-CONFIG: the data directory's first configuration, kept once and checked."""

from __future__ import annotations

import pytest

from paxon.protocol.membership import Configuration, Member
from paxon.storage import MemFileSystem
from paxon.storage.first_config import (
    CorruptFirstConfiguration,
    decode_first_configuration,
    encode_first_configuration,
    read_first_configuration,
    write_first_configuration,
)
from paxon.storage.layout import FIRST_CONFIG_NAME, is_paxon_tmp

CONFIG = Configuration(3, (Member(1, "a:1"), Member(2, "b:1"), Member(4, "d:1", voter=False)))


def test_written_then_read_back_whole() -> None:
    fs = MemFileSystem()
    fs.mkdir("/d")
    assert read_first_configuration(fs, "/d") is None
    write_first_configuration(fs, "/d", CONFIG)
    assert read_first_configuration(fs, "/d") == CONFIG
    assert is_paxon_tmp(FIRST_CONFIG_NAME + ".tmp")


@pytest.mark.parametrize("where", [0, 9, 14, -1])
def test_a_flipped_bit_anywhere_is_refused_with_the_file_named(where: int) -> None:
    data = bytearray(encode_first_configuration(CONFIG))
    data[where] ^= 0x10
    with pytest.raises(CorruptFirstConfiguration, match="FIRST-CONFIG"):
        decode_first_configuration(bytes(data), "/d/FIRST-CONFIG")


def test_a_short_file_is_refused() -> None:
    data = encode_first_configuration(CONFIG)
    for cut in (3, len(data) - 1):
        with pytest.raises(CorruptFirstConfiguration):
            decode_first_configuration(data[:cut], "/d/FIRST-CONFIG")
