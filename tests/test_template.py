"""Templates: MintPy keys accepted as they are, auto → defaults, overrides, unknown keys."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbts.core.errors import TemplateError
from sbts.core.template import Template, UnknownKeyWarning, default_values, parse_text

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
