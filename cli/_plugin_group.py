"""A click group whose subcommands are the plugins of one kind (``correct NAME``, ``export FORMAT``)."""

from __future__ import annotations

from collections.abc import Callable

import click


class PluginGroup(click.Group):
    """Subcommands built on demand from the plugin registry."""

    def __init__(self, *args, kind: str, make_command: Callable[[object], click.Command], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.make_command = make_command

    def _items(self) -> dict:
        from sbts.core.plugin.registry import get_registry

        return get_registry().of_kind(self.kind)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._items())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        item = self._items().get(name)
        return None if item is None else self.make_command(item)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else None
        if name is not None and not name.startswith("-") and name not in self._items():
            known = ", ".join(sorted(self._items())) or "none installed"
            raise click.UsageError(f"no {self.kind} named {name!r}; available: {known} (see `sbts plugins`)", ctx)
        return super().resolve_command(ctx, args)
