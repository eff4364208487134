"""Hook specifications: how a plugin tells sbts what it provides.

A plugin is a module (or object) registered under the ``sbts.plugins`` entry-point group that
implements some of these hooks, marked with :data:`hookimpl` (plugin authors import it from
:mod:`sbts.core.api`).  sbts's built-in readers, corrections and exporters implement the same hooks;
the host registers them by module path (:data:`sbts.plugins.BUILTIN`).  Misspelled hooks
(``sbts_reader`` for ``sbts_readers``) are rejected when the plugin is loaded.

Commands are not a hook: a package adds ``sbts NAME`` through the ``sbts.commands`` entry-point
group (``NAME = "module:function"``), so that ``sbts --help`` lists it without importing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from sbts.core.plugin.interfaces import Correction, Exporter, Reader

PROJECT = "sbts"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def sbts_readers() -> Sequence[Reader] | None:
    """Return the processor-format readers this plugin provides.

    Called once, when sbts builds its plugin registry (the first time a command needs readers).
    Return ``None`` (or an empty list) when the plugin provides no reader.  Each reader's ``name``
    must be unique among all installed plugins; it is what ``mintpy.load.processor`` selects.
    """


@hookspec
def sbts_corrections() -> Sequence[Correction] | None:
    """Return the corrections this plugin provides (run by ``sbts correct NAME`` and the workflow).

    Called once, when the registry is built.  ``None`` means none.
    """


@hookspec
def sbts_exporters() -> Sequence[Exporter] | None:
    """Return the exporters this plugin provides (run by ``sbts export NAME``).

    Called once, when the registry is built.  ``None`` means none.
    """
