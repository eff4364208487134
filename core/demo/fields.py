"""Random fields and shapes the synthetic scene is drawn from, and the sensor constants.

Pure numpy building blocks shared by the component modules of the synthetic stack
(:mod:`sbts.core.demo.synthetic`): power-law screens (terrain roughness, land-cover patches,
turbulence), Gaussian bumps (hills, the subsidence bowl), irregular blobs (the lake, unwrapping-error
regions) and a binary dilation for keep-out margins.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter

SENTINEL1_WAVELENGTH = 0.05546576  # m, C band (5.405 GHz)
S1_RANGE_PIXEL = 2.329562  # m, single-look slant-range spacing (IW)
S1_AZIMUTH_PIXEL = 14.0  # m, single-look azimuth spacing (IW, approx.)
S1_RANGE_BANDWIDTH = 56.5e6  # Hz (IW2)
S1_ALTITUDE = 693_000.0  # m
SPEED_OF_LIGHT = 299_792_458.0
REPEAT_DAYS = 12
DAYS_PER_YEAR = 365.25
WGS84_A = 6_378_137.0
WGS84_B = 6_356_752.314245


def power_law_screen(rng: np.random.Generator, num: int, shape: tuple[int, int],
                     pixel_size: tuple[float, float], *, exponent: float = 8.0 / 3.0,
                     outer_scale: float = 20_000.0) -> np.ndarray:
    """(num, L, W) zero-mean, unit-std isotropic random fields with spectrum ∝ (k²+k0²)^(−β/2).

    Generated on a 2× padded grid and cropped, so the field is not periodic.
    ``pixel_size`` = (dy, dx) in metres; ``outer_scale`` in metres.
    """
    length, width = shape
    pl, pw = 2 * length, 2 * width
    ky = np.fft.fftfreq(pl, d=pixel_size[0])
    kx = np.fft.rfftfreq(pw, d=pixel_size[1])
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    amp = (k2 + (1.0 / outer_scale) ** 2) ** (-exponent / 4.0)
    amp[0, 0] = 0.0
    white = rng.standard_normal((num, pl, pw))
    field = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(pl, pw))[:, :length, :width]
    field -= field.mean(axis=(1, 2), keepdims=True)
    std = field.std(axis=(1, 2), keepdims=True)
    return field / np.where(std > 0, std, 1.0)


def gauss(dy, dx, sy, sx, angle=0.0):
    """Rotated anisotropic Gaussian of offsets (dy, dx) in metres."""
    ca, sa = np.cos(angle), np.sin(angle)
    u = ca * dx + sa * dy
    v = -sa * dx + ca * dy
    return np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


def blob(shape, cy, cx, ry, rx, rng, roughness=0.15):
    """Irregular elliptical region (bool) centred at (cy, cx) pixels."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    theta = np.arctan2(yy - cy, xx - cx)
    rr = np.hypot((yy - cy) / max(ry, 1e-9), (xx - cx) / max(rx, 1e-9))
    ph = rng.uniform(0, 2 * np.pi, 3)
    wobble = 1.0 + roughness * (np.sin(2 * theta + ph[0]) * 0.6 + np.sin(3 * theta + ph[1]) * 0.4
                                + np.sin(5 * theta + ph[2]) * 0.2)
    return rr <= wobble


def dilate(mask, radius):
    """Binary dilation by a square of half-size ``radius``."""
    if radius <= 0:
        return mask.copy()
    return maximum_filter(mask.astype(np.uint8), size=2 * radius + 1, mode="constant") > 0


def freeze(a):
    """Make an array read-only (the stack is shared by tests: they copy before modifying)."""
    if isinstance(a, np.ndarray):
        a.setflags(write=False)
    return a
