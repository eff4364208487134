"""Templates: ``key = value`` files with MintPy's keys.

A user template overrides the package defaults (``core/config/defaults/sbts.cfg``); ``auto`` or an absent
key resolves to the default; command-line options override both.  Keys are MintPy's (``mintpy.*``;
``sbts.*`` is accepted as a synonym), so an existing MintPy custom template works unchanged.
UPPER_CASE keys are metadata to write into the files (``HEADING``, ``ALOOKS`` ...).
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
import stat
import warnings
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from sbts.core.errors import TemplateError, shown

logger = logging.getLogger(__name__)

TRUE = {"yes", "y", "true", "t", "on", "1"}
FALSE = {"no", "n", "false", "f", "off", "0", "none"}
# words that switch a non-boolean key off; a number is never one of them: ``0`` is zero, not "no"
NO_WORDS = {"no", "n", "false", "f", "off", "none"}
_LINE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*=\s*(.*?)\s*$")


# the range of each numeric key, checked by the typed getters wherever the key is read:
# key -> (lowest, lowest allowed?, highest or None, integer?[, what the number is])
_RANGES: dict[str, tuple] = {
    "mintpy.compute.maxMemory": (0, False, None, False),
    "mintpy.plot.maxMemory": (0, False, None, False),
    "mintpy.plot.dpi": (0, False, None, False),
    "mintpy.multilook.ystep": (1, True, None, True),
    "mintpy.multilook.xstep": (1, True, None, True),
    "mintpy.network.tempBaseMax": (0, True, None, False),
    "mintpy.network.perpBaseMax": (0, True, None, False),
    "mintpy.network.connNumMax": (1, True, None, True),
    "mintpy.network.minCoherence": (0, True, 1, False),
    "mintpy.network.minAreaRatio": (0, True, 1, False),
    "mintpy.reference.minCoherence": (0, True, 1, False),
    "mintpy.unwrapError.connCompMinArea": (0, True, None, False),
    "mintpy.unwrapError.numSample": (1, True, None, True),
    "mintpy.unwrapError.bridgePtsRadius": (0, True, None, True),
    "mintpy.networkInversion.minRedundancy": (0, True, None, False),
    "mintpy.networkInversion.minTempCoh": (0, True, 1, False),
    "mintpy.networkInversion.minNumPixel": (0, True, None, True),
    "mintpy.nsbas.gamma": (0, False, None, False),
    "mintpy.troposphericDelay.polyOrder": (1, True, None, True, "a polynomial degree"),
    "mintpy.troposphericDelay.looks": (1, True, None, True),
    "mintpy.troposphericDelay.minCorrelation": (0, True, 1, False),
    "mintpy.topographicResidual.polyOrder": (0, True, None, True, "a polynomial degree"),
    "mintpy.residualRMS.cutoff": (0, False, None, False),
    "mintpy.timeFunc.polynomial": (0, True, None, True, "a polynomial degree"),
    "mintpy.timeFunc.bootstrapCount": (0, True, None, True),
}


class UnknownKeyWarning(UserWarning):
    """A template key sbts does not know (probably misspelled)."""


def _strip_comment(value: str) -> str:
    for marker in ("#", "##"):
        if marker in value:
            value = value.split(marker, 1)[0]
    return value.strip().strip("'\"").strip()


def parse_text(text: str, source: str = "<template>") -> dict[str, str]:
    """Parse ``key = value`` lines; ``#`` starts a comment; later keys override earlier ones.

    Parameters
    ----------
    text : str
        A template's text.
    source : str
        Where it came from, for messages.

    Returns
    -------
    dict of str to str
        Keys normalised (``sbts.*`` → ``mintpy.*``).

    Raises
    ------
    TemplateError
        A line that is not ``key = value``.
    """
    values: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "%", ";", "[")):
            continue
        match = _LINE.match(line)
        if not match:
            raise TemplateError(f"{source}, line {lineno}: cannot parse {shown(stripped, 60)}; expected 'key = value'")
        key, value = match.group(1), _strip_comment(match.group(2))
        values[normalise_key(key)] = value
    return values


def normalise_key(key: str) -> str:
    return "mintpy." + key[5:] if key.startswith("sbts.") else key


def read_text_file(path: str | os.PathLike) -> str:
    """The text of a template: a regular UTF-8 file.

    A BOM is dropped; a FIFO or device is refused, since reading one blocks forever or never ends.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str

    Raises
    ------
    TemplateError
        Absent, a folder or special file, unreadable, or not UTF-8.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise TemplateError(f"template {path} not found") from None
    except OSError as exc:
        raise TemplateError(f"template {path} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise TemplateError(f"template {path} is a folder; give the template file")
    if not stat.S_ISREG(st.st_mode):
        raise TemplateError(f"template {path} is not a regular file (a FIFO, socket or device); give a text file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateError(f"template {path} cannot be read: {exc.strerror or exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark (Windows editors)
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"template {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


@lru_cache(maxsize=1)
def default_values() -> dict[str, str]:
    text = resources.files("sbts.core.config").joinpath("defaults/sbts.cfg").read_text(encoding="utf-8")
    return parse_text(text, "sbts default template")


def _is_metadata_key(key: str) -> bool:
    return key.upper() == key and "." not in key


# MintPy 1.6.4 keys (smallbaselineApp.cfg) for steps sbts does not implement: (values that leave the step
# off or the input unused, what the key is for).  Left at those values they change nothing and get one
# info line; any other value is refused, since sbts would otherwise ignore what the user asked for.
_UNSET = ("auto", "", "no", "none", "false", "off", "n", "f", "0")
NOT_IMPLEMENTED: dict[str, tuple[tuple[str, ...], str]] = {
    "mintpy.compute.config": (_UNSET, "a dask-jobqueue cluster configuration (MintPy's slurm/pbs/lsf clusters)"),
    "mintpy.load.frequency": (_UNSET + ("a",), "NISAR frequency selection"),
    "mintpy.load.autoPath": (_UNSET, "the processors' default file locations (set the mintpy.load.*File patterns)"),
    "mintpy.load.azOffFile": (_UNSET, "the offset stack"),
    "mintpy.load.rgOffFile": (_UNSET, "the offset stack"),
    "mintpy.load.azOffStdFile": (_UNSET, "the offset stack"),
    "mintpy.load.rgOffStdFile": (_UNSET, "the offset stack"),
    "mintpy.load.offSnrFile": (_UNSET, "the offset stack"),
    "mintpy.troposphericDelay.operaDir": (_UNSET + ("./opera", "opera"), "the OPERA tropospheric correction"),
}
# values of implemented keys that name a MintPy method sbts does not have
NOT_IMPLEMENTED_VALUES: dict[str, dict[str, str]] = {
    "mintpy.troposphericDelay.method": {"opera": "the OPERA tropospheric correction"},
    "mintpy.compute.cluster": {name: f"a dask-jobqueue {name} cluster (use local, or the address of a running "
                                     "dask scheduler)" for name in ("slurm", "pbs", "lsf")},
}
# keys MintPy renamed (the old name is ignored by MintPy 1.6.4 too)
RENAMED = {f"mintpy.velocity.{name}": f"mintpy.timeFunc.{name}" for name in ("startDate", "endDate", "excludeDate",
                                                                               "bootstrapCount")}
RENAMED["mintpy.velocity.bootstrap"] = "mintpy.timeFunc.uncertaintyQuantification"
# HDF-EOS5 (UNAVCO) metadata: MintPy's save_hdfeos5 takes them from the template, bare or with a prefix
HDFEOS5_KEYS = ("mission", "beam_mode", "beam_swath", "relative_orbit", "first_frame", "last_frame",
                "processing_dem", "unwrap_method", "atmos_correct_method", "polarization")
_HDFEOS5_PREFIXES = ("", "unavco.", "hdfeos5.", "mintpy.save.hdfeos5.")


def _is_hdfeos5_key(key: str) -> bool:
    lower = key.lower()
    return any(lower == prefix + name for prefix in _HDFEOS5_PREFIXES for name in HDFEOS5_KEYS)


def check_not_implemented(values: Mapping[str, str], source: str) -> list[str]:
    """Refuse MintPy keys of unimplemented steps set to a working value; return those left unset."""
    unset = []
    for key, value in values.items():
        v = str(value).strip().strip("'\"").lower()
        if key in NOT_IMPLEMENTED:
            allowed, what = NOT_IMPLEMENTED[key]
            if v not in allowed:
                raise TemplateError(f"{source}: {key} = {value!r}: {what} is not implemented in sbts; "
                                    f"remove the key or set it to auto/no")
            unset.append(key)
        elif key in NOT_IMPLEMENTED_VALUES and v in NOT_IMPLEMENTED_VALUES[key]:
            raise TemplateError(f"{source}: {key} = {value!r}: {NOT_IMPLEMENTED_VALUES[key][v]} is not "
                                f"implemented in sbts; choose another method or no")
    return unset


class Template:
    """A user template over the defaults; values are strings, converted by the typed getters.

    A key not set (or ``auto``) reads as sbts's default (MintPy's); ``get`` returns ``None`` for
    no/none/false/off.  Getters raise :class:`TemplateError` naming the key and the bad value.

    Parameters
    ----------
    values : Mapping[str, str], optional
        Key → value as written (``sbts.*`` keys are read as ``mintpy.*``).
    source : str
        The template file, for messages.
    warn_unknown : bool
        Warn (:class:`UnknownKeyWarning`) about keys sbts does not know, with the closest known one.
    """

    def __init__(self, values: Mapping[str, str] | None = None, source: str = "<options>",
                 warn_unknown: bool = True) -> None:
        self.source = source
        self.values: dict[str, str] = {normalise_key(k): str(v) for k, v in (values or {}).items()}
        if warn_unknown:
            self._warn_unknown()

    # ------------------------------------------------------------ construction
    @classmethod
    def read(cls, path: str | os.PathLike | None) -> Template:
        """The template of file ``path`` (``None``: the defaults alone)."""
        if path is None:
            return cls({}, "<defaults>")
        return cls(parse_text(read_text_file(path), str(path)), str(path))

    @classmethod
    def from_text(cls, text: str, source: str = "<text>") -> Template:
        """A template parsed from ``text`` (``key = value`` lines)."""
        return cls(parse_text(text, source), source)

    def override(self, **options: Any) -> Template:
        """A copy with options set; ``None`` means "not given" and keeps the template's value.

        Option names are template keys with ``.`` written as ``__`` or given in a mapping.
        """
        return self.updated({k.replace("__", "."): v for k, v in options.items()})

    def updated(self, values: Mapping[str, Any]) -> Template:
        """A copy with ``values`` set (``None`` skipped; bools as yes/no, lists comma-joined)."""
        merged = dict(self.values)
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            merged[normalise_key(key)] = str(value)
        return Template(merged, self.source, warn_unknown=False)

    def _warn_unknown(self) -> None:
        known = default_values()
        unset = check_not_implemented(self.values, self.source)
        if unset:
            logger.info("%s: %d MintPy key(s) for steps sbts does not implement are left unset, so they change "
                        "nothing: %s", self.source, len(unset), ", ".join(unset))
        for key in self.values:
            if key in known or key in NOT_IMPLEMENTED or _is_metadata_key(key) or _is_hdfeos5_key(key):
                continue
            if key in RENAMED:
                warnings.warn(f"{self.source}: {key!r} is MintPy's former name of {RENAMED[key]!r}; MintPy 1.6.4 "
                              f"and sbts read only the new name, so this line does nothing: rename the key",
                              UnknownKeyWarning, stacklevel=3)
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            warnings.warn(f"{self.source}: unknown key {shown(key)}{hint}", UnknownKeyWarning, stacklevel=3)

    # ------------------------------------------------------------ access
    def raw(self, key: str) -> str:
        """The value of ``key`` as written, or its default when unset/auto; environment variables expanded."""
        key = normalise_key(key)
        value = self.values.get(key, "auto")
        if value.strip().lower() in ("auto", ""):
            if key not in default_values():
                raise TemplateError(f"no default for key {shown(key)}")
            value = default_values()[key]
        return os.path.expandvars(value).strip() if "$" in value else value.strip()

    def is_set(self, key: str) -> bool:
        """True when the key is given (not auto) in the user template or options."""
        value = self.values.get(normalise_key(key), "auto").strip().lower()
        return value not in ("auto", "")

    def get(self, key: str) -> str | None:
        """The value, or ``None`` for the words no/none/false/off (``0`` is a value, not "no")."""
        value = self.raw(key)
        return None if value.lower() in NO_WORDS else value

    def _bad(self, key: str, value: str, why: str) -> TemplateError:
        return TemplateError(f"{self.source}: {normalise_key(key)} = {shown(value)} {why}")

    def get_str(self, key: str, choices: Iterable[str] | None = None) -> str | None:
        """The value (``None`` for no/none/false); with ``choices``, one of them."""
        if choices is None:
            return self.get(key)
        options = list(choices)
        value = self.raw(key)
        if value.lower() in NO_WORDS:
            return None
        for option in options:
            if value.lower() == option.lower():
                return option
        raise self._bad(key, value, f"is not one of: {', '.join(options)}")

    def get_bool(self, key: str) -> bool:
        """The value as a bool (yes/no, true/false, on/off ...); a :class:`TemplateError` otherwise."""
        value = self.raw(key).lower()
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise self._bad(key, value, "is not yes/no")

    def get_float(self, key: str) -> float | None:
        """A finite number; ``None`` only for the words no/none/false (``0`` is zero)."""
        value = self.get(key)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise self._bad(key, value, "is not a number") from None
        if not math.isfinite(number):
            raise self._bad(key, value, "is not a finite number")
        rule = _RANGES.get(normalise_key(key))
        if rule is not None:
            low, low_ok, high, integer = rule[:4]
            what = f" ({rule[4]})" if len(rule) > 4 else ""
            if integer and number != int(number):
                raise self._bad(key, value, f"is not an integer{what}")
            if number < low or (number == low and not low_ok) or (high is not None and number > high):
                if high is not None:
                    why = f"must be between {low:g} and {high:g}"
                else:
                    why = f"must be {'at least' if low_ok else 'more than'} {low:g}"
                raise self._bad(key, value, why + what)
        return number

    def get_int(self, key: str) -> int | None:
        """The value as an integer (``None`` for no); a :class:`TemplateError` if not a whole number."""
        value = self.get_float(key)
        if value is None:
            return None
        if value != int(value):
            raise self._bad(key, self.raw(key), "is not an integer")
        return int(value)

    def get_list(self, key: str) -> list[str]:
        """Comma/space separated list (empty for no)."""
        value = self.get(key)
        if value is None:
            return []
        return [v for v in re.split(r"[,\s]+", value.strip("[]")) if v]

    def get_numbers(self, key: str, count: int | None = None) -> list[float] | None:
        """Finite numbers (``None`` for no)."""
        items = self.get_list(key)
        if not items:
            return None
        try:
            numbers = [float(v) for v in items]
        except ValueError:
            raise self._bad(key, self.raw(key), "expected numbers") from None
        if not all(math.isfinite(v) for v in numbers):
            raise self._bad(key, self.raw(key), "expected finite numbers")
        if count is not None and len(numbers) != count:
            raise self._bad(key, self.raw(key), f"expected {count} numbers")
        return numbers

    def metadata_overrides(self) -> dict[str, str]:
        """UPPER_CASE keys: attributes to write into the files."""
        return {k: v for k, v in self.values.items() if _is_metadata_key(k)}

    def section(self, prefix: str) -> dict[str, str]:
        """Resolved values of every default key under ``prefix`` (for provenance attributes)."""
        prefix = normalise_key(prefix)
        keys = sorted(k for k in set(default_values()) | set(self.values) if k.startswith(prefix))
        return {k: self.raw(k) for k in keys}

    def write(self, path: str | os.PathLike) -> None:
        """Write the user's values (not the defaults) as ``key = value`` lines."""
        lines = [f"{k} = {v}" for k, v in sorted(self.values.items())]
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

