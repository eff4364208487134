"""Special files where a file is expected, and valid inputs that used to be refused.

A FIFO blocks a reader forever, ``/dev/zero`` never ends, a folder is not a file: every place that
opens a file a user named must refuse them by name, at once.  Each case runs ``sbts`` as a
subprocess with a timeout, so a hang fails the case instead of the suite.  The other half: a
template in a folder whose name holds glob characters (``data[1]/``), saved with a UTF-8 BOM or
with CRLF line ends, is valid and must load.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.rcase(area="special files")

TIMEOUT = 60  # a refused special file answers in seconds; a hang is killed here


def _fifo(path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(path)
    return path


def _run(rel, *args, cwd=None):
    try:
        return rel.run(*args, cwd=cwd, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`sbts {' '.join(map(str, args))}` hung for {TIMEOUT} s")


def _special(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        return _fifo(tmp_path / "special.cfg")
    if kind == "dev-zero":
        if not Path("/dev/zero").exists():
            pytest.skip("no /dev/zero")
        return Path("/dev/zero")
    if kind == "folder":
        folder = tmp_path / "folder.cfg"
        folder.mkdir()
        return folder
    if kind == "socket":
        import socket

        path = tmp_path / "s.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        return path  # the socket file stays after the process ends the socket
    if kind == "link-to-fifo":
        link = tmp_path / "link.cfg"
        link.symlink_to(_fifo(tmp_path / "target.fifo"))
        return link
    raise AssertionError(kind)


KINDS = ["fifo", "dev-zero", "folder", "socket", "link-to-fifo"]


# =========================================================================== the template
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["load", "invert", "network", "run"])
@pytest.mark.rcase(input="TEMPLATE is a FIFO / /dev/zero / a folder (subprocess)",
                   expected="clean error naming it, within seconds (was: blocked forever / MemoryError)")
def test_template_special(rel, tmp_path, kind, command, note):
    target = _special(kind, tmp_path)
    res = _run(rel, command, target, cwd=tmp_path)
    assert res.code != 0 and "Traceback" not in res.out, res.out
    line = res.error_line
    assert line and "internal error" not in line, res.out
    assert str(target.name) in line or "directory" in line.lower(), line
    note(observed=line[:150])


@pytest.mark.rcase(input="TEMPLATE is a dangling symbolic link", expected="clean error: not found")
def test_template_dangling_link(rel, tmp_path, note):
    link = tmp_path / "gone.cfg"
    link.symlink_to(tmp_path / "nowhere.cfg")
    res = _run(rel, "load", link, cwd=tmp_path)
    assert res.code != 0 and "not found" in res.error_line.lower() or "does not exist" in res.error_line, res.out
    note(observed=res.error_line[:150])


@pytest.mark.rcase(input="hdfeos5 -O template=FIFO", expected="clean error naming the template")
def test_export_template_fifo(rel, project, note):
    fifo = _fifo(project.parent / "unavco.cfg")
    res = _run(rel, "export", "hdfeos5", project.parent / "timeseries.h5", "-O", f"template={fifo}",
               "-O", "relative_orbit=1", "-O", "first_frame=1")
    assert res.code == 1 and "unavco.cfg" in res.error_line and "FIFO" in res.error_line, res.out
    note(observed=res.error_line[:150])


# =========================================================================== HDF5 inputs
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", [["info"], ["invert", None, "-i"], ["velocity", None, "-i"],
                                     ["export", "geotiff"]], ids=["info", "invert-i", "velocity-i", "export"])
@pytest.mark.rcase(input="an HDF5 input that is a FIFO / /dev/zero / a folder (subprocess)",
                   expected="clean error naming it, within seconds")
def test_hdf5_special(rel, project, tmp_path, kind, command, note):
    target = _special(kind, tmp_path)
    args = [project if a is None else a for a in command] + [target]
    res = _run(rel, *args, cwd=project.parent)
    assert res.code != 0 and "Traceback" not in res.out, res.out
    line = res.error_line
    assert line and "internal error" not in line, res.out
    note(observed=line[:150])


# =========================================================================== files named by template keys
@pytest.mark.parametrize("key, value, command", [
    ("mintpy.load.unwFile", "syn/*.h5", "load"),
    ("mintpy.timeFunc.excludeDate", "special.txt", "velocity"),
    ("mintpy.network.referenceFile", "special.txt", "network"),
    ("mintpy.topographicResidual.excludeDate", "special.txt", "correct"),
    ("mintpy.networkInversion.waterMaskFile", "special.txt", "invert"),
], ids=["unwFile-match", "timeFunc.excludeDate", "network.referenceFile", "dem.excludeDate", "waterMaskFile"])
@pytest.mark.rcase(input="a file named by a template key is a FIFO (subprocess)",
                   expected="clean error naming it, within seconds (no hang)")
def test_key_file_fifo(rel, project, key, value, command, note):
    work = project.parent
    if key == "mintpy.load.unwFile":
        _fifo(work / "syn" / "zz_fifo.h5")
    else:
        _fifo(work / value)
    project.write_text(project.read_text() + f"{key} = {value}\n")
    args = {"load": ["load", project], "velocity": ["velocity", project, "-i", work / "timeseries.h5"],
            "network": ["network", project], "correct": ["correct", "dem_error", project],
            "invert": ["invert", project, "--force"]}[command]
    res = _run(rel, *args, cwd=work)
    assert res.code != 0 and "Traceback" not in res.out, res.out
    line = res.error_line
    assert line and "internal error" not in line and ("zz_fifo" in line or "special.txt" in line), res.out
    assert "FIFO" in line, line
    note(observed=line[:150])


@pytest.mark.parametrize("explicit", [True, False], ids=["set", "default"])
@pytest.mark.rcase(input="reference_date.txt (set in the template / the default name) is a FIFO; sbts refdate",
                   expected="clean error naming the FIFO, within seconds (was: 'not found', or silently ignored)")
def test_reference_date_fifo(rel, project, explicit, note):
    work = project.parent
    _fifo(work / "reference_date.txt")
    if explicit:
        project.write_text(project.read_text() + "mintpy.reference.date = reference_date.txt\n")
    res = _run(rel, "refdate", project, work / "timeseries.h5", cwd=work)
    assert res.code == 1 and "FIFO" in res.error_line and "reference_date.txt" in res.error_line, res.out
    note(observed=res.error_line[:150])


# =========================================================================== valid input that was refused
@pytest.mark.rcase(area="valid input")
class TestValidInput:
    @pytest.mark.parametrize("folder", ["data[1]", "run*1", "q?x", "a b", "ü-née"])
    @pytest.mark.rcase(input="the project in a folder whose name holds glob characters / spaces / non-ASCII",
                       expected="ok: loads (was: 'matches no file')")
    def test_glob_characters_in_folder(self, rel, tmp_path, folder, note):
        cfg = rel.project(tmp_path / folder, shape=(20, 24), num_date=6)
        res = rel.cli("load", cfg)
        assert res.code == 0, res.out
        assert (cfg.parent / "inputs/ifgramStack.h5").exists()
        note(observed="ok")

    @pytest.mark.rcase(input="absolute unwFile pattern through a folder named data[1] with a wildcard after it",
                       expected="ok: the wildcard still expands")
    def test_glob_prefix_keeps_wildcards(self, rel, tmp_path):
        cfg = rel.project(tmp_path / "data[1]", shape=(20, 24), num_date=6)
        text = cfg.read_text().replace("syn/ifgramStack.h5", f"{cfg.parent}/s*/ifgram*.h5")
        cfg.write_text(text)
        assert rel.cli("load", cfg).code == 0

    @pytest.mark.parametrize("how", ["bom", "crlf", "bom+crlf", "tabs"])
    @pytest.mark.rcase(input="template saved with a UTF-8 BOM / CRLF line ends / tabs around '='",
                       expected="ok: every key read (was: BOM made the first line unparsable)")
    def test_template_encodings(self, rel, tmp_path, how, note):
        from sbts.core.config.template import Template

        cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
        text = cfg.read_text()
        if "tabs" in how:
            text = text.replace(" = ", "\t=\t")
        if "crlf" in how:
            text = text.replace("\n", "\r\n")
        data = text.encode("utf-8")
        if "bom" in how:
            data = b"\xef\xbb\xbf" + data
        cfg.write_bytes(data)
        assert Template.read(cfg).get("mintpy.load.processor") == "mintpy"
        res = rel.cli("load", cfg)
        assert res.code == 0, res.out
        note(observed="ok")

    @pytest.mark.rcase(input="the template is a symbolic link to a regular file", expected="ok")
    def test_template_symlink(self, rel, tmp_path):
        cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
        link = cfg.parent / "link.cfg"
        link.symlink_to(cfg)
        assert rel.cli("load", link).code == 0

    @pytest.mark.rcase(input="a read-only template (chmod 444)", expected="ok: never written, loads")
    def test_template_read_only(self, rel, tmp_path):
        cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
        cfg.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        try:
            assert rel.cli("load", cfg).code == 0
        finally:
            cfg.chmod(0o644)

    @pytest.mark.rcase(input="a data folder reached through a symbolic link", expected="ok")
    def test_data_through_symlink(self, rel, tmp_path):
        cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
        shutil.move(str(cfg.parent / "syn"), str(tmp_path / "elsewhere"))
        (cfg.parent / "syn").symlink_to(tmp_path / "elsewhere")
        assert rel.cli("load", cfg).code == 0
