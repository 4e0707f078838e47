"""The architecture as tests: layers that run one way, click only in CLI modules, one
exception hierarchy with nothing dead, and no declared dependency that nothing imports.

Static (the source is parsed, not imported, except where the hierarchy is inspected), so
an import that runs against the layers fails here even inside a function body, where a
reader skimming the top of a file would miss it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: a package may import only itself and the packages before it.
LAYERS = [("arstore", ROOT / "ipfs"), ("arledger", ROOT / "client"), ("arverifier", ROOT / "verifier"),
          ("ardemo", ROOT / "demo")]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


def _modules(pkg: str, base: Path):
    for path in sorted((base / pkg).rglob("*.py")):
        yield path, ".".join(path.relative_to(base).with_suffix("").parts)


def _imports(path: Path, module: str) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) for every import statement in the file, nested ones too."""
    out = []
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(parts + ([node.module] if node.module else []))
            out.append((node.lineno, target, [a.name for a in node.names]))
    return out


def _all_imports():
    for pkg, base in LAYERS:
        for path, module in _modules(pkg, base):
            for line, target, names in _imports(path, module):
                yield pkg, path, module, line, target, names


def test_layers_run_one_way():
    wrong = []
    for pkg, path, _module, line, target, _names in _all_imports():
        top = target.split(".")[0]
        if top in RANK and RANK[top] > RANK[pkg]:
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {pkg} imports {target} (a layer above it)")
    assert not wrong, "\n".join(wrong)


def test_no_private_names_across_packages():
    wrong = []
    for pkg, path, _module, line, target, names in _all_imports():
        top = target.split(".")[0]
        private = [n for n in names if n.startswith("_") and n != "__future__"]
        if top in RANK and top != pkg and (private or any(p.startswith("_") for p in target.split(".")[1:])):
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {pkg} imports private {target} {private}")
    assert not wrong, "\n".join(wrong)


def test_click_only_in_cli_modules():
    wrong = [f"{path.relative_to(ROOT)}:{line}: {module} imports click"
             for _pkg, path, module, line, target, _names in _all_imports()
             if target.split(".")[0] == "click" and "cli" not in module.split(".")]
    assert not wrong, "\n".join(wrong)


def test_the_checker_catches_an_upward_import(tmp_path):
    """The scan itself: a function-level import of the verifier inside arledger is found."""
    bad = tmp_path / "arledger" / "thing.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from arverifier.check import ClaimChecker\n    from . import errors\n")
    found = _imports(bad, "arledger.thing")
    assert (2, "arverifier.check", ["ClaimChecker"]) in found and (3, "arledger", ["errors"]) in found


# -- floors inside arledger, no circle, imports at the top ----------------------------------

# arledger's own floors, lowest first (docs/ARCHITECTURE.md draws them): a module may import
# its own floor and the floors below. A part not named here sits on the top floor.
FLOORS = [
    {"errors", "modfile", "micro", "merkle", "outdir", "jsondoc", "files"},
    {"execution"},  # running code you did not write: no torch, nothing of training
    {"checkpoint", "harness", "scoring", "manifest", "templates", "runner"},  # training
    {"protocol"},  # the pipeline: run, replay, evaluation, baseline
]
BENCH = ROOT / "bench"


