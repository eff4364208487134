"""The ``sbts`` command line (click).

A Ctrl-C while the command starts must not print a KeyboardInterrupt traceback from inside an
import: when this package is imported by the ``sbts`` script (or ``python -m sbts``) it installs,
before anything heavy is imported, a SIGINT handler that just says so and exits 130; the command
group swaps in Python's own handler while a command runs (it cleans up on KeyboardInterrupt).
"""

import _signal  # the C module: `signal` imports enum, too slow to come first
import os
import sys


def _quiet_interrupt(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    """Ctrl-C before a command runs (or after it ended): nothing to clean up, no traceback."""
    os.write(2, b"interrupted\n")
    os._exit(130)


def _started_as_command() -> bool:
    """True in the ``sbts`` console script and ``python -m sbts``, never when imported as a library."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return spec.name == "sbts.__main__"
    return os.path.basename(getattr(main, "__file__", "") or "") in ("sbts", "sbts-script.py", "sbts.exe")


if _started_as_command() and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _quiet_interrupt)
