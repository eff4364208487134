"""``sbts plugins``."""

from __future__ import annotations

import click


@click.command()
def plugins() -> None:
    """List the installed plugins by kind: name, version, package and summary.

    Plugins are found through the 'sbts.plugins' entry-point group; the built-in ones are
    registered the same way.  Plugins that failed to load are listed last with the reason.
    """
    from sbts.core.tools.info import describe_plugins

    click.echo(describe_plugins())
