"""Where plugins come from, and the environment switches that turn them off.

Kept free of heavy imports (no numpy, no pluggy): ``sbts --help`` lists plugin commands from here
without importing a single plugin.

Sources, in loading order (an earlier one wins a name clash):

1. the built-in plugins, by module path (:data:`sbts.plugins.BUILTIN`), so a source checkout
   works without re-installing and nothing installed can shadow them;
2. third-party plugins: the ``sbts.plugins`` entry points of installed packages;
3. third-party commands: the ``sbts.commands`` entry points (``name = "module:function"``), added
   to the ``sbts`` group and listed by ``sbts --help`` from their docstrings, unimported.

Switches (read when the registry is built, like pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``):

``SBTS_DISABLE_PLUGIN_AUTOLOAD=1``
    load no entry point at all (built-ins only): the way to tell whether an installed package is
    what breaks a run;
``SBTS_DISABLE_PLUGINS=name1,name2``
    skip the plugins so named (as ``sbts plugins`` lists them in brackets, e.g. ``reader-gamma``),
    third-party commands by their command name, or every plugin and command of a distribution
    (``sbts-toy``).  A name that matches nothing is reported, not ignored.
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from typing import Any

ENTRY_POINT_GROUP = "sbts.plugins"
COMMAND_GROUP = "sbts.commands"
BUILTIN_PACKAGE = "sbts.plugins"  # the package whose BUILTIN mapping lists the built-in plugins
AUTOLOAD_ENV = "SBTS_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "SBTS_DISABLE_PLUGINS"
_FALSE = {"", "0", "no", "false", "off", "n"}


class PluginWarning(UserWarning):
    """A plugin could not be used; sbts goes on without it."""


def warn(plugin: str, reason: str) -> None:
    """Say that ``plugin`` is skipped and why (a :class:`PluginWarning`)."""
    warnings.warn(f"sbts plugin {plugin!r} skipped: {reason}", PluginWarning, stacklevel=3)


def autoload_disabled() -> bool:
    """``SBTS_DISABLE_PLUGIN_AUTOLOAD`` is set (to anything but an empty/false value)."""
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in _FALSE


def disabled_names() -> set[str]:
    """The names in ``SBTS_DISABLE_PLUGINS`` (comma- or space-separated)."""
    return {n for n in re.split(r"[,\s]+", os.environ.get(DISABLE_ENV, "")) if n}


def _dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: sbts_toy, sbts-toy and sbts.toy are one name


def is_disabled(name: str, dist: str | None, builtin: bool, names: set[str] | None = None) -> bool:
    """Whether ``SBTS_DISABLE_PLUGINS`` names this plugin (or, for a third party, its distribution)."""
    names = disabled_names() if names is None else names
    if name in names:
        return True
    return not builtin and dist is not None and _dist_key(dist) in {_dist_key(n) for n in names}


@dataclass(frozen=True)
class Source:
    """One plugin to load: its name, module (``module`` or ``module:attr``), distribution."""

    name: str
    value: str
    package: str
    version: str
    builtin: bool
    entry_point: Any = None  # the importlib entry point (third party), loaded by ``load``

    def load(self) -> Any:
        """Import the plugin (module or object)."""
        if self.entry_point is not None:
            return self.entry_point.load()
        module, _, attr = self.value.partition(":")
        obj = importlib.import_module(module)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
        return obj


def builtin_sources() -> list[Source]:
    """The built-in plugins, in their declared order."""
    from sbts import __version__

    table = getattr(importlib.import_module(BUILTIN_PACKAGE), "BUILTIN", {})
    return [Source(name, value, "sbts", __version__, True) for name, value in table.items()]


def _dist_of(ep: Any) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    return (getattr(dist, "name", None) or "?", getattr(dist, "version", None) or "?")


def _from_sbts(ep: Any, builtin_values: set[str]) -> bool:
    """An entry point of sbts itself: its own metadata from an older install that still declared
    the built-ins as entry points; they are registered from :data:`BUILTIN` instead."""
    return _dist_of(ep)[0] == "sbts" or str(getattr(ep, "value", "")) in builtin_values


def third_party_sources(entry_points: Iterable[Any] | None = None, builtins: Iterable[Source] = ()) -> list[Source]:
    """The ``sbts.plugins`` entry points of installed packages (none with the autoload switch).

    A plugin may not take the name of a built-in one (it is skipped with a warning); one package
    installed twice (two paths on ``sys.path``) counts once.
    """
    if entry_points is None:
        if autoload_disabled():
            return []
        entry_points = importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)
    builtins = list(builtins)
    taken = {s.name for s in builtins}
    builtin_values = {s.value for s in builtins}
    out, seen = [], set()
    for ep in sorted(entry_points, key=lambda e: str(getattr(e, "name", ""))):
        name, value = str(getattr(ep, "name", "")), str(getattr(ep, "value", ""))
        if _from_sbts(ep, builtin_values) or (name, value) in seen:
            continue
        seen.add((name, value))
        package, version = _dist_of(ep)
        if name in taken:
            warn(name, f"the name of a built-in plugin (entry point {value!r} of {package}); rename it")
            continue
        out.append(Source(name, value, package, version, False, ep))
    return out


@dataclass(frozen=True)
class CommandSource:
    """A third-party command: ``sbts NAME`` runs ``value`` (``module:function``) of ``package``."""

    name: str
    value: str
    package: str
    version: str
    entry_point: Any

    def load(self) -> Any:
        """Import the command object (a :class:`click.Command`)."""
        return self.entry_point.load()


def command_sources(include_disabled: bool = False) -> list[CommandSource]:
    """The ``sbts.commands`` entry points that the switches leave on (all with ``include_disabled``),
    by name."""
    if autoload_disabled():
        return []
    names = set() if include_disabled else disabled_names()
    out, seen = [], set()
    for ep in sorted(importlib_metadata.entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        package, version = _dist_of(ep)
        if ep.name in seen or is_disabled(ep.name, package, False, names):
            continue
        seen.add(ep.name)
        out.append(CommandSource(ep.name, ep.value, package, version, ep))
    return out


def check_disabled_names(known: Iterable[str], dists: Iterable[str]) -> None:
    """Warn about names in ``SBTS_DISABLE_PLUGINS`` that match no plugin, command or distribution."""
    names = disabled_names()
    if not names:
        return
    known = set(known)
    dist_keys = {_dist_key(d) for d in dists}
    for name in sorted(names):
        if name not in known and _dist_key(name) not in dist_keys:
            warnings.warn(f"{DISABLE_ENV} names {name[:64]!r}, which is no installed plugin "
                          f"(plugins: {', '.join(sorted(known))})", PluginWarning, stacklevel=2)
