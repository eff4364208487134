"""A zip archive whose members were deflated elsewhere (by the run's workers).

``zipfile`` compresses a member in the process that writes the archive, so a KMZ of many region
files is deflated by one core however many workers made its text (~90 MB/s here: 7 s of a 600 MB
time-series KMZ).  Here a worker calls :func:`deflate` on its member (raw deflate at zlib's default
level, as ``zipfile.ZIP_DEFLATED`` does, and the CRC-32 of the text) and :class:`ZipWriter` only
writes the headers and the bytes, in the order it is given the members.

Every member carries the zip epoch (1980-01-01 00:00) and the mode rw-r--r--, so the same members
give the same archive.  Sizes, offsets or counts past the classic format's limits are written as
ZIP64 (APPNOTE 6.3.x §4.5.3), which ``zipfile``, ``unzip`` and Google Earth read.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["Deflated", "deflate", "ZipWriter"]

_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01, the zip epoch
_DOS_TIME = 0
_MADE_BY = (3 << 8) | 45  # Unix attributes, spec version 4.5
_EXTERNAL_ATTR = 0o100644 << 16  # regular file, rw-r--r--
_DEFLATE = 8
_FULL32, _FULL16 = 0xFFFFFFFF, 0xFFFF  # "see the ZIP64 record" in a classic field
_LIMIT = _FULL32  # sizes and offsets from this one on go to ZIP64 fields (module values: tests lower them)
_MAX_ENTRIES = _FULL16


@dataclass(frozen=True)
class Deflated:
    """One member, compressed: its name, the CRC-32 and size of its content, the raw deflate stream."""

    name: str
    crc: int
    size: int
    data: bytes


def deflate(name: str, content: str | bytes, level: int = zlib.Z_DEFAULT_COMPRESSION) -> Deflated:
    """The member ``name`` of ``content`` (text is stored as UTF-8), deflated as ``zipfile`` does."""
    raw = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return Deflated(name, zlib.crc32(raw), len(raw), compressor.compress(raw) + compressor.flush())


class ZipWriter:
    """Writes :class:`Deflated` members to a binary file opened for writing at its start; ``close``
    writes the central directory (the file itself is the caller's to close)."""

    def __init__(self, fileobj: BinaryIO):
        self._file = fileobj
        self._offset = 0
        self._entries: list[tuple[Deflated, int]] = []  # member, offset of its local header
        self._closed = False

    def add(self, member: Deflated) -> None:
        if self._closed:
            raise ValueError("ZipWriter: closed")
        name, flags = _name(member)
        big = member.size >= _LIMIT or len(member.data) >= _LIMIT
        extra = struct.pack("<HHQQ", 0x0001, 16, member.size, len(member.data)) if big else b""
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if big else 20, flags, _DEFLATE, _DOS_TIME, _DOS_DATE,
                             member.crc, _FULL32 if big else len(member.data), _FULL32 if big else member.size,
                             len(name), len(extra))
        self._entries.append((member, self._offset))
        self._write(header + name + extra)
        self._write(member.data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        start = self._offset
        for member, offset in self._entries:
            name, flags = _name(member)
            wide = [v for v in (member.size, len(member.data), offset) if v >= _LIMIT]
            # ZIP64 extra field: the overflowing values, in the order size, compressed size, offset
            extra = struct.pack("<HH", 0x0001, 8 * len(wide)) + struct.pack(f"<{len(wide)}Q", *wide) if wide else b""
            self._write(struct.pack(
                "<IHHHHHHIIIHHHHHII", 0x02014B50, _MADE_BY, 45 if wide else 20, flags, _DEFLATE, _DOS_TIME,
                _DOS_DATE, member.crc, _FULL32 if len(member.data) >= _LIMIT else len(member.data),
                _FULL32 if member.size >= _LIMIT else member.size, len(name), len(extra), 0, 0, 0, _EXTERNAL_ATTR,
                _FULL32 if offset >= _LIMIT else offset) + name + extra)
        size, count = self._offset - start, len(self._entries)
        many, wide_size, wide_start = count >= _MAX_ENTRIES, size >= _LIMIT, start >= _LIMIT
        if many or wide_size or wide_start:
            record = self._offset
            self._write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, _MADE_BY, 45, 0, 0, count, count, size, start))
            self._write(struct.pack("<IIQI", 0x07064B50, 0, record, 1))
        entries = _FULL16 if many else count
        self._write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, _FULL32 if wide_size else size,
                                _FULL32 if wide_start else start, 0))

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._offset += len(data)


def _name(member: Deflated) -> tuple[bytes, int]:
    """The member's name as stored, and the general-purpose flags (bit 11: the name is UTF-8)."""
    return member.name.encode("utf-8"), 0 if member.name.isascii() else 0x800
