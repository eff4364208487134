"""GAMMA, radar-coded: the layout MintPy's prep_gamma.py and its GAMMA auto paths expect.

::

    PROCESS/DONE/IFG_<d1>-<d2>/diff_filt_<d1>-<d2>_8rlks.unw   big-endian float32, radar grid
                              filt_<d1>-<d2>_8rlks.cor         big-endian float32
                              <d1>-<d2>_8rlks.off              ISP offset par (interferogram size, looks)
                              <d1>-<d2>_8rlks.base_perp        `base_perp` table (bperp per line/range)
                              <d>_8rlks.mli.par (both dates)   ISP image par (S1 IW, orbit geometry)
                              <d>_8rlks.mli.corner             corner lat/lon (SLC_corners, 3rd-6th lines)
    PROCESS/SIM/sim_<ref12>/sim_<ref12>_8rlks.rdc.dem          radar-coded DEM + sim_<ref12>_8rlks.diff_par
                            sim_<ref12>_8rlks.UTM_TO_RDC       lookup table: fcomplex big-endian on a lat/lon
                                                               grid, real = range sample, imag = azimuth line
                            sim_<ref12>_8rlks.utm.dem(.par)    the DEM on that grid and its DEM/MAP par
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbts.tests.e2e.formats._common import SPEED_OF_LIGHT, RadarFrame, pairs, write_template, write_text

GEOCODED = False
LOOKS = "_8rlks"


def mli_par(synth, date: str, frame: RadarFrame | None = None, size: tuple[int, int] | None = None) -> str:
    """An ISP image par of one acquisition (the fields GAMMA writes for Sentinel-1 IW MLIs)."""
    a = synth.attrs
    length, width = size or synth.shape
    re_ = float(a["EARTH_RADIUS"])
    near = float(a["STARTING_RANGE"])
    dr = float(a["RANGE_PIXEL_SIZE"])
    lat_c = float(np.mean(synth.lat_axis)) if frame is None else frame.lat_c
    lon_c = float(np.mean(synth.lon_axis)) if frame is None else frame.lon_c
    t = float(a["CENTER_LINE_UTC"])
    return f"""Gamma Interferometric SAR Processor (ISP) - Image Parameter File

