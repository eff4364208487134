"""``sbts plugins``."""

from __future__ import annotations

import click


@click.command()
def plugins() -> None:
    """List the installed plugins by kind: name, version, package and summary.

    Built-in plugins are registered by sbts itself; third-party plugins are found through the
    'sbts.plugins' entry-point group of installed packages, their commands through
    'sbts.commands'.  Plugins that failed to load are listed last with the reason.

    \b
    Environment switches:
      SBTS_DISABLE_PLUGIN_AUTOLOAD=1   load no installed (entry-point) plugin or command
      SBTS_DISABLE_PLUGINS=a,b         skip the plugins named so (the [name] column), the
                                       commands so named, or every plugin of a package
    """
    from sbts.core.tools.info import describe_plugins

    click.echo(describe_plugins())
