"""Text descriptions for ``sbts info`` and ``sbts plugins``."""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from sbts.core.errors import InputError
from sbts.core.io.h5 import decode_strings, open_h5


def describe(path: str | os.PathLike, dates_only: bool = False) -> str:
    """Structure, root attributes and dates of an HDF5 file (any, MintPy layout or not)."""
    try:
        return _describe(Path(path), dates_only)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:  # h5py's errors on damaged files
        raise InputError(f"{path}: cannot be read, the file is damaged ({exc})") from None


def _describe(path: Path, dates_only: bool) -> str:
    lines: list[str] = []
    with open_h5(path) as f:
        dates = None
        if "date" in f and isinstance(f["date"], h5py.Dataset):
            raw = f["date"][()]
            if raw.ndim == 2:
                dates = ["_".join(decode_strings(row)) for row in raw]
                keep = f["dropIfgram"][()] if "dropIfgram" in f else None
            else:
                dates, keep = decode_strings(raw), None
        if dates_only:
            return "\n".join(dates or [])
        file_type = f.attrs.get("FILE_TYPE", "?")
        file_type = file_type.decode() if isinstance(file_type, bytes) else file_type
        lines.append(f"{path}  ({file_type}, {path.stat().st_size / 1e6:.1f} MB)")
        lines.append("datasets:")

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                chunks = f", chunks {obj.chunks}" if obj.chunks else ""
                comp = f", {obj.compression}" if obj.compression else ""
                if obj.is_virtual:  # a stack appended to in parts (sbts.core.io.stack_parts)
                    comp += f", virtual: {len({v.file_name for v in obj.virtual_sources()})} part file(s)"
                lines.append(f"  /{name:<28s} {str(obj.shape):<20s} {obj.dtype}{chunks}{comp}")

        f.visititems(visit)
        lines.append("attributes:")
        for key in sorted(f.attrs):
            value = f.attrs[key]
            value = value.decode(errors="replace") if isinstance(value, bytes) else value
            text = str(value)
            lines.append(f"  {key:<32s} {text if len(text) < 100 else text[:97] + '...'}")
        if dates:
            if keep is not None:
                lines.append(f"pairs: {len(dates)} ({int(keep.sum())} kept)")
                for d, k in zip(dates, keep):
                    lines.append(f"  {d}{'' if k else '  (dropped)'}")
            else:
                lines.append(f"dates: {len(dates)} ({dates[0]} .. {dates[-1]})")
    return "\n".join(lines)


def describe_plugins() -> str:
    """``sbts plugins``: every item by kind (name, package, version, [plugin], summary), the
    commands of installed packages, then the plugins switched off or broken, with the reason."""
    from sbts.core.plugin.discovery import AUTOLOAD_ENV, DISABLE_ENV, autoload_disabled, command_sources
    from sbts.core.plugin.registry import get_registry

    reg = get_registry()
    lines = []
    for kind, title in (("reader", "Readers"), ("correction", "Corrections"), ("exporter", "Exporters")):
        items = [i for i in reg.info if i.kind == kind]
        lines.append(f"{title}:")
        if not items:
            lines.append("  (none)")
        for i in sorted(items, key=lambda i: i.name):
            lines.append(f"  {i.name:<22s} {i.package:<14s} {i.version:<8s} [{i.plugin}] {i.summary}")
        lines.append("")
    commands = command_sources()
    if commands:
        lines.append("Commands:")
        for c in commands:
            lines.append(f"  {c.name:<22s} {c.package:<14s} {c.version:<8s} {c.value}")
        lines.append("")
    if autoload_disabled():
        lines += [f"{AUTOLOAD_ENV} is set: installed (entry-point) plugins and commands are not loaded.", ""]
    if reg.disabled:
        lines += [f"Disabled by {DISABLE_ENV}: {', '.join(reg.disabled)}", ""]
    if reg.broken:
        lines.append("Broken plugins (skipped):")
        for name, reason in sorted(reg.broken.items()):
            lines.append(f"  {name}: {reason}")
    return "\n".join(lines).rstrip()
