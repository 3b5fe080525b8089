"""The layout holds: no import loops, the core never imports a shell, the top level is small.

The graph is read from the source (imports inside functions count too: a lazy import
still ties two modules together), so a new loop or a core module reaching into the notebook
layer fails here before anyone has to untangle it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jupyter_mlops"
# The shells: they parse input, call the core and render. Everything else is the core.
SHELLS = ("jupyter_mlops.magics", "jupyter_mlops.server", "jupyter_mlops.cli",
          "jupyter_mlops.serving", "jupyter_mlops.dashboards", "jupyter_mlops.commands")
# What the core must never import: the notebook, the web server, the terminal.
FORBIDDEN_IN_CORE = ("jupyter_mlops.magics", "jupyter_mlops.server", "jupyter_mlops.cli",
                     "jupyter_mlops.commands", "IPython", "ipywidgets", "tornado", "jupyter_server")
TOP_LEVEL_FILES = {"__init__.py", "_version.py", "errors.py", "entities.py", "validation.py",
                   "pytest_plugin.py", "cluster.py",
                   "cli.py", "py.typed"}
WINGS = {"store", "tracking", "registry", "evaluation", "drift", "serving", "monitoring",
         "dashboards", "magics", "server", "commands", "teamsync", "pipelines"}


def _modules() -> dict[str, tuple[Path, list[str]]]:
    """Module name → (file, the package its relative imports start from)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            package = parts
        else:
            package = parts[:-1]
        found[".".join(parts)] = (path, package)
    return found


def _imports(path: Path, package: list[str], modules) -> set[str]:
    """Every module ``path`` imports, inside functions too; external ones by top name."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                targets.add(sub if sub in modules else target)
    return targets


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, package, modules) for name, (path, package) in modules.items()}


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), i.e. import loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                loops.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return loops


def _is_core(module: str) -> bool:
    return module != "jupyter_mlops" and not module.startswith(SHELLS)


def _within(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def test_the_graph_is_read_from_the_source(graph):
    # A check that finds nothing because it read nothing would pass forever.
    assert "jupyter_mlops.store.current" in graph["jupyter_mlops.tracking.runs"]
    assert "jupyter_mlops.tracking.capture" in graph["jupyter_mlops.registry.versions"]
    assert _loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_loops(graph):
    assert _loops(graph) == []


def test_the_core_never_imports_a_shell(graph):
    offences = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items() if _is_core(module)
        for target in targets for forbidden in FORBIDDEN_IN_CORE if _within(target, forbidden))
    assert offences == []


def test_the_command_table_needs_only_the_standard_library(graph):
    # Both the terminal and %load_ext import it: it must not bring IPython, a handler or
    # the core with it.
    table = {m: targets for m, targets in graph.items() if _within(m, "jupyter_mlops.commands")}
    assert len(table) >= 3
    outside = sorted(f"{module} imports {target}" for module, targets in table.items()
                     for target in targets
                     if not _within(target, "jupyter_mlops.commands")
                     and target.split(".")[0] not in sys.stdlib_module_names)
    assert outside == []


def test_the_core_never_asks_ipython_for_its_shell():
    offences = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                if _is_core(".".join(("jupyter_mlops", *path.relative_to(PACKAGE)
                                      .with_suffix("").parts)))
                and "get_ipython" in path.read_text(encoding="utf-8")
                and path.name != "cellnames.py"]  # it lists IPython's builtin names
    assert offences == []


def test_the_top_level_holds_the_entry_points_and_the_wings():
    files = {p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix in {".py", ".typed"}}
    folders = {p.name for p in PACKAGE.iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    assert files == TOP_LEVEL_FILES
    assert folders == WINGS


# Names through which a module would write to the store.
STORE_WRITES = {"_store", "write", "put_bytes", "put_file", "keep_figure", "add_figure",
                "save_figures", "add_datasets", "write_datasets", "register_model", "set_alias"}
CONSOLE = {"sys.stderr", "sys.stdout"}


def _store_writes(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        name = node.attr if isinstance(node, ast.Attribute) else (
            node.id if isinstance(node, ast.Name) else None)
        if name is None or not (name in STORE_WRITES or name.startswith("log_")):
            continue
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) in CONSOLE:
            continue  # a line on the console is not a write to the store
        found.append(f"{name} (line {node.lineno})")
    return found


def test_the_write_check_sees_writes():
    assert _store_writes("result._store.artifacts.put_bytes(b'')") == [
        "put_bytes (line 1)", "_store (line 1)"]
    assert _store_writes("import sys\nsys.stderr.write('50%')") == []


def test_dashboards_only_draw():
    offences = {str(path.relative_to(PACKAGE)): writes
                for path in (PACKAGE / "dashboards").glob("*.py")
                if (writes := _store_writes(path.read_text(encoding="utf-8")))}
    assert offences == {}


# One JSON codec (store/jsoncodec.py) spells NaN and the infinities; everything else asks it.
CODEC = PACKAGE / "store" / "jsoncodec.py"
NONFINITE_SPELLINGS = {"nan", "inf", "-inf", "NaN", "Infinity", "-Infinity", "Inf", "-Inf"}


def _loose_json_writes(source: str) -> list[str]:
    """``json.dumps``/``json.dump`` calls that leave ``allow_nan`` True: a NaN would become
    the bare ``NaN`` token, which no strict parser (a browser's, SQLite's) reads."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (alias.name == "json" and alias.asname) or
                (getattr(node, "module", None) == "json" and alias.name in ("dump", "dumps"))
                for alias in node.names):
            found.append(f"json imported under another name (line {node.lineno})")
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("dumps", "dump")
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "json"):
            continue
        strict = any(k.arg == "allow_nan" and isinstance(k.value, ast.Constant)
                     and k.value.value is False for k in node.keywords)
        if not strict:
            found.append(f"json.{node.func.attr} without allow_nan=False (line {node.lineno})")
    return found


