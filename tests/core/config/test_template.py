"""Templates: MintPy keys accepted as they are, auto → defaults, overrides, unknown keys."""

from __future__ import annotations

import re
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbts.core.config.template import Template, UnknownKeyWarning, default_values, parse_text
from sbts.core.errors import TemplateError

MINTPY_CUSTOM = """\
## a MintPy custom template, unchanged
mintpy.load.processor      = gamma  #[isce, aria, hyp3, gmtsar, snap, gamma, roipac]
mintpy.load.unwFile        = ../GAMMA/interferograms/*/diff_*rlks.unw
mintpy.reference.yx        = 490,630
mintpy.networkInversion.weightFunc = no
mintpy.troposphericDelay.method = no
mintpy.topographicResidual = auto
HEADING = -12.3
"""


def test_mintpy_custom_template_works_unchanged(tmp_path):
    path = tmp_path / "SanFranSenDT42.txt"
    path.write_text(MINTPY_CUSTOM)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownKeyWarning)
        t = Template.read(path)
    assert t.get_numbers("mintpy.reference.yx", 2) == [490, 630]
    assert t.get_str("mintpy.networkInversion.weightFunc", ["var", "fim", "coh", "no"]) is None  # "no" = off
    assert t.get("mintpy.load.processor") == "gamma"
    assert t.get_bool("mintpy.topographicResidual") is True  # auto → default yes
    assert t.metadata_overrides() == {"HEADING": "-12.3"}


def test_auto_resolves_to_the_default_file():
    t = Template.from_text("mintpy.networkInversion.weightFunc = auto\n")
    assert t.raw("mintpy.networkInversion.weightFunc") == default_values()["mintpy.networkInversion.weightFunc"] == "var"
    assert t.get_float("mintpy.networkInversion.minTempCoh") == 0.7
    assert not t.is_set("mintpy.networkInversion.weightFunc")


def test_options_override_template_and_none_keeps_value():
    t = Template.from_text("mintpy.networkInversion.weightFunc = fim\nmintpy.compute.maxMemory = 2\n")
    o = t.updated({"mintpy.networkInversion.weightFunc": "coh", "mintpy.compute.maxMemory": None,
                   "mintpy.networkInversion.minNormVelocity": False})
    assert o.raw("mintpy.networkInversion.weightFunc") == "coh"
    assert o.get_float("mintpy.compute.maxMemory") == 2
    assert o.get_bool("mintpy.networkInversion.minNormVelocity") is False


def test_sbts_prefix_is_a_synonym():
    assert Template.from_text("sbts.reference.yx = 1,2").get_numbers("mintpy.reference.yx") == [1, 2]


def test_unknown_key_warns_with_closest_key():
    with pytest.warns(UnknownKeyWarning, match="did you mean 'mintpy.networkInversion.weightFunc'"):
        Template.from_text("mintpy.networkInversion.weightFun = no")


def test_bad_values_name_key_and_value():
    t = Template.from_text("mintpy.networkInversion.minTempCoh = high\nmintpy.deramp.maskFile = x\n"
                           "mintpy.networkInversion.weightFunc = fancy\nmintpy.topographicResidual = maybe")
    with pytest.raises(TemplateError, match="minTempCoh.*'high'"):
        t.get_float("mintpy.networkInversion.minTempCoh")
    with pytest.raises(TemplateError, match="weightFunc.*fancy.*var"):
        t.get_str("mintpy.networkInversion.weightFunc", ["var", "fim", "coh", "no"])
    with pytest.raises(TemplateError, match="yes/no"):
        t.get_bool("mintpy.topographicResidual")
    with pytest.raises(TemplateError, match="line 1"):
        parse_text("just words", "x.cfg")


def test_non_utf8_template_is_a_clear_error(tmp_path):
    path = tmp_path / "t.cfg"
    path.write_bytes(b"mintpy.reference.yx = \xff\xfe\n")
    with pytest.raises(TemplateError, match="not UTF-8"):
        Template.read(path)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parser_raises_only_template_errors(text):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parse_text(text)
    except TemplateError as exc:
        assert "line" in str(exc)


