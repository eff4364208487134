"""The plan of ``sbts run``, built once per run: its steps in order, their options, the correction chain.

The steps that are not plugins come in MintPy's smallbaselineApp order (load_data, modify_network,
reference_point, quick_overview, invert_network, residual_RMS, reference_date, velocity, geocode).
The corrections come from the plugin registry: each declares its step name, its slot (the step it
runs after), what switches it on and its output suffix (see
:class:`~sbts.core.plugin.interfaces.Correction`), so the built-in ones land in MintPy's order and
a third-party one is a real step in the slot it declares.  The exporters that declare a step
(:attr:`~sbts.core.plugin.interfaces.Exporter.step`: MintPy's google_earth and hdfeos5) follow
geocode.  Nothing here names a plugin, a plugin's step or a plugin's file.

:class:`RunContext` holds what the steps share: the template, the work directory, the compute
options, the options of every step (parsed once: :meth:`RunContext.parse`, at the start of the
run, so a bad value fails before any work), the stack's metadata (read once, again after
load_data) and the time-series chain (resolved once from those).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbts.core.config.compute import ComputeOptions
from sbts.core.config.template import Template
from sbts.core.errors import InputError, TemplateError
from sbts.core.io.workdir import WorkDir, chain_names
from sbts.core.plugin.interfaces import Correction, workflow_step

logger = logging.getLogger(__name__)

EXTRA_KEY = "sbts.run.extraCorrections"
_UNSET = object()


@dataclass(frozen=True)
class Step:
    """One step of the plan.

    ``parse`` turns the template into the step's options (once per run); ``inputs``/``outputs``
    are the files update mode checks; ``stale`` is the step's own check of sources the workflow
    does not track as files (load_data: the processor's files) and ``off_reason`` says why a step
    that ``enabled`` turns off does not run.
    """

    name: str
    run: Callable[[RunContext], Sequence[Path]]
    inputs: Callable[[RunContext], Sequence[Path]]
    outputs: Callable[[RunContext], Sequence[Path]]
    parse: Callable[[RunContext], Any] = lambda ctx: None
    enabled: Callable[[RunContext], bool] = lambda ctx: True
    help: str = ""
    stale: Callable[[RunContext], str] = lambda ctx: ""
    off_reason: Callable[[RunContext], str] = lambda ctx: "disabled by the template"
    corrections: tuple[Correction, ...] = ()  # a correction step: the plugins that may run as it
    report: Callable[[RunContext], str] = lambda ctx: ""  # after it ran: what it updated or recomputed


@dataclass(frozen=True)
class ChainLink:
    """An enabled correction of this run: its step, the plugin, its parsed options and output suffix."""

    step: str
    correction: Correction
    options: Any
    suffix: str

    @property
    def stage(self) -> str:
        return self.correction.stage


# --------------------------------------------------------------------------- the context
class RunContext:
    """What the steps of one run share (see the module doc)."""

    def __init__(self, template: Template, work_dir: str | Path, base_dir: str | Path | None = None,
                 compute: ComputeOptions | None = None, registry: Any = None, force: bool = False) -> None:
        from sbts.core.plugin.registry import get_registry

        # ``sbts run --force``: steps whose own code keeps an up-to-date check (the load's source
        # signatures, a correction's stored settings) recompute too
        self.force = force
        self.template = template
        self.workdir = WorkDir(Path(work_dir))
        self.base_dir = Path(base_dir) if base_dir is not None else self.workdir.root
        self.compute = compute or ComputeOptions.from_template(template)
        self.registry = registry if registry is not None else get_registry()
        self.steps = build_steps(self.registry)
        self.options: dict[str, Any] = {}
        # what a step's own code decided that its report should say (its own up-to-date check
        # kept the outputs ...), by step name
        self.notes: dict[str, str] = {}
        self._metadata: Any = _UNSET
        self._links: list[ChainLink] | None = None

    # ---------------------------------------------------------------- folders (short names)
    @property
    def work_dir(self) -> Path:
        return self.workdir.root

    @property
    def inputs(self) -> Path:
        return self.workdir.inputs

    @property
    def stack_file(self) -> Path:
        return self.workdir.stack

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise InputError(f"unknown step {name!r}; steps: {', '.join(s.name for s in self.steps)}")

    def earlier(self, name: str) -> set[str]:
        """The steps before ``name`` in the plan."""
        names = [s.name for s in self.steps]
        return set(names[:names.index(name)]) if name in names else set(names)

    # ---------------------------------------------------------------- read once
    def metadata(self):
        """The stack's metadata (``None`` before it is loaded); read once, again after :meth:`refresh`."""
        if self._metadata is _UNSET:
            from sbts.core.io.h5 import read_metadata

            self._metadata = read_metadata(self.stack_file) if self.stack_file.exists() else None
        return self._metadata

    def refresh(self) -> None:
        """The stack was (re)written: read its metadata again and resolve the chain again."""
        self._metadata = _UNSET
        self._links = None
        for step in self.steps:  # which correction runs may depend on the stack (auto_envisat)
            if step.corrections:
                self.options.pop(step.name, None)

    @property
    def geocoded(self) -> bool:
        meta = self.metadata()
        return meta is not None and meta.grid.is_geocoded

    @property
    def latlon(self) -> bool:
        """Geocoded on latitude/longitude (not radar-coded, not a projected grid such as UTM)."""
        return self.geocoded and (self.metadata().grid.geo.epsg or 4326) == 4326

    # ---------------------------------------------------------------- options
    def parse(self, steps: Sequence[Step]) -> None:
        """Parse the options of ``steps`` (all of them before anything runs: a bad value fails now)."""
        for step in steps:
            self.opt(step.name)

    def opt(self, name: str) -> Any:
        """The parsed options of step ``name``."""
        if name not in self.options:
            try:
                self.options[name] = self.step(name).parse(self)
            except TemplateError as exc:
                if not getattr(exc, "step", None):
                    exc.step = name  # type: ignore[attr-defined]
                raise
        return self.options[name]

    # ---------------------------------------------------------------- the chain
    def links(self) -> list[ChainLink]:
        """The enabled corrections of this run (both stages), in plan order."""
        if self._links is None:
            self._links = _resolve_links(self)
        return self._links

    def link(self, step: str) -> ChainLink | None:
        return next((lk for lk in self.links() if lk.step == step), None)

    def chain(self) -> list[ChainLink]:
        """The enabled time-series corrections, in order."""
        return [lk for lk in self.links() if lk.stage == "timeseries"]

    def chain_files(self) -> list[Path]:
        """``timeseries.h5`` and the output of each enabled time-series correction, in order."""
        return self.workdir.chain([lk.suffix for lk in self.chain()])

    def timeseries_file(self, upto: str | None = None) -> Path:
        """The time series after the corrections before step ``upto`` (all if None)."""
        suffixes = []
        for lk in self.chain():
            if lk.step == upto:
                break
            suffixes.append(lk.suffix)
        return self.workdir.root / chain_names(suffixes)[-1]

    def correction_output(self, step: str) -> Path:
        links = self.chain()
        names = [lk.step for lk in links]
        return self.chain_files()[names.index(step) + 1]

    def product(self, key: str) -> Path | None:
        """A named product of an enabled correction (``residual`` → the DEM-error step's residual)."""
        for lk in self.links():
            name = (getattr(lk.correction, "products", None) or {}).get(key)
            if name:
                return self.workdir.file(name)
        return None


def _resolve_links(ctx: RunContext) -> list[ChainLink]:
    """The corrections the template switches on (each step: at most one), with options parsed once."""
    template, meta = ctx.template, ctx.metadata()
    extra = template.get_list(EXTRA_KEY)
    for name in extra:
        item = ctx.registry.get("correction", name)
        if item.stage != "timeseries":
            raise InputError(f"{EXTRA_KEY}: {name!r} is an interferogram-stack correction; "
                             "only time-series corrections can join the chain")
    links = []
    for step in ctx.steps:
        group = step.corrections
        if not group:
            continue
        on = []
        for c in group:
            switch = c.enabled(template, meta)
            if switch or (c.name in extra):
                on.append(c)
        if len(on) > 1:
            raise TemplateError(f"{', '.join(repr(c.name) for c in on)} are all switched on for step {step.name}; "
                                "choose one")
        if on:
            c = on[0]
            try:
                options = c.parse_options(template)
            except TemplateError as exc:
                exc.step = step.name  # type: ignore[attr-defined]
                raise
            links.append(ChainLink(step.name, c, options, c.output_suffix(options)))
    return links


# --------------------------------------------------------------------------- the steps
BUILTIN_STEPS = ("load_data", "modify_network", "reference_point", "quick_overview", "invert_network",
                 "residual_RMS", "reference_date", "velocity", "geocode")


def build_steps(registry: Any) -> list[Step]:
    """The steps of the plan: the built-in ones and the registry's corrections in their slots.

    A correction runs right after the step it names (``after``).  sbts's own corrections are placed
    first (they form MintPy's chain); a correction of another package then goes right after the
    step it names, before an sbts correction naming the same step, so a plugin naming ``deramp``
    reads deramp's output and the DEM-error step reads the plugin's.  Several naming one step keep
    the registry's order.  A correction naming no step of the plan is left out with a warning.
    """
    steps = {s.name: s for s in _builtin_steps()}
    order = list(BUILTIN_STEPS)
    groups: dict[str, list[Correction]] = {}
    for c in registry.corrections.values():
        groups.setdefault(workflow_step(c), []).append(c)
    anchors, foreign = {}, set()
    for name, group in groups.items():
        after = getattr(group[0], "after", "") or ""
        anchors[name] = after if isinstance(after, str) else ""
        if not all(type(c).__module__.startswith("sbts.") for c in group):
            foreign.add(name)
    for name in [n for n in groups if n in steps]:
        warnings.warn(f"correction(s) {', '.join(c.name for c in groups[name])} name the step {name!r}, which is "
                      "a step of sbts run already; left out", UserWarning, stacklevel=2)
    placed_after: dict[str, list[str]] = {}
    left: list[str] = []
    # the built-in corrections first (MintPy's chain), then those of other packages: each right
    # after the step it names, after the others of its kind naming the same step
    for phase in ([n for n in groups if n not in steps and n not in foreign],
                  [n for n in groups if n not in steps and n in foreign]):
        pending = list(phase)
        while pending:
            progress = False
            for name in list(pending):
                anchor = anchors[name]
                if anchor not in order:
                    continue
                at = order.index(anchor) + 1
                for earlier in placed_after.get(anchor, []):
                    if (earlier in foreign) == (name in foreign):
                        at = max(at, order.index(earlier) + 1)
                order.insert(at, name)
                placed_after.setdefault(anchor, []).append(name)
                steps[name] = _correction_step(name, groups[name])
                pending.remove(name)
                progress = True
            if not progress:
                break
        left += pending
    pending = left
    for name in pending:
        warnings.warn(f"correction step {name!r} ({', '.join(c.name for c in groups[name])}) names "
                      f"{anchors[name]!r} as the step it runs after, which is no step of sbts run; it is left out",
                      UserWarning, stacklevel=2)
    return [steps[n] for n in order] + _exporter_steps(registry, set(order))


def _exporter_steps(registry: Any, taken: set[str]) -> list[Step]:
    """The exporters that declare a step of ``sbts run`` (MintPy's google_earth, hdfeos5), after
    geocode in the registry's order; one whose step name is taken is left out with a warning."""
    from sbts.core.workflow.stepdefs import export_step

    out = []
    for exporter in registry.exporters.values():
        name = getattr(exporter, "step", "") or ""
        if not isinstance(name, str) or not name:
            continue
        if name in taken:
            warnings.warn(f"exporter {exporter.name!r} names the step {name!r}, which is a step of sbts run "
                          "already; left out", UserWarning, stacklevel=3)
            continue
        taken.add(name)
        out.append(export_step(exporter))
    return out


def _builtin_steps() -> list[Step]:
    from sbts.core.workflow import stepdefs as d

    return d.builtin_steps()


def _correction_step(name: str, group: list[Correction]) -> Step:
    """A step running whichever correction of ``group`` the template switches on."""
    stage = group[0].stage
    if len(group) == 1:
        c = group[0]
        text = f"{c.name}: {(c.summary or c.name).strip().splitlines()[0].rstrip('.')}"
    else:
        text = "one of " + ", ".join(c.name for c in group)

    def run(ctx: RunContext) -> list[Path]:
        from sbts.core.plugin.runners import run_correction

        link = ctx.link(name)
        # a correction with its own up-to-date check declares a "force" option: --force reaches it
        forced = {"force": True} if ctx.force and "force" in (getattr(link.correction, "options", {}) or {}) else {}
        if link.stage == "ifgram":
            result = run_correction(link.correction.name, ctx.template, ctx.work_dir, input_file=ctx.stack_file,
                                    max_memory=ctx.compute.max_memory, parsed_options=link.options,
                                    num_worker=ctx.compute.num_worker, cluster=ctx.compute.cluster, **forced)
        else:
            result = run_correction(link.correction.name, ctx.template, ctx.work_dir,
                                    input_file=ctx.timeseries_file(name), output_file=ctx.correction_output(name),
                                    max_memory=ctx.compute.max_memory, parsed_options=link.options,
                                    num_worker=ctx.compute.num_worker, cluster=ctx.compute.cluster, **forced)
        return [result.output, *result.extra_outputs]

    def parse(ctx: RunContext) -> Any:
        link = ctx.link(name)
        return None if link is None else {"correction": link.correction.name, "suffix": link.suffix,
                                          "options": link.options}

    def reads(ctx: RunContext) -> list[Path]:
        """What the correction of this run reads besides its input (geometry, masks)."""
        link = ctx.link(name)
        return [] if link is None else [Path(p) for p in link.correction.reads(link.options, ctx.work_dir)]

    if stage == "ifgram":
        inputs = lambda ctx: [ctx.stack_file, *reads(ctx)]  # noqa: E731
        outputs = lambda ctx: []  # noqa: E731 - it adds a dataset to its input
    else:
        inputs = lambda ctx: [ctx.timeseries_file(name), *reads(ctx)]  # noqa: E731
        outputs = lambda ctx: [ctx.correction_output(name)]  # noqa: E731
    return Step(name, run, inputs, outputs, parse=parse, enabled=lambda ctx: ctx.link(name) is not None,
                help=text, corrections=tuple(group))


def select(steps: list[Step], start: str | None, end: str | None, dostep: str | None) -> list[Step]:
    names = [s.name for s in steps]
    for value in (start, end, dostep):
        if value is not None and value not in names:
            raise InputError(f"unknown step {value!r}; steps: {', '.join(names)}")
    if dostep:
        return [steps[names.index(dostep)]]
    i0 = names.index(start) if start else 0
    i1 = names.index(end) if end else len(names) - 1
    if i1 < i0:
        raise InputError(f"--end {end} comes before --start {start}")
    return steps[i0:i1 + 1]


def step_names(registry: Any = None) -> tuple[str, ...]:
    """The names of the steps of ``sbts run`` with the installed plugins."""
    from sbts.core.plugin.registry import get_registry

    return tuple(s.name for s in build_steps(registry if registry is not None else get_registry()))


def describe_steps(registry: Any = None) -> str:
    from sbts.core.plugin.registry import get_registry

    steps = build_steps(registry if registry is not None else get_registry())
    return "\n".join(f"  {s.name:<21s} {s.help}" for s in steps)


__all__ = ["Step", "ChainLink", "RunContext", "build_steps", "select", "step_names", "describe_steps"]
