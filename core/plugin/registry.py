"""The plugin registry: discovers plugins through entry points and validates what they provide.

Built-in and third-party plugins are found the same way, through the ``sbts.plugins`` entry-point
group.  Loading is isolated per plugin: one that fails to import, implements a misspelled hook,
raises inside a hook or returns something unusable is reported with a :class:`PluginWarning` that
names it, and the rest of sbts keeps working.  Two plugins may not provide the same name for the
same kind; the second is rejected with a warning (built-ins load first).
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any

import pluggy

from sbts.core.plugin import hookspecs
from sbts.core.errors import PluginError
from sbts.core.plugin.interfaces import Correction, Exporter, Reader

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sbts.plugins"
_NAME = re.compile(r"^[A-Za-z][\w.+\-]*$")
_SUFFIX = re.compile(r"^[A-Za-z0-9_+\-]{0,40}$")

_REQUIRED: dict[str, tuple[type, tuple[str, ...]]] = {
    "reader": (Reader, ("detect", "open_stack", "open_geometry")),
    "correction": (Correction, ("run",)),
    "exporter": (Exporter, ("export",)),
}
_HOOKS = {"reader": "sbts_readers", "correction": "sbts_corrections", "exporter": "sbts_exporters"}


class PluginWarning(UserWarning):
    """A plugin could not be used; sbts goes on without it."""


@dataclass(frozen=True)
class PluginInfo:
    """One provided item, for ``sbts plugins``."""

    kind: str
    name: str
    plugin: str  # entry-point name
    package: str
    version: str
    summary: str


@dataclass
class Registry:
    readers: dict[str, Reader] = field(default_factory=dict)
    corrections: dict[str, Correction] = field(default_factory=dict)
    exporters: dict[str, Exporter] = field(default_factory=dict)
    info: list[PluginInfo] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)  # plugin name -> reason
    manager: pluggy.PluginManager | None = None

    def of_kind(self, kind: str) -> dict[str, Any]:
        kinds: dict[str, dict[str, Any]] = {"reader": self.readers, "correction": self.corrections,
                                            "exporter": self.exporters}
        return kinds[kind]

    def get(self, kind: str, name: str) -> Any:
        items = self.of_kind(kind)
        if name not in items:
            known = ", ".join(sorted(items)) or "none installed"
            raise PluginError(f"no {kind} named {name!r} (available: {known}); see `sbts plugins`")
        return items[name]

    def commands(self) -> list[Any]:
        if self.manager is None:
            return []
        found: list[Any] = []
        for impl in self.manager.hook.sbts_commands.get_hookimpls():
            try:
                commands: Any = impl.function()
                found.extend(commands or [])
            except BaseException as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
                if not _contained(exc):
                    raise
                _warn(impl.plugin_name, f"its sbts_commands hook failed: {_why(exc)}")
        return found


def _warn(plugin: str, reason: str) -> None:
    warnings.warn(f"sbts plugin {plugin!r} skipped: {reason}", PluginWarning, stacklevel=3)


def _why(exc: BaseException) -> str:
    """``Type: message`` of an exception raised by plugin code, short, even if its ``str`` fails."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile __str__
        text = "?"
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({text})"
    text = text if len(text) <= 200 else text[:199] + "…"
    return f"{type(exc).__name__}: {text}"


# what plugin code may raise that sbts contains: everything but Ctrl-C.  SystemExit (sys.exit() in a
# plugin) would otherwise end every sbts command silently, with whatever exit status it chose
def _contained(exc: BaseException) -> bool:
    return not isinstance(exc, KeyboardInterrupt)


