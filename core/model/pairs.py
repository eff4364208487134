"""The interferogram network: pairs of acquisition dates, their baselines and the keep flags."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sbts.core.errors import InputError
from sbts.core.model.dates import format_date, parse_date, years_since


def numeric_array(values, name: str) -> np.ndarray:
    """``values`` as float32, or an :class:`InputError` naming ``name`` when they are not numbers
    (e.g. a ``bperp`` dataset stored as text)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind not in "SUO":
            raise InputError(f"{name} holds {arr.dtype} values, not numbers")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            sample = arr.reshape(-1)[:3].tolist()
            raise InputError(f"{name} holds text that is not numbers (e.g. {str(sample)[:60]})") from None
    return arr.astype(np.float32)


@dataclass(frozen=True)
class Pairs:
    """An ordered list of interferograms ``date1_date2`` (date1 < date2).

    ``bperp`` is the perpendicular baseline of each pair (m); ``keep`` is MintPy's ``dropIfgram``
    (True = used).  The acquisition dates are the sorted union of the pair dates.
    """

    date1: tuple[_dt.date, ...]
    date2: tuple[_dt.date, ...]
    bperp: np.ndarray
    keep: np.ndarray

    def __post_init__(self) -> None:
        m = len(self.date1)
        if len(self.date2) != m:
            raise InputError("date1 and date2 lists differ in length")
        bperp = np.zeros(m, np.float32) if self.bperp is None else numeric_array(self.bperp, "bperp").reshape(-1)
        keep = np.ones(m, bool) if self.keep is None else np.asarray(self.keep, bool).reshape(-1)
        if bperp.size != m or keep.size != m:
            raise InputError(f"{m} pairs but {bperp.size} bperp and {keep.size} dropIfgram values")
        for d1, d2 in zip(self.date1, self.date2):
            if d2 <= d1:
                raise InputError(f"pair {format_date(d1)}_{format_date(d2)}: date2 must be after date1")
        seen = set()
        for name in self.date12:
            if name in seen:
                raise InputError(f"pair {name} appears twice")
            seen.add(name)
        object.__setattr__(self, "bperp", bperp)
        object.__setattr__(self, "keep", keep)

    # --------------------------------------------------------------- building
    @classmethod
    def from_date12(cls, date12: Sequence[str | tuple[str, str]], bperp: Sequence[float] | np.ndarray | None = None,
                    keep: Sequence[bool] | np.ndarray | None = None) -> Pairs:
        d1, d2 = [], []
        for item in date12:
            a, b = item.replace("-", "_").split("_") if isinstance(item, str) else item
            d1.append(parse_date(a))
            d2.append(parse_date(b))
        m = len(d1)
        return cls(tuple(d1), tuple(d2), np.zeros(m, np.float32) if bperp is None else np.asarray(bperp),
                   np.ones(m, bool) if keep is None else np.asarray(keep))

    @classmethod
    def from_indices(cls, dates: Sequence[_dt.date], i1: Sequence[int], i2: Sequence[int],
                     bperp_dates: Sequence[float] | None = None) -> Pairs:
        first, second = np.asarray(i1), np.asarray(i2)
        bperp = np.zeros(first.size, np.float32)
        if bperp_dates is not None:
            b = np.asarray(bperp_dates, np.float64)
            bperp = b[second] - b[first]
        return cls(tuple(dates[i] for i in first), tuple(dates[i] for i in second), bperp,
                   np.ones(first.size, bool))

    def sorted(self) -> tuple[Pairs, np.ndarray]:
        """Pairs sorted by (date1, date2), and the permutation applied."""
        order = np.array(sorted(range(len(self)), key=lambda k: (self.date1[k], self.date2[k])), dtype=int)
        return self.subset(order), order

    def subset(self, index: np.ndarray | Sequence[int]) -> Pairs:
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return Pairs(tuple(self.date1[i] for i in index), tuple(self.date2[i] for i in index),
                     self.bperp[index], self.keep[index])

    def with_keep(self, keep: np.ndarray) -> Pairs:
        return Pairs(self.date1, self.date2, self.bperp, np.asarray(keep, bool))

    def kept(self) -> Pairs:
        return self.subset(np.flatnonzero(self.keep))

    # --------------------------------------------------------------- views
    def __len__(self) -> int:
        return len(self.date1)

    @property
    def date12(self) -> list[str]:
        return [f"{format_date(a)}_{format_date(b)}" for a, b in zip(self.date1, self.date2)]

    @property
    def dates(self) -> tuple[_dt.date, ...]:
        return tuple(sorted(set(self.date1) | set(self.date2)))

    @property
    def date_strings(self) -> list[str]:
        return [format_date(d) for d in self.dates]

    def indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Index of date1 and date2 of every pair into :attr:`dates`."""
        lookup = {d: k for k, d in enumerate(self.dates)}
        return (np.array([lookup[d] for d in self.date1], dtype=np.int64),
                np.array([lookup[d] for d in self.date2], dtype=np.int64))

    def tbase(self) -> np.ndarray:
        """Years since the first date for every acquisition date."""
        return years_since(self.dates)

    def temporal_baseline_days(self) -> np.ndarray:
        return np.array([(b - a).days for a, b in zip(self.date1, self.date2)], dtype=np.int64)

    def date_bperp(self) -> np.ndarray:
        """Per-date perpendicular baseline (first date 0): least squares of the pair baselines on A."""
        i1, i2 = self.indices()
        n = len(self.dates)
        A = np.zeros((len(self), n))
        A[np.arange(len(self)), i1] = -1
        A[np.arange(len(self)), i2] = 1
        sol = np.linalg.lstsq(A[:, 1:], self.bperp.astype(np.float64), rcond=None)[0]
        return np.concatenate([[0.0], sol]).astype(np.float32)

    def encoded_dates(self) -> np.ndarray:
        """MintPy's ``date`` dataset of an ifgramStack: S8, shape (m, 2)."""
        return np.array([[format_date(a).encode(), format_date(b).encode()]
                         for a, b in zip(self.date1, self.date2)], dtype="S8").reshape(len(self), 2)

    def num_connected_components(self) -> int:
        """Number of connected pieces of the network (kept pairs only)."""
        i1, i2 = self.indices()
        n = len(self.dates)  # a date left without kept pair is a piece of its own
        parent = list(range(n))  # union-find over dates (a few hundred: no need for scipy.sparse)

        def root(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        pieces = n
        for a, b in zip(i1[self.keep].tolist(), i2[self.keep].tolist()):
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[ra] = rb
                pieces -= 1
        return pieces
