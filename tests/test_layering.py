"""The layering of the package, checked statically on every import (module-level and inside functions).

- The *kernel* (``core/api.py``, ``core/errors.py``, ``core/plugin``, ``core/model``, ``core/io``,
  ``core/inversion``, ``core/compute``, ``core/config``) never imports the *application*
  (``core/steps``, ``core/workflow``, ``core/tools``, ``core/viz``, ``core/demo``), nor the command
  line, nor any plugin: the engine and the contract stand alone.
- A built-in plugin imports from sbts only ``sbts.core.api`` and the private ``_*.py`` modules of
  its own folder: it is written as a third party would write it.
- No module of ``core`` names a built-in plugin: no import of ``sbts.plugins.*``, no module path
  ``sbts.plugins.<...>`` in a string, and, in the modules that call the plugin host, no literal
  name of a built-in reader, correction or exporter (a plugin is chosen by the user or by what it
  declares, never by sbts's own code).

There are no exceptions: each check fails on the first import or name that breaks the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KERNEL = ["core/api.py", "core/errors.py", "core/plugin", "core/model", "core/io", "core/inversion",
          "core/compute", "core/config"]
APPLICATION = ("sbts.core.steps", "sbts.core.workflow", "sbts.core.tools", "sbts.core.viz", "sbts.core.demo",
               "sbts.cli", "sbts.plugins")
PLUGIN_HOST = ("sbts.core.plugin.registry", "sbts.core.plugin.runners")

# (file, imported module or literal) → why it is still there; each must disappear with that work
def _files(entries) -> list[Path]:
    out = []
    for entry in entries:
        path = REPO / entry
        out += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return out


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["sbts", *parts])


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, anywhere in it, absolute (relative imports resolved); for
    ``from X import y`` both ``X`` and ``X.y`` (``y`` may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_of(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names if a.name != "*"]
    return out


def _strings(path: Path) -> list[tuple[int, str]]:
    """String literals of ``path`` that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def _is_under(module: str, prefixes) -> str | None:
    return next((p for p in prefixes if module == p or module.startswith(p + ".")), None)


# ----------------------------------------------------------------------------- kernel
def _kernel_pairs() -> set[tuple[str, str]]:
    """(kernel file, application module it imports), the module cut to ``sbts.<a>.<b>.<c>``."""
    pairs = set()
    for path in _files(KERNEL):
        for _line, module in _imports(path):
            if _is_under(module, APPLICATION):
                pairs.add((_rel(path), ".".join(module.split(".")[:4])))
    return pairs


def test_the_kernel_files_exist():
    for entry in KERNEL:
        assert (REPO / entry).exists(), entry


def test_kernel_never_imports_the_application():
    new = _kernel_pairs()
    assert not new, "the kernel imports the application: " + ", ".join(f"{f} → {m}" for f, m in sorted(new))


# ----------------------------------------------------------------------------- plugins
def _plugin_violations(paths) -> list[str]:
    bad = []
    for path in paths:
        folder = _module_of(path.parent)  # sbts.plugins.readers: its private modules are _*.py there
        for line, module in _imports(path):
            if not _is_under(module, ("sbts",)) or _is_under(module, ("sbts.core.api",)):
                continue
            if module == folder or module.startswith(folder + "._"):
                continue
            bad.append(f"{_rel(path)}:{line} imports {module}")
    return bad


def test_plugins_import_only_the_api_and_their_own_private_modules():
    bad = _plugin_violations(_files(["plugins"]))
    assert not bad, "\n".join(bad)


def test_the_layering_checks_can_fail(tmp_path, monkeypatch):
    """The scan sees function-level and relative imports (a check that cannot fail proves nothing)."""
    import sys

    for folder in ("core/io", "plugins/readers"):
        (tmp_path / folder).mkdir(parents=True)
    kernel = tmp_path / "core" / "io" / "sample.py"
    kernel.write_text("def f():\n    from sbts.core.steps import load\n    from ..workflow import runner\n")
    plugin = tmp_path / "plugins" / "readers" / "sample.py"
    plugin.write_text("from sbts.core.api import Reader\nfrom sbts.plugins.readers._common import x\n"
                      "from ._rsc import y\nfrom . import _gamma_par\n\n"
                      "def f():\n    from sbts.core.io.h5 import open_h5\n    from .gamma import GammaReader\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    modules = {m for _, m in _imports(kernel)}
    assert {"sbts.core.steps.load", "sbts.core.workflow.runner"} <= modules
    assert _is_under("sbts.core.workflow.runner", APPLICATION) and not _is_under("sbts.core.io.h5", APPLICATION)
    bad = _plugin_violations([plugin])
    assert [b.split(" imports ")[1] for b in bad] == ["sbts.core.io.h5", "sbts.core.io.h5.open_h5",
                                                       "sbts.plugins.readers.gamma",
                                                       "sbts.plugins.readers.gamma.GammaReader"], bad


# ----------------------------------------------------------------------------- core never names a plugin
def _builtin_names() -> set[str]:
    """The names a built-in plugin is selected by: its readers', corrections' and exporters' names."""
    from sbts.core.plugin.registry import build_registry

    return {info.name for info in build_registry(entry_points=[]).info}


def test_core_never_imports_or_spells_a_plugin_module():
    bad = []
    for path in _files(["core"]):
        for line, module in _imports(path):
            if _is_under(module, ("sbts.plugins",)):
                bad.append(f"{_rel(path)}:{line} imports {module}")
        for line, text in _strings(path):
            if "sbts.plugins." in text or text.startswith("plugins."):
                bad.append(f"{_rel(path)}:{line} names {text!r}")
    assert not bad, "\n".join(bad)


def _named_plugins() -> set[tuple[str, str]]:
    names = _builtin_names()
    found = set()
    for path in _files(["core"]):
        if not any(_is_under(m, PLUGIN_HOST) for _, m in _imports(path)):
            continue
        found |= {(_rel(path), text) for _, text in _strings(path) if text in names}
    return found


def test_core_modules_calling_the_plugin_host_name_no_builtin_plugin():
    new = _named_plugins()
    assert not new, "core names built-in plugins: " + ", ".join(f"{f}: {n!r}" for f, n in sorted(new))