def _unit(module: str) -> str:
    """The part of the house a module belongs to: ``arledger.<part>``, else its package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] in ("arledger", "bench") and len(parts) > 1 else parts[0]


def _floor(module: str) -> int:
    part = module.split(".")[1] if module.startswith("arledger.") else ""
    return next((i for i, names in enumerate(FLOORS) if part in names), len(FLOORS))


def _graph(units: bool) -> dict[str, set[str]]:
    """Who imports whom (function-level imports too): modules, or parts of the house."""
    modules = {m: p for pkg, base in LAYERS for p, m in _modules(pkg, base)}
    modules.update({f"bench.{p.stem}": p for p in BENCH.glob("*.py")})

    def known(target: str) -> str:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        for _line, target, names in _imports(path, module):
            for t in [known(f"{target}.{n}") if f"{target}.{n}" in modules else known(target) for n in names or [""]]:
                a, b = (_unit(module), _unit(t)) if units else (module, t)
                if t and a != b and not (module.endswith("__init__") or path.name == "__init__.py"):
                    graph.setdefault(a, set()).add(b)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_arledger_floors_run_one_way():
    wrong = []
    for pkg, path, module, line, target, _names in _all_imports():
        if pkg == "arledger" and target.startswith("arledger.") and _floor(target) > _floor(module):
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {target} (a floor above it)")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("units", [False, True], ids=["modules", "parts"])
def test_no_circles(units):
    """No two modules, and no two parts of the house (``arledger.chain``, ``arledger.devnet``...),
    import each other, even through others: a package's face (``__init__``) is not counted."""
    assert _circles(_graph(units)) == []


def test_the_circle_finder_finds_one():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


LAZY = "lazy:"  # the comment a function-level import carries, saying why start-up time needs it


