"""Hook specifications: how a plugin tells sbts what it provides.

A plugin is a module (or object) registered under the ``sbts.plugins`` entry-point group that
implements some of these hooks, marked with :data:`hookimpl`.  sbts's built-in readers, corrections
and exporters are registered the same way, from its own ``pyproject.toml``.  Misspelled hooks
(``sbts_reader`` for ``sbts_readers``) are rejected when the plugin is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

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


@hookspec
def sbts_commands() -> Sequence[click.Command] | None:
    """Return extra ``click`` commands to add to the ``sbts`` group.

    Called when the command line is assembled for a command name sbts does not know.  ``None``
    means the plugin adds no command.
    """
