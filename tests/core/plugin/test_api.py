"""``sbts.core.api``: the one import for plugin authors, complete, documented, and all the docs use.

- every name of ``__all__`` exists, once, and is what the kernel defines (no copies);
- every class and function it exports has a numpy-style docstring (Parameters/Returns sections
  where it takes or gives something; Parameters or Attributes for records), and every public
  method of an exported class has a docstring;
- the code of ``docs/adding-a-reader.md``, of README.md and of the example plugin
  (``tests/thirdparty/sbts-toy``) imports from sbts only ``sbts.core.api``, and only names it
  exports (README's notebook example may also use the user API, ``import sbts``).
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import re
from pathlib import Path

import pytest

import sbts.core.api as api

REPO = Path(__file__).resolve().parents[3]


def test_all_is_explicit_and_importable():
    assert len(api.__all__) == len(set(api.__all__))
    missing = [n for n in api.__all__ if not hasattr(api, n)]
    assert not missing
    public = {n for n, v in vars(api).items() if not n.startswith("_") and not inspect.ismodule(v)} - {"annotations"}
    assert public == set(api.__all__), public ^ set(api.__all__)


def test_api_re_exports_the_kernel_objects():
    """Plugins and the kernel share the objects (an ``isinstance`` against the API's classes holds)."""
    from sbts.core.io.products import TimeSeries
    from sbts.core.plugin.hookspecs import hookimpl
    from sbts.core.plugin.interfaces import Reader

    assert api.Reader is Reader and api.TimeSeries is TimeSeries and api.hookimpl is hookimpl
    for name in api.__all__:
        obj = getattr(api, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("sbts.core."), (name, obj.__module__)
            assert not obj.__module__.startswith(("sbts.core.steps", "sbts.core.workflow", "sbts.core.tools",
                                                  "sbts.core.viz", "sbts.core.demo")), name


def _exported(kind):
    out = []
    for name in api.__all__:
        obj = getattr(api, name)
        if kind(obj):
            out.append(pytest.param(obj, id=name))
    return out


def _has(doc: str, section: str) -> bool:
    return re.search(rf"^{section}\n-{{{len(section)}}}$", doc, re.M) is not None


@pytest.mark.parametrize("func", _exported(inspect.isfunction))
def test_exported_functions_have_numpy_docstrings(func):
    doc = inspect.getdoc(func) or ""
    assert doc and not doc[0].isspace(), "no docstring"
    signature = inspect.signature(func)
    if [p for p in signature.parameters if p not in ("self", "cls")]:
        assert _has(doc, "Parameters"), doc
    if signature.return_annotation not in (None, "None", inspect.Signature.empty):
        assert _has(doc, "Returns") or _has(doc, "Yields"), doc


@pytest.mark.parametrize("cls", _exported(inspect.isclass))
def test_exported_classes_have_numpy_docstrings(cls):
    doc = inspect.getdoc(cls) or ""
    assert doc, "no docstring"
    takes = dataclasses.is_dataclass(cls) or (
        not issubclass(cls, (BaseException, enum.Enum)) and cls.__init__ is not object.__init__
        and len(inspect.signature(cls).parameters) > 0)
    if takes:
        assert _has(doc, "Parameters") or _has(doc, "Attributes"), doc
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        if callable(func) and not inspect.isclass(func):
            assert (func.__doc__ or "").strip(), f"{cls.__name__}.{attr} has no docstring"


# ----------------------------------------------------------------------------- the docs and the example
def _python_blocks(markdown: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown.read_text(encoding="utf-8"), re.S)


def _sbts_imports(code: str) -> list[tuple[str, str]]:
    """(module, name) of every import from sbts in ``code`` (``import sbts.x`` gives (module, ""))."""
    out = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sbts"):
            out += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names if a.name.startswith("sbts")]
    return out


def _only_api(imports: list[tuple[str, str]]) -> list[str]:
    """Imports other than ``sbts.core.api``'s names and the user-facing ``sbts`` package (``import sbts``,
    ``sbts.plot``, the names of ``sbts.__all__``: the Python API of scripts and notebooks)."""
    import sbts

    def allowed(m: str, n: str) -> bool:
        if m == "sbts.core.api":
            return n in api.__all__
        return (m, n) in (("sbts", ""), ("sbts.plot", "")) or (m == "sbts" and n in sbts.__all__)

    return [f"{m}.{n}" if n else m for m, n in imports if not allowed(m, n)]


@pytest.mark.parametrize("doc", ["docs/adding-a-reader.md", "README.md"])
def test_the_docs_import_only_the_api(doc):
    blocks = _python_blocks(REPO / doc)
    assert blocks, f"{doc} has no python example"
    imports = [i for code in blocks for i in _sbts_imports(code)]
    assert imports, f"the examples of {doc} import nothing from sbts"
    assert not _only_api(imports), _only_api(imports)


def test_the_example_plugin_imports_only_the_api():
    files = sorted((REPO / "tests" / "thirdparty").rglob("*.py"))
    assert any(f.parent.name == "sbts_toy" for f in files)
    bad = {str(f.relative_to(REPO)): _only_api(_sbts_imports(f.read_text(encoding="utf-8"))) for f in files}
    assert not {k: v for k, v in bad.items() if v}


def test_the_doc_check_can_fail():
    assert _only_api(_sbts_imports("from sbts.core.plugin.interfaces import Reader\nimport sbts.core.io.h5\n"
                                   "from sbts.core.api import NoSuchName, Reader\n")) == [
        "sbts.core.plugin.interfaces.Reader", "sbts.core.io.h5", "sbts.core.api.NoSuchName"]