def _function_level_imports(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    found = []

    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                walk(child, True)
            elif isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                said = lines[child.lineno - 1] + (lines[child.lineno - 2] if child.lineno > 1 else "")
                if LAZY not in said:
                    found.append(child.lineno)
            else:
                walk(child, in_function)

    walk(ast.parse("\n".join(lines)), False)
    return found


def test_imports_are_at_the_top():
    """An import inside a function hides an edge from a reader (and from the picture of the
    house); one is allowed only where start-up time needs it, with a ``# lazy: why`` comment.
    The templates are task code (loaded by path), not modules of the house."""
    paths = [p for pkg, base in LAYERS for p, _m in _modules(pkg, base) if "templates" not in p.parts]
    wrong = [f"{p.relative_to(ROOT)}:{line}" for p in [*paths, *BENCH.glob("*.py")]
             for line in _function_level_imports(p)]
    assert not wrong, "imports inside functions (move them to the top, or say `# lazy: why`):\n" + "\n".join(wrong)


def test_the_placement_check_sees_a_hidden_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\n\n\ndef f():\n    import json\n    import sys  # lazy: start-up time\n")
    assert _function_level_imports(f) == [5]


# -- one exception hierarchy ----------------------------------------------------------------

HOMES = {"arledger.errors", "arstore.errors", "arledger.chain.errors"}


def _package_exceptions() -> list[type]:
    seen = []
    for pkg, base in LAYERS:
        for _path, module in _modules(pkg, base):
            if ".templates." in module or module.endswith("__main__"):
                continue  # experiment code, loaded by the runner, not by the library
            mod = importlib.import_module(module)
            for _name, obj in inspect.getmembers(mod, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__ == module and obj not in seen:
                    seen.append(obj)
    return seen


def _raised_or_subclassed() -> set[str]:
    names = set()
    for pkg, base in LAYERS:
        for path, _module in _modules(pkg, base):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    names.add(exc.attr if isinstance(exc, ast.Attribute) else getattr(exc, "id", ""))
                elif isinstance(node, ast.Call):  # built to be raised elsewhere (revert decoding)
                    names.add(node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", ""))
                elif isinstance(node, ast.ClassDef):
                    names.update(b.id for b in node.bases if isinstance(b, ast.Name))
    return names


def test_one_place_lists_every_exception_and_none_is_dead():
    from arledger import errors

    tree = errors.__doc__
    used = _raised_or_subclassed()
    problems = []
    for cls in _package_exceptions():
        if cls.__name__.startswith("_"):
            continue  # private control flow (arverifier.check._Decided)
        if cls.__module__ not in HOMES:
            problems.append(f"{cls.__module__}.{cls.__name__}: defined outside {sorted(HOMES)}")
        if not re.search(rf"\b{cls.__name__}\b", tree):
            problems.append(f"{cls.__name__}: missing from the tree in arledger/errors.py")
        if cls.__name__ not in used and cls.__name__ not in ("ArledgerError", "StoreError"):
            problems.append(f"{cls.__name__}: never raised, built nor subclassed (dead)")
    assert not problems, "\n".join(problems)


def test_every_error_has_one_of_the_two_roots():
    from arledger.errors import ArledgerError
    from arstore.errors import StoreError

    strays = [f"{c.__module__}.{c.__name__}" for c in _package_exceptions()
              if not c.__name__.startswith("_") and not issubclass(c, (ArledgerError, StoreError))]
    assert not strays


# -- dependencies ---------------------------------------------------------------------------


def _imported_tops(*dirs: Path) -> set[str]:
    tops = set()
    for d in dirs:
        for path in d.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    tops.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    tops.add(node.module.split(".")[0])
    return tops


def _dist_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]


def _imports_of_dist() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for top, dists in packages_distributions().items():
        for d in dists:
            out.setdefault(d.lower().replace("_", "-"), set()).add(top)
    return out


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Declared, and used without an import statement (say how, so a reader can check).
USED_WITHOUT_IMPORT = {
    "pytest-timeout": "the pytest plugin behind [tool.pytest.ini_options] timeout",
    "pytest-xdist": "the pytest plugin behind `make test`'s -n 2 --dist loadfile (two workers, a module each)",
    "numpy": "Tensor.numpy() in arledger.checkpoint (torch imports numpy itself)",
    "jinja2": "starlette.templating.Jinja2Templates in arledger.dashboard.app (starlette imports jinja2 itself)",
}


@pytest.mark.parametrize("group,dirs", [
    ("dependencies", [ROOT / "client", ROOT / "verifier", ROOT / "ipfs", ROOT / "demo"]),
    ("test", [ROOT / "tests"]),
])
def test_every_declared_dependency_is_imported(group, dirs):
    """Each one imported by the code that needs it, or used without an import as the table
    above says (and checked there)."""
    project = PYPROJECT["project"]
    declared = project["dependencies"] if group == "dependencies" else project["optional-dependencies"][group]
    tops, by_dist = _imported_tops(*dirs), _imports_of_dist()
    unused = []
    for req in declared:
        dist = _dist_name(req).lower().replace("_", "-")
        if dist in USED_WITHOUT_IMPORT:
            continue
        modules = by_dist.get(dist)
        assert modules, f"{dist}: declared in pyproject.toml but not installed (make setup)"
        if not modules & tops:
            unused.append(f"{dist} (imports as {sorted(modules)})")
    assert not unused, f"declared in {group} but imported by nothing under {[str(d.name) for d in dirs]}: {unused}"


def test_what_is_used_without_an_import_is_used():
    assert "timeout" in PYPROJECT["tool"]["pytest"]["ini_options"]
    assert ".numpy()" in (ROOT / "client" / "arledger" / "checkpoint.py").read_text()


def test_the_demo_is_a_plugin_of_artrain():
    """`artrain demo` comes from the top layer through the entry point, not an import."""
    import click

    from arledger.cli import main
    from arledger.cli.commands import plugin_commands

    assert "demo" in {c.name for c in plugin_commands()}
    assert main.get_command(click.Context(main), "demo").callback.__module__ == "ardemo.cli"


def test_all_modules_import():
    """Every module of the four packages imports on its own (no cycle the layers hide)."""
    for pkg, _base in LAYERS:
        for info in pkgutil.walk_packages(importlib.import_module(pkg).__path__, prefix=f"{pkg}."):
            if ".templates." not in info.name:
                importlib.import_module(info.name)


def test_a_plugin_cannot_replace_a_builtin_command():
    from arledger.cli.commands import _not_taken, all_commands

    taken = {c.name for c in all_commands()}
    with pytest.warns(UserWarning, match="'ledger' ignored"):
        assert not _not_taken("ledger", set(taken))
