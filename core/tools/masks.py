"""``sbts mask``: a boolean mask file from thresholds and simple spatial rules (MintPy generate_mask).

Rules, applied in this order (each can only switch pixels off; True = keep):

1. valid data: the value is finite (and non-zero with ``nonzero``); for an ifgramStack ``nonzero``
   means the common connected-component mask (non-zero in every kept pair,
   :func:`sbts.core.steps.averages.connected_component_mask`) and thresholds apply to the temporal average
   of the dataset (default coherence);
2. thresholds ``vmin <= value <= vmax``;
3. ``vstd``: ``|v| > K·σ_v`` with σ_v the ``<dataset>Std`` dataset (significant velocities);
4. ``base``: pixels where another file's dataset equals ``base_value`` are off (e.g. waterMask = 0);
5. subset window (pixels or lat/lon): everything outside is off;
6. exclusion circles (pixel centre y, x and radius in pixels);
7. ``min_cluster``: connected groups of True pixels (4-connectivity) smaller than N pixels are off.

Steps 1–4 run block by block (memory bounded by ``max_memory``); 5–7 work on the boolean map,
1 byte per pixel.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import DataError, InputError
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import check_distinct
from sbts.core.io.products import IfgramStack, Product, write_map
from sbts.core.io.safenames import safe_part
from sbts.core.io.workdir import MASKS
from sbts.core.steps.averages import connected_component_mask, temporal_average, valid_in_all_kept
from sbts.core.tools.common import default_output_dir, main_dataset, map_reader, require_geo

logger = logging.getLogger(__name__)


def _default_output(product: Product, dataset: str | None, nonzero: bool) -> Path:
    folder = default_output_dir(product.path)
    if isinstance(product, IfgramStack) and nonzero and dataset in (None, "connectComponent"):
        return folder / MASKS["connComp"]
    name = dataset or main_dataset(product) if not isinstance(product, IfgramStack) else dataset or "coherence"
    if name == "temporalCoherence":
        return folder / MASKS["tempCoh"]
    return folder / f"mask_{safe_part(name, 'dataset name')}.h5"


def _window(shape: tuple[int, int], product: Product, subset_yx: Sequence[int] | None,
            subset_lalo: Sequence[float] | None) -> tuple[slice, slice] | None:
    if subset_yx is None and subset_lalo is None:
        return None
    length, width = shape
    if subset_lalo is not None:
        geo = require_geo(product.metadata, product.path)
        lat0, lat1, lon0, lon1 = subset_lalo
        rows = [math.floor((lat - geo.y_first) / geo.y_step) for lat in (lat0, lat1)]
        cols = [math.floor((lon - geo.x_first) / geo.x_step) for lon in (lon0, lon1)]
        y0, y1, x0, x1 = min(rows), max(rows) + 1, min(cols), max(cols) + 1
    else:
        y0, y1, x0, x1 = (int(v) for v in subset_yx)
    y0, y1 = sorted((max(0, y0), min(length, y1)))
    x0, x1 = sorted((max(0, x0), min(width, x1)))
    if y1 <= y0 or x1 <= x0:
        raise InputError(f"the subset window lies outside the {length}×{width} image of {product.path}")
    return slice(y0, y1), slice(x0, x1)


def remove_small_clusters(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Switch off connected groups of True pixels (4-connectivity) with fewer than ``min_size`` pixels."""
    from scipy import ndimage

    labels, num = ndimage.label(mask)
    if num == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False  # background
    out = mask & ~small[labels]
    logger.info("removed %d of %d clusters smaller than %d pixels", int(small.sum()), num, min_size)
    return out


