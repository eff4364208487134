"""The ``sbts`` command group.

Subcommands are imported only when invoked: ``sbts --help`` imports neither GDAL nor pyaps3 nor any
plugin.  Its listing still shows each command's own summary, as click would from the imported
command (first sentence of the docstring), because it reads the docstrings from the sources
without importing them; so the listing cannot drift from ``sbts COMMAND --help``.  Commands of
installed packages (the ``sbts.commands`` entry points) are listed the same way, in their own
section.  Errors that users cause (:class:`~sbts.core.errors.SbtsError`) become a one-line message
and exit status 1; ``-v`` shows tracebacks and debug logs.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import logging
import signal
import sys
import warnings
from pathlib import Path

import click

from sbts import __version__
from sbts.cli import _quiet_interrupt  # installed by sbts.cli itself, before any heavy import

# name -> "module:function" of the click command, imported only when invoked
COMMANDS: dict[str, str] = {
    "run": "sbts.cli.run:run",
    "load": "sbts.cli.load:load",
    "network": "sbts.cli.network:network",
    "invert": "sbts.cli.invert:invert",
    "correct": "sbts.cli.correct:correct",
    "export": "sbts.cli.export:export",
    "velocity": "sbts.cli.velocity:velocity",
    "rms": "sbts.cli.rms:rms",
    "refdate": "sbts.cli.refdate:refdate",
    "geocode": "sbts.cli.geocode:geocode",
    "view": "sbts.cli.view:view",
    "tsview": "sbts.cli.tsview:tsview",
    "plot": "sbts.cli.plot:plot",
    "average": "sbts.cli.tools:average",
    "mask": "sbts.cli.tools:mask",
    "horzvert": "sbts.cli.tools:horzvert",
    "mosaic": "sbts.cli.tools:mosaic",
    "filter": "sbts.cli.tools:filter_",
    "gnss": "sbts.cli.tools:gnss",
    "subset": "sbts.cli.toolbox:subset",
    "multilook": "sbts.cli.toolbox:multilook",
    "diff": "sbts.cli.toolbox:diff",
    "add": "sbts.cli.toolbox:add",
    "math": "sbts.cli.toolbox:math_",
    "lookup": "sbts.cli.toolbox:lookup",
    "info": "sbts.cli.info:info",
    "plugins": "sbts.cli.plugins:plugins",
    "demo": "sbts.cli.demo:demo",
    "serve": "sbts.cli.serve:serve",
}


def _module_source(module: str) -> Path | None:
    """The source file of ``module``, found without importing it (nor its parent packages)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)  # a top-level name is located, not imported
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin else None
    folders = [Path(p) for p in (spec.submodule_search_locations or [])]
    for part in rest[:-1]:
        folders = [f / part for f in folders if (f / part).is_dir()]
    for folder in folders:
        for candidate in (folder / f"{rest[-1]}.py", folder / rest[-1] / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


@functools.cache
def _parsed(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None


def _string(node: ast.AST | None) -> str | None:
    """A string literal's value; of an f-string, the literal text before its first placeholder
    (the summary is the first sentence, which help texts keep free of placeholders)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        text = ""
        for part in node.values:
            if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                break
            text += part.value
        return text
    return None


def static_help(target: str) -> tuple[str | None, str | None]:
    """``(help, short_help)`` of the click command ``module:function``, read from its source.

    ``help`` is the function's docstring unless its decorator gives ``help=``; ``short_help`` is
    the decorator's ``short_help=``.  Both ``None`` when the source cannot be found or read.
    """
    module, _, attr = target.partition(":")
    path = _module_source(module)
    tree = _parsed(path) if path else None
    for node in tree.body if tree else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == attr:
            help_text, short = ast.get_docstring(node, clean=False), None
            for deco in node.decorator_list:  # @click.command(help=...), @click.group(short_help=...)
                func = deco.func if isinstance(deco, ast.Call) else None
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name not in ("command", "group"):
                    continue
                for kw in deco.keywords:
                    if kw.arg == "help" and _string(kw.value) is not None:
                        help_text = _string(kw.value)
                    elif kw.arg == "short_help":
                        short = _string(kw.value)
            return help_text, short
    return None, None


def summary(target: str, limit: int) -> str:
    """What ``sbts --help`` shows for the command ``module:function``: exactly what click shows
    for the imported command (its ``get_short_help_str``), computed from the source."""
    help_text, short = static_help(target)
    if help_text and "\f" in help_text:
        help_text = help_text.split("\f", 1)[0]
    return click.Command(None, help=help_text, short_help=short).get_short_help_str(limit)


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class LazyGroup(click.Group):
    """A group whose subcommands (built-in and from plugins) are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            return _load(COMMANDS[name])
        source = _plugin_commands().get(name)
        return None if source is None else _load_plugin_command(source)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        plugin = _plugin_commands()
        for title, targets in (("Commands", {n: COMMANDS[n] for n in sorted(COMMANDS)}),
                               ("Plugin commands", {n: plugin[n].value for n in sorted(plugin)})):
            if not targets:
                continue
            limit = formatter.width - 6 - max(len(n) for n in targets)  # as click.Group lays it out
            with formatter.section(title):
                formatter.write_dl([(name, summary(target, limit)) for name, target in targets.items()])
        formatter.write_paragraph()
        formatter.write_text("`sbts plugins` lists the installed readers, corrections, exporters and commands.")

    def invoke(self, ctx: click.Context):
        from sbts.core.errors import SbtsError, shorten

        quiet = signal.getsignal(signal.SIGINT) is _quiet_interrupt
        try:
            if quiet:  # the command cleans up on KeyboardInterrupt (partial files, pools)
                signal.signal(signal.SIGINT, signal.default_int_handler)
            return super().invoke(ctx)
        except SbtsError as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            raise click.ClickException(shorten(str(exc))) from None
        except KeyboardInterrupt:
            click.echo("interrupted: rerun the same command to continue", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except OSError as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            raise click.ClickException(shorten(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))) from None
        except Exception as exc:  # a bug in sbts: say so in one line, the traceback with -v
            if _interrupt_inside(exc):  # Ctrl-C wrapped by Python (a class being created: RuntimeError)
                click.echo("interrupted: rerun the same command to continue", err=True)
                sys.exit(130)
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            raise click.ClickException(shorten(
                f"internal error {type(exc).__name__}: {exc} (rerun with -v for the traceback and report it)"
            )) from None
        finally:
            if quiet:
                signal.signal(signal.SIGINT, _quiet_interrupt)


def _interrupt_inside(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is what ``exc`` was raised from (Python 3.11 turns one raised
    while a class is created, e.g. a dataclass imported as Ctrl-C arrives, into a RuntimeError)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _plugin_commands() -> dict:
    """The commands of installed packages by name (``sbts.commands`` entry points), not imported;
    one that would hide a built-in command is skipped with a warning."""
    from sbts.core.plugin.discovery import PluginWarning, command_sources

    out = {}
    for source in command_sources():
        if source.name in COMMANDS:
            warnings.warn(f"sbts command {source.name!r} of {source.package} skipped: a built-in command has that "
                          "name", PluginWarning, stacklevel=2)
            continue
        out[source.name] = source
    return out


def _load_plugin_command(source) -> click.Command:
    """Import a plugin command; a failure (even ``sys.exit()``) is one error naming its package."""
    from sbts.core.plugin.registry import describe_exception

    try:
        command = source.load()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a broken plugin must not end sbts its own way
        raise click.ClickException(f"command {source.name!r} of {source.package} {source.version} could not be "
                                   f"loaded: {describe_exception(exc)}") from None
    if not isinstance(command, click.Command):
        raise click.ClickException(f"command {source.name!r} of {source.package}: {source.value} is not a click "
                                   "command")
    return command


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    root = logging.getLogger("sbts")
    root.handlers[:] = [handler]
    root.setLevel(min(level, logging.INFO))  # a run's log file records INFO even with -q
    root.propagate = False
    logging.captureWarnings(True)
    if not verbose:
        # h5py reports failed flushes of a file being closed after an I/O error from its object
        # destructors; the error itself is reported once, as a one-line message
        sys.unraisablehook = lambda unraisable: logging.getLogger("sbts").debug(
            "ignored in %s: %s", unraisable.object, unraisable.exc_value)
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}"
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.handlers[:] = [handler]
    if not verbose:
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="numpy")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sbts")
@click.option("-v", "--verbose", count=True, help="Debug messages and tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """sbts: small-baseline InSAR time series.

    Turns a stack of unwrapped interferograms into ground-displacement time series and velocity,
    with files in MintPy's HDF5 layout.  Start with `sbts demo`, then see `sbts COMMAND --help`.
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    configure_logging(verbose, quiet)


def main() -> None:  # pragma: no cover - console entry
    from sbts.core.compute.heap import keep_freed_memory

    keep_freed_memory()  # block-wise steps reuse their buffers instead of faulting in fresh pages
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
