"""An ``inputs/`` already written by MintPy's load_data.py (as after prep_aria.py in MintPy's ARIA
tutorial): ``work/inputs/ifgramStack.h5`` and ``work/inputs/geometryGeo.h5`` in MintPy 1.6's layout,
and a template naming no file (smallbaselineApp.py goes on with the loaded files).

The layout is what MintPy's ``ifgramStackDict.write2hdf5`` / ``geometryDict.write2hdf5`` write:
``date`` (pairs × 2, ``|S8``), ``bperp`` float32, ``dropIfgram`` bool, ``unwrapPhase`` / ``coherence``
float32 and ``connectComponent`` int16 (pairs × rows × columns, chunked, with a MODIFICATION_TIME
attribute); geometry layers float32, ``waterMask``/``shadowMask`` bool; every root attribute a
string, including MintPy's own bookkeeping keys.  (tests/e2e/test_matrix.py checks that layout
against a stack MintPy's load_data.py writes itself.)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sbts.tests.e2e.formats._common import write_text

GEOCODED = True


def mintpy_attrs(synth, file_type: str) -> dict:
    """Root attributes as MintPy writes them: the metadata plus its bookkeeping keys, all strings."""
    a = dict(synth.attrs)
    a.update(FILE_TYPE=file_type, PROCESSOR="aria", PROJECT_NAME="mintpy", DATA_TYPE="float32", INTERLEAVE="BSQ",
             NoDataValue="0", mintpy_version="1.6.4")
    if file_type == "ifgramStack":
        a.update(UNIT="radian", REF_DATE=synth.date_list[0])
    return {k: str(v) for k, v in a.items()}


def write(root: Path, synth) -> Path:
    import h5py

    root = Path(root)
    inputs = root / "work" / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    m = synth.num_pair
    length, width = synth.shape
    chunks = (1, min(128, length), min(128, width))
    with h5py.File(inputs / "ifgramStack.h5", "w") as f:
        for name, data, dtype in (("unwrapPhase", synth.unwrap_phase, np.float32),
                                  ("coherence", synth.coherence, np.float32),
                                  ("connectComponent", synth.conn_comp, np.int16)):
            ds = f.create_dataset(name, data=np.asarray(data, dtype), chunks=chunks)
            ds.attrs["MODIFICATION_TIME"] = str(time.time())
        pairs = [[synth.date_list[i], synth.date_list[j]] for i, j in zip(synth.date1_index, synth.date2_index)]
        f.create_dataset("date", data=np.array(pairs, dtype=np.bytes_))
        f.create_dataset("bperp", data=np.asarray(synth.pair_bperp, np.float32))
        f.create_dataset("dropIfgram", data=np.ones(m, dtype=np.bool_))
        for k, v in mintpy_attrs(synth, "ifgramStack").items():
            f.attrs[k] = v
    with h5py.File(inputs / "geometryGeo.h5", "w") as f:
        for name, data in (("height", synth.height), ("incidenceAngle", synth.incidence_angle),
                           ("azimuthAngle", synth.azimuth_angle), ("slantRangeDistance", synth.slant_range_distance)):
            f.create_dataset(name, data=np.asarray(data, np.float32), chunks=True, compression="lzf")
        f.create_dataset("waterMask", data=np.asarray(synth.water_mask, np.bool_), chunks=True, compression="lzf")
        f.create_dataset("shadowMask", data=np.asarray(synth.shadow_mask, np.bool_), chunks=True, compression="lzf")
        for k, v in mintpy_attrs(synth, "geometry").items():
            f.attrs[k] = v
    return write_text(root / "work" / "mintpy.cfg",
                      "# mintpy: inputs/ was loaded by MintPy's load_data.py; no file pattern, MintPy's defaults\n")
