"""The ``sbts`` command group.

Subcommands are imported only when invoked (``sbts --help`` imports neither GDAL nor pyaps3 nor
any plugin).  Errors that users cause (:class:`~sbts.core.errors.SbtsError`) become a one-line
message and exit status 1; ``-v`` shows tracebacks and debug logs.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import warnings

import click

from sbts import __version__
from sbts.cli import _quiet_interrupt  # installed by sbts.cli itself, before any heavy import

# name -> (module, attribute, one-line help shown by `sbts --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("sbts.cli.run", "run", "Run the whole small-baseline workflow (smallbaselineApp), or some of its steps."),
    "load": ("sbts.cli.load", "load", "Load a processor's interferograms and geometry into inputs/*.h5."),
    "network": ("sbts.cli.network", "network", "Modify the network, average coherence, pick the reference point."),
    "invert": ("sbts.cli.invert", "invert", "Invert the interferogram network into a displacement time series."),
    "correct": ("sbts.cli.correct", "correct", "Run a correction plugin (sbts correct NAME)."),
    "export": ("sbts.cli.export", "export", "Write a product in another format (sbts export FORMAT FILE)."),
    "velocity": ("sbts.cli.velocity", "velocity", "Fit time functions: velocity, seasonal terms, steps, with uncertainty."),
    "rms": ("sbts.cli.rms", "rms", "Residual RMS per date: best reference date and outlier dates."),
    "refdate": ("sbts.cli.refdate", "refdate", "Re-reference time-series files to a date."),
    "geocode": ("sbts.cli.geocode", "geocode", "Resample files between radar and geographic coordinates."),
    "view": ("sbts.cli.view", "view", "Plot maps: any dataset, dates or interferograms, with masks and DEM shading."),
    "tsview": ("sbts.cli.tsview", "tsview", "Plot the displacement history of a pixel (click on the map, or --yx/--lalo)."),
    "plot": ("sbts.cli.plot", "plot", "Plots: network, coherence-matrix, transect, rms."),
    "average": ("sbts.cli.tools", "average", "Temporal average of a stack dataset (e.g. coherence)."),
    "mask": ("sbts.cli.tools", "mask", "Make a mask from thresholds, non-zero values or connected components."),
    "horzvert": ("sbts.cli.tools", "horzvert", "Ascending + descending LOS → east-west and vertical."),
    "mosaic": ("sbts.cli.tools", "mosaic", "Mosaic overlapping geocoded maps with offset adjustment."),
    "filter": ("sbts.cli.tools", "filter_", "Spatial or temporal filters of maps and time series."),
    "gnss": ("sbts.cli.tools", "gnss", "Compare with GNSS time series (UNR .tenv3) projected to the LOS."),
    "info": ("sbts.cli.info", "info", "Show the structure, attributes and dates of an HDF5 file."),
    "plugins": ("sbts.cli.plugins", "plugins", "List the installed plugins by kind."),
    "demo": ("sbts.cli.demo", "demo", "Write the synthetic demo stack and run the pipeline on it."),
    "serve": ("sbts.cli.serve", "serve", "Browse a work directory's maps and pixel histories in the web browser."),
}


class LazyGroup(click.Group):
    """A group whose subcommands (built-in and from plugins) are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attr, _help = COMMANDS[name]
            return getattr(importlib.import_module(module), attr)
        for command in _plugin_commands():
            if command.name == name:
                return command
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        formatter.write_paragraph()
        formatter.write_text("Plugins may add commands: `sbts plugins` lists them.")

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
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            raise click.ClickException(shorten(
                f"internal error {type(exc).__name__}: {exc} (rerun with -v for the traceback and report it)"
            )) from None
        finally:
            if quiet:
                signal.signal(signal.SIGINT, _quiet_interrupt)


def _plugin_commands() -> list[click.Command]:
    from sbts.core.plugin.registry import get_registry

    return [c for c in get_registry().commands() if isinstance(c, click.Command)]


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