def make_mask(path: str | os.PathLike, dataset: str | None = None, vmin: float | None = None,
              vmax: float | None = None, nonzero: bool = False, base: str | os.PathLike | None = None,
              base_dset: str | None = None, base_value: float = 0.0, subset_yx: Sequence[int] | None = None,
              subset_lalo: Sequence[float] | None = None, exclude_circles: Sequence[Sequence[float]] = (),
              min_cluster: int | None = None, vstd: float | None = None, max_memory: float = DEFAULT_MAX_MEMORY_GB) -> np.ndarray:
    """The boolean mask (True = keep) of ``path`` under the rules in the module docstring."""
    product = Product.open(path)
    shape = product.shape
    mask = np.ones(shape, bool)

    if isinstance(product, IfgramStack):
        if vstd is not None:
            raise InputError("--vstd needs a velocity file with a velocityStd dataset, not an ifgramStack")
        if nonzero:
            mask = (connected_component_mask(product, max_memory) if dataset in (None, "connectComponent")
                    else valid_in_all_kept(product, dataset, max_memory))
        name = dataset or "coherence"
        average = temporal_average(product, name, max_memory) if (vmin is not None or vmax is not None) else None

        def values(block: Block) -> np.ndarray | None:
            return None if average is None else average[block.slices]
    else:
        reader = map_reader(product, dataset)
        name = reader.dataset
        std_name = None
        if vstd is not None:
            std_name = f"{name}Std"
            if not product.has(std_name):
                raise InputError(f"{product.path}: --vstd needs dataset {std_name!r} "
                                 f"(has: {', '.join(product.datasets)})")

        def values(block: Block) -> np.ndarray:
            return reader(block)

    base_product = None
    if base is not None:
        base_product = Product.open(base)
        if base_product.shape != shape:
            raise InputError(f"{base}: grid {base_product.shape} differs from {product.path} {shape}")
        base_reader = map_reader(base_product, base_dset)

    blocks = plan_blocks(shape, 4 * 8.0, max_memory)
    for block in blocks:
        m = mask[block.slices]
        v = values(block)
        if v is not None:
            if v.dtype.kind == "f":
                m &= np.isfinite(v)
            with np.errstate(invalid="ignore"):
                if nonzero and not isinstance(product, IfgramStack):
                    m &= v != 0
                if vmin is not None:
                    m &= v >= vmin
                if vmax is not None:
                    m &= v <= vmax
                if vstd is not None:
                    std = product.read(std_name, block)
                    m &= np.abs(v) > vstd * std
        if base_product is not None:
            b = base_reader(block)
            m &= ~(np.isnan(b) if np.isnan(base_value) else (b == base_value))

    window = _window(shape, product, subset_yx, subset_lalo)
    if window is not None:
        inside = np.zeros(shape, bool)
        inside[window] = True
        mask &= inside
    if exclude_circles:
        yy, xx = np.ogrid[:shape[0], :shape[1]]
        for y, x, r in exclude_circles:
            mask &= (yy - y) ** 2 + (xx - x) ** 2 > r ** 2
    if min_cluster:
        mask = remove_small_clusters(mask, int(min_cluster))
    return mask


def generate_mask(path: str | os.PathLike, output: str | os.PathLike | None = None, dataset: str | None = None,
                  max_memory: float = DEFAULT_MAX_MEMORY_GB, **rules) -> Path:
    """Compute :func:`make_mask` and write it (dataset ``mask``, FILE_TYPE mask); returns the path."""
    product = Product.open(path)
    mask = make_mask(path, dataset=dataset, max_memory=max_memory, **rules)
    out = Path(output) if output is not None else _default_output(product, dataset, rules.get("nonzero", False))
    check_distinct(out, [path, rules.get("base")])
    if not mask.any():
        raise DataError(f"{path}: no pixel passes the mask rules; relax the thresholds")
    meta = product.metadata.for_product("mask", "1")
    described = {k: v for k, v in rules.items() if v not in (None, False, (), [])}
    write_map(out, meta, "mask", {"mask": mask}, unit="1",
              MASK_SOURCE=f"{Path(path).name}:{dataset or ''}", MASK_RULES=repr(described))
    logger.info("wrote %s (%d of %d pixels True)", out, int(mask.sum()), mask.size)
    return out


__all__ = ["make_mask", "generate_mask", "remove_small_clusters"]