title:     s1a-iw1-slc-vv-{date}t000000-{date}t000025-000000-000000-004.tiff S1A-IW-IW1-VV
sensor:    S1A IW IW1 VV
date:      {date[:4]} {date[4:6]} {date[6:]}
start_time:              {t - 9.3:.6f}   s
center_time:             {t:.6f}   s
end_time:                {t + 9.3:.6f}   s
azimuth_line_time:     4.1111126e-03   s
line_header_size:                  0
range_samples:                  {width}
azimuth_lines:                  {length}
range_looks:                       {a["RLOOKS"]}
azimuth_looks:                     {a["ALOOKS"]}
image_format:               FLOAT
image_geometry:             SLANT_RANGE
range_scale_factor:     1.0000000e+00
azimuth_scale_factor:   1.0000000e+00
center_latitude:          {lat_c:.7f}   degrees
center_longitude:         {lon_c:.7f}   degrees
heading:                 {float(a["HEADING"]):.7f}   degrees
range_pixel_spacing:       {dr:.6f}   m
azimuth_pixel_spacing:     {float(a["AZIMUTH_PIXEL_SIZE"]):.6f}   m
near_range_slc:           {near:.4f}  m
center_range_slc:         {near + dr * (width - 1) / 2:.4f}  m
far_range_slc:            {near + dr * (width - 1):.4f}  m
first_slant_range_polynomial:        0.00000      0.00000  0.00000e+00  0.00000e+00  0.00000e+00  0.00000e+00  s m 1 m^-1 m^-2 m^-3
center_slant_range_polynomial:       0.00000      0.00000  0.00000e+00  0.00000e+00  0.00000e+00  0.00000e+00  s m 1 m^-1 m^-2 m^-3
last_slant_range_polynomial:         0.00000      0.00000  0.00000e+00  0.00000e+00  0.00000e+00  0.00000e+00  s m 1 m^-1 m^-2 m^-3
incidence_angle:             {float(np.median(synth.incidence_angle)):.4f}   degrees
azimuth_deskew:          ON
azimuth_angle:               90.0000   degrees
radar_frequency:        {SPEED_OF_LIGHT / float(a["WAVELENGTH"]):.7e}  Hz
adc_sampling_rate:      6.4345241e+07  Hz
chirp_bandwidth:        5.6500000e+07  Hz
prf:                      486.4863103  Hz
azimuth_proc_bandwidth:     327.00000  Hz
doppler_polynomial:         28.89379 -1.70466e-04  1.00457e-09  0.00000e+00  Hz     Hz/m     Hz/m^2     Hz/m^3
doppler_poly_dot:        0.00000e+00  0.00000e+00  0.00000e+00  0.00000e+00  Hz/s   Hz/s/m   Hz/s/m^2   Hz/s/m^3
doppler_poly_ddot:       0.00000e+00  0.00000e+00  0.00000e+00  0.00000e+00  Hz/s^2 Hz/s^2/m Hz/s^2/m^2 Hz/s^2/m^3
receiver_gain:                 0.0000  dB
calibration_gain:              0.0000  dB
sar_to_earth_center:             {re_ + float(a["HEIGHT"]):.4f}   m
earth_radius_below_sensor:       {re_:.4f}   m
earth_semi_major_axis:           6378137.0000   m
earth_semi_minor_axis:           6356752.3141   m
"""


def off_par(synth, d1: str, d2: str, size: tuple[int, int] | None = None) -> str:
    """ISP offset par of an interferogram (``create_offset`` writes it; the size is the interferogram's)."""
    a = synth.attrs
    length, width = size or synth.shape
    rl, al = int(a["RLOOKS"]), int(a["ALOOKS"])
    return f"""Gamma Interferometric SAR Processor (ISP) - Offset Parameters

title:  {d1}-{d2}
initial_range_offset:                    0
initial_azimuth_offset:                  0
slc1_starting_range_pixel:               0
number_of_slc_range_pixels:           {width * rl}
offset_estimation_starting_range:        0
offset_estimation_ending_range:          0
offset_estimation_range_samples:        32
offset_estimation_range_spacing:         0
offset_estimation_starting_azimuth:      0
offset_estimation_ending_azimuth:        0
offset_estimation_azimuth_samples:      32
offset_estimation_azimuth_spacing:       0
offset_estimation_window_width:         64
offset_estimation_window_height:        64
offset_estimation_threshold:       0.15000
range_offset_polynomial:         0.00000   0.0000e+00   0.0000e+00   0.0000e+00   0.0000e+00   0.0000e+00
azimuth_offset_polynomial:       0.00000   0.0000e+00   0.0000e+00   0.0000e+00   0.0000e+00   0.0000e+00
slc1_starting_azimuth_line:              0
interferogram_azimuth_lines:         {length}
interferogram_width:                 {width}
first_nonzero_range_pixel:               0
number_of_nonzero_range_pixels:       {width}
interferogram_range_looks:               {rl}
interferogram_azimuth_looks:             {al}
interferogram_range_pixel_spacing:   {float(a["RANGE_PIXEL_SIZE"]):.6f}   m
interferogram_azimuth_pixel_spacing: {float(a["AZIMUTH_PIXEL_SIZE"]):.6f}   m
resampled_range_pixel_spacing:        0.000000   m
resampled_azimuth_pixel_spacing:      0.000000   m
resampled_starting_ground_range:      0.000000   m
resampled_number_of_range_pixels:        0
"""


def diff_par(synth, title: str) -> str:
    """DIFF par of the simulation (``create_diff_par``): the radar grid of the simulated heights."""
    length, width = synth.shape
    return f"""Gamma Differential Interferometry (DIFF) Parameter File

title: {title}
range_offset_polynomial:   0.00000   0.0000e+00   0.0000e+00   0.0000e+00   0.0000e+00   0.0000e+00
azimuth_offset_polynomial: 0.00000   0.0000e+00   0.0000e+00   0.0000e+00   0.0000e+00   0.0000e+00
range_samp_1:                 {width}
az_samp_1:                    {length}
first_nonzero_range_pixel_1:   0
number_of_nonzero_range_pixels_1:   {width}
range_samp_2:                 {width}
az_samp_2:                    {length}
"""


def dem_par(grid: dict, title: str = "dem") -> str:
    """DEM/MAP par of an EQA (lat/lon) grid; ``corner_lat/lon`` = the grid's upper-left corner."""
    return f"""Gamma DIFF&GEO DEM/MAP parameter file
title: {title}
DEM_projection:     EQA
data_format:        REAL*4
DEM_hgt_offset:          0.00000
DEM_scale:               1.00000
width:              {grid["width"]}
nlines:             {grid["length"]}
corner_lat:     {grid["y_first"]:.16f}  decimal degrees
corner_lon:     {grid["x_first"]:.16f}  decimal degrees
post_lat:   {grid["y_step"]:.21f}  decimal degrees
post_lon:    {grid["x_step"]:.21f}  decimal degrees

ellipsoid_name: WGS 84
ellipsoid_ra:        6378137.000   m
ellipsoid_reciprocal_flattening:  298.2572236

datum_name: WGS 84
datum_shift_dx:              0.000   m
datum_shift_dy:              0.000   m
datum_shift_dz:              0.000   m
datum_scale_m:         0.00000e+00
datum_rotation_alpha:  0.00000e+00   arc-sec
datum_rotation_beta:   0.00000e+00   arc-sec
datum_rotation_gamma:  0.00000e+00   arc-sec
datum_country_list: WGS 84
"""


def base_perp(synth, k: int, size: tuple[int, int] | None = None) -> str:
    """A ``base_perp`` table for pair ``k``: bperp over a 5 × 5 grid of (line, range) points.

    bperp varies by ±0.5 % across range, symmetrically, so the mean of all rows (sbts) and of the
    first and last rows (MintPy) are both the pair's baseline."""
    length, width = size or synth.shape
    b = float(synth.pair_bperp[k])
    rows = []
    for line in np.linspace(0, length - 1, 5).astype(int):
        for j, rg in enumerate(np.linspace(0, width - 1, 5).astype(int)):
            bp = b * (1.0 + 0.005 * (j - 2) / 2)
            look = 34.0 + 6.0 * j / 4
            rows.append(f"{line:6d} {rg:6d}     0.0000 {bp * 1.1:10.4f} {bp * 0.12:10.4f}    {look:.6f}"
                        f" {bp * 0.7:10.4f} {bp:11.4f} {abs(bp) * 1.2:10.4f}")
    return ("*** Calculate baseline components perpendicular and parallel to look vector ***\n"
            "*** Copyright 2005, Gamma Remote Sensing, v3.5 10-May-2005 clw/uw ***\n\n"
            f"interferogram lines: {length}   range samples/line: {width}\n\n"
            "  line   range      B_t       B_c        B_n     look angle      bpara       bperp       blen\n"
            + "*" * 96 + "\n" + "\n".join(rows) + "\n\nuser time (s):         0.000\n")


def corner_file(frame: RadarFrame) -> str:
    """``<mli>.corner``: lat lon of the four corners (MintPy's prep_gamma reads it)."""
    return "".join(f"{la:.6f} {lo:.6f}\n" for la, lo in frame.corners())


def be(path: Path, data: np.ndarray, dtype: str = ">f4") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.asarray(data).astype(dtype).tofile(path)


def write_pairs(root: Path, synth, frame: RadarFrame, unw_name, cor_name, folder_name,
                size: tuple[int, int] | None = None) -> None:
    """The interferogram folders: unw, cor, off, base_perp, image pars and corner files."""
    for d1, d2, k in pairs(synth):
        folder = root / "PROCESS" / "DONE" / folder_name(d1, d2)
        be(folder / unw_name(d1, d2), synth.unwrap_phase[k])
        be(folder / cor_name(d1, d2), synth.coherence[k])
        write_text(folder / f"{d1}-{d2}{LOOKS}.off", off_par(synth, d1, d2, size))
        write_text(folder / f"{d1}-{d2}{LOOKS}.base_perp", base_perp(synth, k, size))
        for d in (d1, d2):
            write_text(folder / f"{d}{LOOKS}.mli.par", mli_par(synth, d, frame, size))
            write_text(folder / f"{d}{LOOKS}.mli.corner", corner_file(frame))


def write(root: Path, synth) -> Path:
    root = Path(root)
    frame = RadarFrame.of(synth)
    write_pairs(root, synth, frame, lambda d1, d2: f"diff_filt_{d1}-{d2}{LOOKS}.unw",
                lambda d1, d2: f"filt_{d1}-{d2}{LOOKS}.cor", lambda d1, d2: f"IFG_{d1}-{d2}")
    d1, d2, _ = pairs(synth)[0]
    ref12 = f"{d1}-{d2}"
    sim = root / "PROCESS" / "SIM" / f"sim_{ref12}"
    base = f"sim_{ref12}{LOOKS}"
    be(sim / f"{base}.rdc.dem", synth.height)
    write_text(sim / f"{base}.diff_par", diff_par(synth, base))
    grid = frame.geo_grid()
    line, sample = frame.lookup(grid)
    lut = np.empty((grid["length"], grid["width"], 2), ">f4")
    lut[..., 0], lut[..., 1] = sample, line  # fcomplex: real = range sample, imaginary = azimuth line
    be(sim / f"{base}.UTM_TO_RDC", lut)
    rows, cols, inside = frame.nearest_radar_pixel(grid)
    be(sim / f"{base}.utm.dem", np.where(inside, synth.height[rows, cols], 0.0))
    write_text(sim / f"{base}.utm.dem.par", dem_par(grid, base))
    return write_template(root, "gamma_radar", {
        "mintpy.load.processor": "gamma",
        "mintpy.load.unwFile": "../PROCESS/DONE/IFG_*/diff_filt_*_8rlks.unw",
        "mintpy.load.corFile": "../PROCESS/DONE/IFG_*/filt_*_8rlks.cor",
        "mintpy.load.demFile": "../PROCESS/SIM/sim_*/sim_*_8rlks.rdc.dem",
        "mintpy.load.lookupYFile": "../PROCESS/SIM/sim_*/sim_*_8rlks.UTM_TO_RDC",
        "mintpy.load.lookupXFile": "../PROCESS/SIM/sim_*/sim_*_8rlks.UTM_TO_RDC",
    })
