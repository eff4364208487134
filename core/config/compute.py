"""Compute resources of a run: memory budget per block, worker processes, cluster.

One place for the defaults and the parsing of ``mintpy.compute.*`` (and their command-line
spellings ``--max-memory``, ``--num-worker``, ``--cluster``), so every command and every step of
``sbts run`` agrees on them.  A library function called without a budget uses
:data:`DEFAULT_MAX_MEMORY_GB`, the value ``mintpy.compute.maxMemory = auto`` resolves to (MintPy's
4 GB): a budget is an upper bound on the memory a block may use, not a target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sbts.core.errors import TemplateError, shown

DEFAULT_MAX_MEMORY_GB = 4.0
"""GB one block may use when nobody says otherwise (``mintpy.compute.maxMemory = auto``)."""

MEMORY_KEY = "mintpy.compute.maxMemory"
WORKER_KEY = "mintpy.compute.numWorker"
CLUSTER_KEY = "mintpy.compute.cluster"


@dataclass(frozen=True)
class ComputeOptions:
    """How much memory and how many processes a step may use.

    Parameters
    ----------
    max_memory : float
        GB per block (``mintpy.compute.maxMemory`` / ``--max-memory``).
    num_worker : int
        Processes (``mintpy.compute.numWorker`` / ``--num-worker``).
    cluster : str, optional
        ``"local"`` or a dask scheduler address (``mintpy.compute.cluster`` / ``--cluster``); None:
        this process and its pool.
    """

    max_memory: float = DEFAULT_MAX_MEMORY_GB  # GB per block
    num_worker: int = 1
    cluster: str | None = None  # None: this process (and its pool); "local" or a dask scheduler address

    @classmethod
    def from_template(cls, template: Any = None, max_memory: float | None = None, num_worker: str | int | None = None,
                      cluster: str | None = None) -> ComputeOptions:
        """The template's ``mintpy.compute.*`` with command-line values (not ``None``) winning."""
        return cls(max_memory=resolve_memory(max_memory, template),
                   num_worker=resolve_workers(num_worker, template),
                   cluster=cluster if cluster is not None else (template.get(CLUSTER_KEY) if template is not None
                                                                else None))


def resolve_memory(value: float | None, template: Any = None) -> float:
    """GB per block from ``value`` (``--max-memory``), else ``mintpy.compute.maxMemory`` (checked > 0 by
    the template getter), else :data:`DEFAULT_MAX_MEMORY_GB`."""
    if value is not None:
        return float(value)
    memory = template.get_float(MEMORY_KEY) if template is not None else None
    return DEFAULT_MAX_MEMORY_GB if memory is None else memory


def resolve_workers(value: str | int | None, template: Any = None) -> int:
    """Number of processes from ``value`` (``--num-worker``) or ``mintpy.compute.numWorker``:
    a whole number ≥ 1, ``all`` (every core) or ``N%`` of the cores (1-100)."""
    where = "--num-worker" if value is not None else WORKER_KEY
    if value is None:
        value = (template.get(WORKER_KEY) if template is not None else None) or "1"
    cores = os.cpu_count() or 1
    text = str(value).strip()
    bad = TemplateError(f"{where} = {shown(text)}: use a whole number of processes ≥ 1, 'all' or 'N%' (1-100)")
    if text.lower() == "all":
        return cores
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 < percent <= 100:
                raise bad
            return max(1, int(cores * percent / 100))
        number = float(text)
    except ValueError:
        raise bad from None
    if number != int(number) or number < 1:
        raise bad
    return int(number)


__all__ = ["ComputeOptions", "DEFAULT_MAX_MEMORY_GB", "resolve_memory", "resolve_workers"]