@contextlib.contextmanager
def plugin_call(what: str):
    """Run plugin code (``what`` names it: "reader 'isce'"): a ``sys.exit()`` or other
    ``BaseException`` but Ctrl-C becomes a :class:`PluginError` naming the plugin; ordinary
    exceptions pass through to the caller, which turns them into its own message."""
    try:
        yield
    except (Exception, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit, GeneratorExit ... from plugin code
        raise PluginError(f"{what} stopped: {_why(exc)}; a plugin must raise an exception, not exit") from None


def new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points() -> list[importlib_metadata.EntryPoint]:
    eps = list(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP))
    # built-ins first, so a third-party plugin cannot shadow a built-in name; then by name
    def key(ep: importlib_metadata.EntryPoint) -> tuple[int, str]:
        dist = getattr(ep, "dist", None)
        return (0 if dist is not None and dist.name == "sbts" else 1, ep.name)
    seen, unique = set(), []
    for ep in sorted(eps, key=key):
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        unique.append(ep)
    return unique


def build_registry(entry_points: Iterable[Any] | None = None, extra_plugins: Iterable[tuple[str, Any]] = ()) -> Registry:
    """Load every plugin and collect what it provides.

    ``extra_plugins`` are ``(name, module_or_object)`` pairs registered after the entry points
    (used by tests and by programs embedding sbts).
    """
    pm = new_manager()
    registry = Registry(manager=pm)
    dists: dict[str, tuple[str, str]] = {}
    eps = _entry_points() if entry_points is None else list(entry_points)
    candidates: list[tuple[str, Any]] = []
    for ep in eps:
        dist = getattr(ep, "dist", None)
        dists[ep.name] = (dist.name if dist else "?", dist.version if dist else "?")
        try:
            candidates.append((ep.name, ep.load()))
        except BaseException as exc:  # noqa: BLE001 - isolate every plugin, even one calling sys.exit()
            if not _contained(exc):
                raise
            registry.broken[ep.name] = f"import of {ep.value} failed: {_why(exc)}"
            _warn(ep.name, registry.broken[ep.name])
    for name, obj in extra_plugins:
        module = str(getattr(obj, "__module__", None) or getattr(obj, "__name__", ""))
        dists.setdefault(name, (module.split(".")[0] or "?", "?"))
        candidates.append((name, obj))

    for name, obj in candidates:
        if pm.is_registered(obj) or pm.get_plugin(name) is not None:
            continue
        try:
            pm.register(obj, name=name)
            pm.check_pending()
        except BaseException as exc:  # noqa: BLE001 - pluggy validation errors, misspelled hooks
            if not _contained(exc):
                raise
            if pm.get_plugin(name) is not None:
                pm.unregister(name=name)
            registry.broken[name] = f"invalid hooks: {_why(exc)}"
            _warn(name, registry.broken[name])
            continue

    for kind, hook_name in _HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():  # registration order: first wins
            plugin_name = impl.plugin_name
            try:
                provided = impl.function() or []
            except BaseException as exc:  # noqa: BLE001
                if not _contained(exc):
                    raise
                registry.broken[plugin_name] = f"its {hook_name} hook failed: {_why(exc)}"
                _warn(plugin_name, registry.broken[plugin_name])
                continue
            if not isinstance(provided, (list, tuple)):
                provided = [provided]
            package, version = dists.get(plugin_name, ("?", "?"))
            for item in provided:
                try:
                    _add_item(registry, kind, item, plugin_name, package, version)
                except BaseException as exc:  # noqa: BLE001 - hostile attributes (a raising name/summary)
                    if not _contained(exc):
                        raise
                    registry.broken[plugin_name] = f"its {kind} could not be inspected: {_why(exc)}"
                    _warn(plugin_name, registry.broken[plugin_name])
    return registry


def _add_item(registry: Registry, kind: str, item: Any, plugin_name: str, package: str, version: str) -> None:
    problem = validate(kind, item)
    if problem:
        registry.broken[plugin_name] = problem
        _warn(plugin_name, problem)
        return
    items = registry.of_kind(kind)
    if item.name in items:
        owner = next((i.plugin for i in registry.info if i.kind == kind and i.name == item.name), "?")
        _warn(plugin_name, f"{kind} name {item.name!r} is already provided by plugin {owner!r}")
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
    return None


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
