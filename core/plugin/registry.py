"""The plugin registry: loads every plugin and validates what it provides.

Where plugins come from (built-ins by module path, third parties through the ``sbts.plugins``
entry points) and the switches that turn them off (``SBTS_DISABLE_PLUGIN_AUTOLOAD``,
``SBTS_DISABLE_PLUGINS``) are in :mod:`sbts.core.plugin.discovery`.  Loading is isolated per
plugin: one that fails to import, implements a misspelled hook, raises inside a hook (even
``sys.exit()``: every ``BaseException`` but Ctrl-C) or returns something unusable is reported with
a :class:`PluginWarning` that names it, and the rest of sbts keeps working.  Two plugins may not
provide the same name for the same kind; the second is rejected with a warning (built-ins load
first, so they always keep their names).

Choosing a reader for ``mintpy.load.processor = auto`` is :func:`detect_reader`: every reader
says how sure it is (:class:`~sbts.core.plugin.interfaces.Confidence`) and the surest one wins.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from sbts.core.errors import InputError, PluginError, SbtsError
from sbts.core.plugin import hookspecs
from sbts.core.plugin.discovery import (
    PluginWarning,
    Source,
    builtin_sources,
    check_disabled_names,
    command_sources,
    disabled_names,
    is_disabled,
    third_party_sources,
    warn,
)
from sbts.core.plugin.interfaces import Confidence, Correction, Exporter, LoadRequest, Reader

logger = logging.getLogger(__name__)

__all__ = ["PluginWarning", "PluginInfo", "Registry", "build_registry", "get_registry", "set_registry",
           "validate", "detect_reader", "describe_exception"]

_NAME = re.compile(r"^[A-Za-z][\w.+\-]*$")
_SUFFIX = re.compile(r"^[A-Za-z0-9_+\-]{0,40}$")

_REQUIRED: dict[str, tuple[type, tuple[str, ...]]] = {
    "reader": (Reader, ("detect", "open_stack", "open_geometry")),
    "correction": (Correction, ("run",)),
    "exporter": (Exporter, ("export",)),
}
_HOOKS = {"reader": "sbts_readers", "correction": "sbts_corrections", "exporter": "sbts_exporters"}


@dataclass(frozen=True)
class PluginInfo:
    """One provided item, for ``sbts plugins``."""

    kind: str
    name: str
    plugin: str  # plugin name: the built-in's key in sbts.plugins.BUILTIN or the entry-point name
    package: str
    version: str
    summary: str


@dataclass
class Registry:
    """The loaded plugins: their items by kind, what each came from, and those that failed."""

    readers: dict[str, Reader] = field(default_factory=dict)
    corrections: dict[str, Correction] = field(default_factory=dict)
    exporters: dict[str, Exporter] = field(default_factory=dict)
    info: list[PluginInfo] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)  # plugin name -> reason
    disabled: list[str] = field(default_factory=list)  # plugins skipped by SBTS_DISABLE_PLUGINS
    manager: pluggy.PluginManager | None = None

    def of_kind(self, kind: str) -> dict[str, Any]:
        """The items of ``kind`` ("reader", "correction", "exporter") by name."""
        kinds: dict[str, dict[str, Any]] = {"reader": self.readers, "correction": self.corrections,
                                            "exporter": self.exporters}
        return kinds[kind]

    def get(self, kind: str, name: str) -> Any:
        """The item ``name`` of ``kind``; a :class:`PluginError` listing the others if absent."""
        items = self.of_kind(kind)
        if name not in items:
            known = ", ".join(sorted(items)) or "none installed"
            raise PluginError(f"no {kind} named {name!r} (available: {known}); see `sbts plugins`")
        return items[name]


def describe_exception(exc: BaseException, limit: int | None = 200) -> str:
    """``Type: message`` of an exception raised by plugin code, even if its ``str`` fails.

    ``limit`` cuts the message (a plugin's exception may carry megabytes); ``None`` keeps it whole.
    """
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile __str__
        text = "?"
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({text})"
    if limit is not None and len(text) > limit:
        text = text[:limit - 1] + "…"
    return f"{type(exc).__name__}: {text}"


# what plugin code may raise that sbts contains: everything but Ctrl-C.  SystemExit (sys.exit() in a
# plugin) would otherwise end every sbts command silently, with whatever exit status it chose
def _contained(exc: BaseException) -> bool:
    return not isinstance(exc, KeyboardInterrupt)


def new_manager() -> pluggy.PluginManager:
    """A pluggy manager that knows sbts's hooks."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


@dataclass
class _Loading:
    """State of one :func:`build_registry`: the registry being filled and each plugin's origin."""

    registry: Registry
    origin: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin -> (package, version)

    def fail(self, plugin: str, reason: str) -> None:
        self.registry.broken[plugin] = reason
        warn(plugin, reason)


def build_registry(entry_points: Iterable[Any] | None = None, extra_plugins: Iterable[tuple[str, Any]] = (),
                   builtins: bool = True) -> Registry:
    """Load every plugin and collect what it provides.

    Parameters
    ----------
    entry_points : iterable, optional
        Third-party entry points to use instead of the installed ones (tests); ``None`` reads the
        ``sbts.plugins`` group unless ``SBTS_DISABLE_PLUGIN_AUTOLOAD`` is set.
    extra_plugins : iterable of (name, module or object)
        Registered after the others (tests, programs embedding sbts).
    builtins : bool
        Load sbts's own plugins first (the default).

    Returns
    -------
    Registry
        With every usable item; the rest in ``broken`` (each also a :class:`PluginWarning`).
    """
    state = _Loading(Registry(manager=new_manager()))
    sources = _sources(state, entry_points, extra_plugins, builtins)
    loaded = _import_all(state, sources)
    _register_all(state, loaded)
    _collect_items(state)
    return state.registry


def _sources(state: _Loading, entry_points: Iterable[Any] | None, extra_plugins: Iterable[tuple[str, Any]],
             builtins: bool) -> list[tuple[str, Any]]:
    """Stage 1: every plugin to load, in order, minus those ``SBTS_DISABLE_PLUGINS`` names.

    Returns ``(name, Source or plugin object)`` pairs; extra plugins are objects already.
    """
    own = builtin_sources() if builtins else []
    third = third_party_sources(entry_points, own)
    names = disabled_names()
    out: list[tuple[str, Any]] = []
    for source in [*own, *third]:
        state.origin[source.name] = (source.package, source.version)
        if is_disabled(source.name, source.package, source.builtin, names):
            state.registry.disabled.append(source.name)
            continue
        out.append((source.name, source))
    for name, obj in extra_plugins:
        module = str(getattr(obj, "__module__", None) or getattr(obj, "__name__", ""))
        state.origin.setdefault(name, (module.split(".")[0] or "?", "?"))
        if name in names:
            state.registry.disabled.append(name)
            continue
        out.append((name, obj))
    commands = command_sources(include_disabled=True)
    check_disabled_names([*state.origin, *(c.name for c in commands)],
                         [*(s.package for s in third), *(c.package for c in commands)])
    return out


def _import_all(state: _Loading, sources: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Stage 2: import each plugin; one that fails (even by ``sys.exit()``) is reported and skipped."""
    loaded = []
    for name, source in sources:
        if not isinstance(source, Source):
            loaded.append((name, source))
            continue
        try:
            loaded.append((name, source.load()))
        except BaseException as exc:  # noqa: BLE001 - isolate every plugin, even one calling sys.exit()
            if not _contained(exc):
                raise
            state.fail(name, f"import of {source.value} failed: {describe_exception(exc)}")
    return loaded


def _register_all(state: _Loading, loaded: list[tuple[str, Any]]) -> None:
    """Stage 3: register with pluggy, which checks the hook names and signatures."""
    pm = state.registry.manager
    assert pm is not None  # stage 1 made it
    for name, obj in loaded:
        if pm.is_registered(obj):
            continue
        if pm.get_plugin(name) is not None:  # two packages declare a plugin of one name
            warn(name, f"another plugin named {name!r} is loaded already ({pm.get_plugin(name)!r:.80})")
            continue
        try:
            pm.register(obj, name=name)
            pm.check_pending()
        except BaseException as exc:  # noqa: BLE001 - pluggy validation errors, misspelled hooks
            if not _contained(exc):
                raise
            if pm.get_plugin(name) is not None:
                pm.unregister(name=name)
            reason = f"invalid hooks: {describe_exception(exc)}"
            if "sbts_commands" in reason:
                reason += "; commands are declared in the 'sbts.commands' entry-point group instead"
            state.fail(name, reason)


def _collect_items(state: _Loading) -> None:
    """Stage 4: call each kind's hook of every plugin (registration order: first wins a name)."""
    pm = state.registry.manager
    assert pm is not None  # stage 1 made it
    for kind, hook_name in _HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin_name = impl.plugin_name
            try:
                provided = impl.function() or []
            except BaseException as exc:  # noqa: BLE001
                if not _contained(exc):
                    raise
                state.fail(plugin_name, f"its {hook_name} hook failed: {describe_exception(exc)}")
                continue
            if not isinstance(provided, (list, tuple)):
                provided = [provided]
            package, version = state.origin.get(plugin_name, ("?", "?"))
            for item in provided:
                try:
                    _add_item(state, kind, item, plugin_name, package, version)
                except BaseException as exc:  # noqa: BLE001 - hostile attributes (a raising name/summary)
                    if not _contained(exc):
                        raise
                    state.fail(plugin_name, f"its {kind} could not be inspected: {describe_exception(exc)}")


def _add_item(state: _Loading, kind: str, item: Any, plugin_name: str, package: str, version: str) -> None:
    registry = state.registry
    problem = validate(kind, item)
    if problem:
        state.fail(plugin_name, problem)
        return
    items = registry.of_kind(kind)
    if item.name in items:
        owner = next((i.plugin for i in registry.info if i.kind == kind and i.name == item.name), "?")
        warn(plugin_name, f"{kind} name {item.name!r} is already provided by plugin {owner!r}")
        return
    summary = getattr(item, "summary", "") or ""
    lines = (summary if isinstance(summary, str) else "").strip().splitlines()
    items[item.name] = item
    registry.info.append(PluginInfo(kind, item.name, plugin_name, package, version, lines[0] if lines else ""))


def validate(kind: str, item: Any) -> str | None:
    """Why ``item`` cannot serve as a plugin of ``kind`` (``None`` if it can)."""
    _base, methods = _REQUIRED[kind]
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 64:
        return f"its {kind} {type(item).__name__} has no valid 'name' (a short identifier string)"
    missing = [m for m in methods if not callable(getattr(item, m, None))]
    if missing:
        return f"its {kind} {name!r} lacks method(s) {', '.join(missing)}"
    if kind == "correction" and getattr(item, "stage", "timeseries") not in ("timeseries", "ifgram"):
        return f"its correction {name!r} has stage {str(item.stage)[:40]!r}; expected 'timeseries' or 'ifgram'"
    if kind == "correction":  # the suffix becomes part of a file name: timeseries_<suffix>.h5
        suffix = getattr(item, "suffix", "")
        if not isinstance(suffix, str) or not _SUFFIX.match(suffix):
            return (f"its correction {name!r} has suffix {str(suffix)[:40]!r}; a suffix is part of a file name: "
                    "letters, digits, '_', '+', '-' only")
    if kind == "correction":  # -O KEY=VALUE is matched in lower case
        options = getattr(item, "options", {})
        if not isinstance(options, Mapping) or not all(isinstance(k, str) and k == k.lower() for k in options):
            return f"its correction {name!r} declares 'options' that are not a mapping of lower-case names"
    return None


# ------------------------------------------------------------------------- reader detection
def detect_reader(request: LoadRequest, registry: Registry) -> Reader:
    """The reader surest that the request's files are its format (``mintpy.load.processor = auto``).

    Every reader's ``detect`` says 0 (no), 1 (generic) or 2 (specific); the highest wins.  Two
    readers at the same highest level are refused, naming them: the files are ambiguous and the
    user chooses with ``mintpy.load.processor``.  A reader whose ``detect`` fails is named in a
    warning and counts as 0, so one broken plugin cannot stop a load.
    """
    from sbts.core.plugin.runners import guarded

    if not request.patterns:
        raise InputError("nothing to load: set mintpy.load.unwFile (and the other mintpy.load.*File keys) "
                         "in the template, or give --unw/--cor/... options")
    scores: dict[str, int] = {}
    for name, reader in registry.readers.items():
        try:
            with guarded(f"reader {name!r} detecting the format"):
                scores[name] = _confidence(reader.detect(request), name)
        except PluginError as exc:  # a bug or sys.exit() in detect: name the reader, try the others
            logger.warning("%s", exc)
        except SbtsError as exc:  # the reader looked and could not tell (unreadable header ...)
            logger.debug("reader %s: %s", name, exc)
    best = max(scores.values(), default=0)
    if best == 0:
        raise InputError("no reader recognises the files of mintpy.load.unwFile = "
                         f"{request.pattern('unwFile')!r}; set mintpy.load.processor "
                         f"(one of: {', '.join(sorted(registry.readers))})")
    winners = sorted(n for n, v in scores.items() if v == best)
    if len(winners) > 1:
        level = Confidence(best).name.lower()
        raise InputError(f"readers {', '.join(winners)} all recognise the files of mintpy.load.unwFile = "
                         f"{request.pattern('unwFile')!r} ({level} match): set mintpy.load.processor to the "
                         "processor that wrote them")
    others = {n: v for n, v in scores.items() if v and n != winners[0]}
    if others:
        logger.info("reader %s chosen (%s match) over %s", winners[0], Confidence(best).name.lower(),
                    ", ".join(f"{n} ({Confidence(v).name.lower()})" for n, v in sorted(others.items())))
    return registry.readers[winners[0]]


def _confidence(value: Any, name: str) -> int:
    """A reader's answer as 0, 1 or 2 (``False``/``True`` are 0/1)."""
    if isinstance(value, bool) or value is None:
        return int(bool(value))
    if isinstance(value, int) and value in (0, 1, 2):
        return int(value)
    raise PluginError(f"reader {name!r}: detect() returned {str(value)[:40]!r}; expected 0 (no), 1 (generic) "
                      "or 2 (specific)")


_REGISTRY: Registry | None = None


def get_registry(reload: bool = False) -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None or reload:
        _REGISTRY = build_registry()
    return _REGISTRY


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests, embedding programs)."""
    global _REGISTRY
    _REGISTRY = registry