# ---------------------------------------------------------------- MintPy keys sbts does not implement
def _stock_template(mintpy_oracle, tmp_path):
    """MintPy 1.6.4's own smallbaselineApp.cfg, read from the oracle install (never copied into sbts)."""
    proc = mintpy_oracle.python("import mintpy, os; print(os.path.join(os.path.dirname(mintpy.__file__), "
                                "'defaults', 'smallbaselineApp.cfg'))")
    path = tmp_path / "smallbaselineApp.cfg"
    path.write_text(open(proc.stdout.strip()).read())
    return path


def test_stock_mintpy_template_reads_without_unknown_keys(mintpy_oracle, tmp_path, caplog):
    path = _stock_template(mintpy_oracle, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level("INFO", logger="sbts.core.config.template"):
            t = Template.read(path)
    assert [str(w.message) for w in caught if issubclass(w.category, UnknownKeyWarning)] == []
    lines = [r.getMessage() for r in caplog.records if "does not implement" in r.getMessage()]
    assert len(lines) == 1  # one line for all of them
    for key in ("mintpy.load.azOffFile", "mintpy.troposphericDelay.operaDir", "mintpy.compute.config",
                "mintpy.load.frequency"):
        assert key in lines[0]
    assert t.get_str("mintpy.networkInversion.weightFunc", ["var", "fim", "coh", "no"]) == "var"
    # the same file with a step that sbts would ignore switched on is refused, naming the key
    text = re.sub(r"(?m)^mintpy.load.azOffFile\s*=\s*auto", "mintpy.load.azOffFile = ./offsets/*/az.off",
                  path.read_text())
    assert "mintpy.load.azOffFile = ./offsets/*/az.off" in text
    (tmp_path / "off.cfg").write_text(text)
    with pytest.raises(TemplateError, match=r"mintpy.load.azOffFile = .*not implemented"):
        Template.read(tmp_path / "off.cfg")


@pytest.mark.parametrize("line", [
    "mintpy.load.azOffFile = ../offsets/*/azimuth.off",
    "mintpy.troposphericDelay.operaDir = ./myOPERA",
    "mintpy.troposphericDelay.method = opera",
    "mintpy.compute.cluster = slurm",
    "mintpy.compute.config = slurm_cfg",
    "mintpy.load.autoPath = yes",
])
def test_unimplemented_steps_are_refused_not_ignored(line):
    key = line.split(" = ")[0]
    with pytest.raises(TemplateError, match=re.escape(key) + r" = .*not implemented in sbts"):
        Template.from_text(line)


@pytest.mark.parametrize("line", ["mintpy.solidEarthTides = no", "mintpy.solidEarthTides = auto",
                                  "mintpy.solidEarthTides = yes", "mintpy.ionosphericDelay.method = no", "mintpy.load.ionUnwFile = auto",
                                  "mintpy.troposphericDelay.operaDir = ./OPERA", "mintpy.load.frequency = A"])
def test_unimplemented_keys_left_unset_are_accepted_quietly(line):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownKeyWarning)
        Template.from_text(line)


def test_hdfeos5_keys_are_known():
    text = ("relative_orbit = 128\nbeam_mode = IW\nfirst_frame = 593\nlast_frame = 597\nbeam_swath = 1\n"
            "unavco.processing_dem = SRTM\nhdfeos5.unwrap_method = snaphu\nmission = S1\n"
            "mintpy.save.hdfEos5.relative_orbit = 128\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownKeyWarning)
        Template.from_text(text)


def test_renamed_mintpy_key_says_so():
    with pytest.warns(UnknownKeyWarning) as record:
        Template.from_text("mintpy.velocity.excludeDate = 20200101")
    (message,) = [str(w.message) for w in record]
    assert "mintpy.timeFunc.excludeDate" in message and "former name" in message
    assert "did you mean" not in message and "mintpy.network.excludeDate" not in message


@pytest.mark.parametrize("line", ["mintpy.load.azOffFile = ./offsets/*/azimuth.off"])
def test_sbts_run_refuses_unimplemented_step_in_one_line(tmp_path, line):
    from click.testing import CliRunner

    from sbts.cli.main import cli

    template = tmp_path / "Proj.txt"
    template.write_text(f"mintpy.load.unwFile = ./ifg/*.unw\n{line}\n")
    result = CliRunner().invoke(cli, ["run", str(template), "--work-dir", str(tmp_path / "work")])
    assert result.exit_code != 0
    errors = [x for x in result.output.splitlines() if x.startswith("Error")]
    assert len(errors) == 1 and line.split(" = ")[0] in errors[0] and "not implemented" in errors[0]
    assert "Traceback" not in result.output