def _nonfinite_spellings(source: str) -> list[str]:
    """Strings that spell a non-finite number, other than read by ``float()`` or compared
    with: a module that writes them defines an encoding of its own."""
    tree = ast.parse(source)
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "float":
            allowed.update(id(arg) for arg in node.args)
        elif isinstance(node, ast.Compare):
            allowed.update(id(part) for part in (node.left, *node.comparators))
    return [f"{node.value!r} (line {node.lineno})" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in NONFINITE_SPELLINGS
            and id(node) not in allowed]


def test_the_codec_checks_see_what_they_look_for():
    assert _loose_json_writes("json.dumps(x)\njson.dumps(y, allow_nan=False)") == [
        "json.dumps without allow_nan=False (line 1)"]
    assert _loose_json_writes("json.dump(x, f, allow_nan=True)") == [
        "json.dump without allow_nan=False (line 1)"]
    assert _loose_json_writes("from json import dumps\nimport json as j") == [
        "json imported under another name (line 1)",
        "json imported under another name (line 2)"]
    assert _nonfinite_spellings('flags = {"x": "nan"}\nf = float("inf")\nok = "inf" in t') == [
        "'nan' (line 1)"]
    assert _loose_json_writes(CODEC.read_text()) == []  # the codec itself writes strictly
    assert _nonfinite_spellings(CODEC.read_text())  # and is where the names live


def test_only_the_codec_encodes_nonfinite_numbers():
    """Every JSON text is strict, and no module but the codec has its own NaN spelling
    (``dashboards/`` shows numbers to people: "NaN" there is text on a screen)."""
    offences = {}
    for path in PACKAGE.rglob("*.py"):
        if path == CODEC:
            continue
        source = path.read_text(encoding="utf-8")
        found = _loose_json_writes(source)
        if path.parent.name != "dashboards":
            found += _nonfinite_spellings(source)
        if found:
            offences[str(path.relative_to(PACKAGE))] = found
    assert offences == {}


def test_load_ext_imports_only_the_capture(tmp_path):
    """``%load_ext`` must stay fast: the wings a cell has not used (serving, team sync,
    monitoring, drift, evaluation, the registry, dashboards) are imported on first use."""
    import os
    import subprocess

    code = ("import sys, jupyter_mlops\n"
            "from IPython.testing.globalipapp import start_ipython\n"
            "ip = start_ipython()\n"
            "ip.run_line_magic('load_ext', 'jupyter_mlops')\n"
            "print(sorted({m.split('.')[1] for m in sys.modules\n"
            "              if m.startswith('jupyter_mlops.')}))\n"
            "print(jupyter_mlops.serve.__module__)\n")
    env = {**os.environ, "JUPYTER_MLOPS_STORE": str(tmp_path / ".mlops")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env, cwd=tmp_path)
    loaded, serve_module = out.stdout.strip().splitlines()[-2:]
    for wing in ("serving", "teamsync", "monitoring", "drift", "evaluation", "registry",
                 "dashboards", "server"):
        assert f"'{wing}'" not in loaded, (wing, loaded)
    assert "'tracking'" in loaded and "'magics'" in loaded
    assert serve_module == "jupyter_mlops.serving.server"
