"""The zip writer of the KMZ exporters (members deflated by the workers): read back by ``zipfile`` and
``unzip``, the same deflate stream as ``zipfile.ZIP_DEFLATED``, a fixed time, and ZIP64 past the classic
format's limits (lowered here so that a test writes kilobytes, not 4 GB)."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from sbts.plugins.exporters import _zip
from sbts.plugins.exporters._zip import ZipWriter, deflate


def _members() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        "doc.kml": ("<kml>" + "<Placemark>a point</Placemark>" * 500 + "</kml>").encode(),
        "files/colorbar.png": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),  # incompressible
        "L0_4px_r0_c0.kml": b"",
        "r\u00e9gion.kml": "caf\u00e9 \u2013 \u00e9t\u00e9".encode(),  # a UTF-8 name
    }


def _archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    writer = ZipWriter(buf)
    for name, data in members.items():
        writer.add(deflate(name, data))
    writer.close()
    return buf.getvalue()


def test_zipfile_reads_every_member_in_order_with_a_fixed_time():
    members = _members()
    data = _archive(members)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None  # every CRC checks
        assert z.namelist() == list(members)
        for info in z.infolist():
            assert z.read(info) == members[info.filename]
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert (info.external_attr >> 16) & 0o777 == 0o644
    assert _archive(members) == data  # the same members, the same bytes


def test_the_deflate_stream_is_zipfiles():
    """A member deflated by a worker is the stream zipfile.ZIP_DEFLATED would have stored."""
    members = _members()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    with zipfile.ZipFile(buf) as z:
        for info in z.infolist():
            ours = deflate(info.filename, members[info.filename])
            assert (ours.crc, ours.size, len(ours.data)) == (info.CRC, info.file_size, info.compress_size)
            raw = io.BytesIO(buf.getvalue())
            raw.seek(info.header_offset + 30 + len(info.filename.encode()) + len(info.extra))  # past the local header
            assert raw.read(info.compress_size) == ours.data


@pytest.mark.skipif(shutil.which("unzip") is None, reason="no unzip here")
def test_unzip_tests_the_archive(tmp_path):
    path = tmp_path / "a.kmz"
    path.write_bytes(_archive(_members()))
    res = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert res.returncode == 0 and "No errors detected" in res.stdout, res.stdout + res.stderr


def test_zip64_past_the_limits(monkeypatch, tmp_path):
    """Sizes, offsets and the number of members past the classic fields go to ZIP64 records."""
    monkeypatch.setattr(_zip, "_LIMIT", 1000)
    monkeypatch.setattr(_zip, "_MAX_ENTRIES", 3)
    members = {f"m{k}.kml": (f"member {k} " * (150 * (k + 1))).encode() for k in range(6)}
    members["noise.bin"] = np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes()  # > limit packed
    data = _archive(members)
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # the ZIP64 end record and its locator
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        assert z.namelist() == list(members)
        assert all(z.read(name) == content for name, content in members.items())
    if shutil.which("unzip"):
        path = tmp_path / "a.zip"
        path.write_bytes(data)
        res = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
