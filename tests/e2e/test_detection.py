"""``mintpy.load.processor = auto``: every processor's files are recognised as that processor's.

Each stack of the end-to-end matrix (``formats/<name>.py``, written the way the processor writes
it) is offered to every installed reader; the reader of its format must be the surest one, alone
(readers say 0 = no, 1 = generic, 2 = specific; a tie is refused).  The readers know nothing of
each other, so these checks are what keeps a new format from stealing another's files.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import formats
import pytest
from checks import writer

from sbts.core.config.template import Template
from sbts.core.errors import InputError
from sbts.core.plugin.interfaces import Confidence
from sbts.core.plugin.registry import detect_reader, get_registry
from sbts.core.steps.load import build_request

# fixture → the reader that must recognise it, and how sure it must be
EXPECTED = {
    "isce_tops": ("isce", Confidence.SPECIFIC), "isce_stripmap": ("isce", Confidence.SPECIFIC),
    "aria_vrt": ("aria", Confidence.SPECIFIC), "aria_gunw": ("aria", Confidence.SPECIFIC),
    "gamma_radar": ("gamma", Confidence.SPECIFIC), "gamma_geo": ("gamma", Confidence.SPECIFIC),
    "roipac": ("roipac", Confidence.SPECIFIC), "snap": ("snap", Confidence.SPECIFIC),
    "hyp3": ("hyp3", Confidence.SPECIFIC), "geotiff": ("geotiff", Confidence.GENERIC),
    "mintpy": ("mintpy", Confidence.SPECIFIC),
}


def test_every_format_has_an_expectation():
    assert set(EXPECTED) == set(formats.FORMATS)


def _auto_request(template: Path):
    """The template's file patterns with the processor left to detection (as a user who omits it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = Template.read(template).updated({"mintpy.load.processor": "auto"})
    if not t.get("mintpy.load.unwFile"):  # the MintPy-layout fixture: inputs/ already loaded
        t = t.updated({"mintpy.load.unwFile": str(template.parent / "inputs" / "ifgramStack.h5")})
    return build_request(t, template.parent)


@pytest.mark.parametrize("name", formats.FORMATS)
def test_each_format_is_detected_as_its_own(name, synth, tmp_path):
    template = Path(writer(name).write(tmp_path, synth))
    request = _auto_request(template)
    registry = get_registry()
    scores = {r: int(reader.detect(request)) for r, reader in registry.readers.items()}
    expected, level = EXPECTED[name]
    assert scores[expected] == level, scores
    assert all(v < level for r, v in scores.items() if r != expected), scores  # the others less sure
    assert detect_reader(request, registry).name == expected


@pytest.mark.shared
@pytest.mark.parametrize("folder, pattern, expected", [
    ("pyrate_envisat_sydney_small_test", "gamma/*_utm.unw", "gamma"),
    ("pyrate_envisat_sydney_small_test", "roipac/geo_*.unw", "roipac"),
    ("pyrate_s1_mexico_cropA_gamma", "geotiffs/*_unw.tif", "geotiff"),
])
def test_real_products_are_detected_as_their_own(shared_data, folder, pattern, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = Template({"mintpy.load.unwFile": str(shared_data / folder / pattern)})
    assert detect_reader(build_request(t, shared_data), get_registry()).name == expected


def _gamma_folder_with_rsc(folder: Path, rsc_processor: str | None) -> Path:
    """A GAMMA interferogram (raw bytes + GAMMA par files) that also has a ``.rsc`` sidecar."""
    folder.mkdir(parents=True)
    (folder / "20200101-20200113.unw").write_bytes(b"\0" * 4 * 6 * 8)
    (folder / "20200101.mli.par").write_text("Gamma Interferometric SAR Processor (ISP) - Image Parameter File\n")
    rsc = "WIDTH 8\nFILE_LENGTH 6\n" + (f"PROCESSOR {rsc_processor}\n" if rsc_processor else "")
    (folder / "20200101-20200113.unw.rsc").write_text(rsc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_request(Template({"mintpy.load.unwFile": str(folder / "*.unw")}), folder)


def test_a_tie_names_the_readers_and_the_key_to_set(tmp_path):
    """GAMMA par files and a ROI_PAC resource file that says nothing of who wrote the data: both
    readers are sure, and guessing would read the bytes with the wrong layout."""
    request = _gamma_folder_with_rsc(tmp_path / "mixed", None)
    with pytest.raises(InputError, match=r"readers gamma, roipac all recognise the files of mintpy.load.unwFile = "
                       r".*\(specific match\): set mintpy.load.processor to the processor that wrote them"):
        detect_reader(request, get_registry())


def test_an_rsc_written_for_another_processor_is_only_generic(tmp_path):
    """MintPy's prep_gamma.py writes ``.rsc`` files beside GAMMA data (``PROCESSOR gamma``): the
    ROI_PAC reader reads that in its own file and steps back; GAMMA's reader wins."""
    request = _gamma_folder_with_rsc(tmp_path / "prepped", "gamma")
    registry = get_registry()
    assert registry.readers["roipac"].detect(request) == Confidence.GENERIC
    assert detect_reader(request, registry).name == "gamma"
