"""The batch checksum: zlib's CRC-32, from the fastest implementation at hand, GIL kept.

A read checks the CRC of every batch it serves, cached or not, so the checksum
is a good share of what a fetch costs. ISA-L's CRC-32 (the `isal` package)
computes the same function as `zlib.crc32` with SIMD instructions, several
times faster on a batch of a few kilobytes; without it, `binascii.crc32`.

Every one of them lets go of the GIL for an input over 5 KiB, and on the
event loop's thread that hands the interpreter to a shard writer in the middle
of a request, for a checksum of a few microseconds, and waits to get it back
(up to the 5 ms switch interval while the writer runs Python). So `crc32`
feeds longer inputs in 4 KiB pieces, chaining the value: the same function,
and the GIL stays where it is.
"""

from __future__ import annotations

from binascii import crc32 as reference_crc32
from typing import Protocol

PIECE = 4096
"""Bytes per call of the underlying CRC: under the size at which it lets go of the GIL."""


class Checksum(Protocol):
    def __call__(self, data: bytes | bytearray | memoryview, value: int = 0, /) -> int: ...


try:
    from isal.isal_zlib import crc32 as _isal_crc32
except ImportError:  # a platform without isal's wheels: the same function, slower
    _piece_crc32: Checksum = reference_crc32
    IMPLEMENTATION = "binascii"
else:
    _piece_crc32 = _isal_crc32
    IMPLEMENTATION = "isal"


def crc32(data: bytes | bytearray | memoryview, value: int = 0, /) -> int:
    """zlib's CRC-32 of `data`, continuing from `value`, without letting go of the GIL."""
    size = len(data) if type(data) is not memoryview else data.nbytes
    if size <= PIECE:
        return _piece_crc32(data, value)
    view = memoryview(data).cast("B")
    for start in range(0, size, PIECE):
        value = _piece_crc32(view[start : start + PIECE], value)
    return value


__all__ = ["IMPLEMENTATION", "PIECE", "crc32", "reference_crc32"]
