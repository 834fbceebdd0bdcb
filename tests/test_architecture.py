"""The layering rules of docs/architecture.md, checked on the source tree itself.

- `sole_r1_model`, `sole_r1_sim` and `sole_r1_rl` are libraries without ROS: every module imports with rclpy
  (and every ROS message package) made unimportable.
- No import cycles anywhere in `src/`, counting imports placed inside functions (they hide cycles, not remove them).
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROS_FREE_PACKAGES = ("sole_r1_model", "sole_r1_sim", "sole_r1_rl")
# Modules that need an optional suite installed in another venv (LIBERO) or a GPU-only extension are imported
# lazily by their callers; they are still checked for cycles below.
OPTIONAL_IMPORT_FAILURES = {"libero"}

_BLOCK_ROS = r"""
import importlib.abc, pkgutil, sys, importlib
BLOCKED = ("rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "geometry_msgs", "std_srvs", "diagnostic_msgs",
           "visualization_msgs", "builtin_interfaces", "sole_r1.msg", "sole_r1.srv", "sole_r1_ros")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{name} is blocked: ROS-free libraries must not import it")
        return None
sys.meta_path.insert(0, Block())
package = importlib.import_module(sys.argv[1])
optional = set(sys.argv[2].split(","))
failed = []
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    try:
        importlib.import_module(info.name)
    except ImportError as error:
        if getattr(error, "name", None) and error.name.split(".")[0] in optional:
            continue
        failed.append(f"{info.name}: {error}")
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


@pytest.mark.parametrize("package", ROS_FREE_PACKAGES)
def test_library_imports_without_ros(package):
    env = dict(os.environ, PYTHONPATH=str(SRC))
    result = subprocess.run([sys.executable, "-c", _BLOCK_ROS, package, ",".join(OPTIONAL_IMPORT_FAILURES)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, f"{package} modules import ROS:\n{result.stdout}\n{result.stderr[-2000:]}"


def test_the_ros_blocker_catches_a_ros_import(tmp_path):
    # The check above is only worth something if an rclpy import really fails under it.
    pkg = tmp_path / "leaky"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "node.py").write_text("import rclpy\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", _BLOCK_ROS, "leaky", ""], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 1 and "leaky.node" in result.stdout


def module_name(path: Path, root: Path = SRC) -> str:
    """Dotted module name of a file under `root`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """Project module -> project modules it imports anywhere in its body (functions included)."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package __init__ that re-exports its submodules is not a cycle with them: Python imports the
    # submodule fully before the __init__ reads the name. Edges *from* an __init__ to its own subpackages go.
    return {name: {t for t in targets if not t.startswith(name + ".")} for name, targets in graph.items()}


def test_no_import_cycles_in_src():
    found = cycles(_without_package_inits(import_graph()))
    assert not found, "import cycles (move the shared definition where both sides can import it):\n" + "\n".join(
        " <-> ".join(component) for component in found)


def test_cycle_finder_sees_a_cycle_hidden_inside_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import B\nA = 1\n")
    (pkg / "b.py").write_text("B = 2\ndef late():\n    from pkg.a import A\n    return A\n")
    (pkg / "c.py").write_text("from . import a\n")
    graph = import_graph(tmp_path)
    assert graph["pkg.c"] == {"pkg.a"}
    assert cycles(_without_package_inits(graph)) == [["pkg.a", "pkg.b"]]
