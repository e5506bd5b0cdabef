"""The package's shape: stages import only earlier stages, no import circles, small modules,
and the loop's unit tests really run without CASA."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "pclean")

# the stages in data-flow order; a module may import its own stage and earlier ones
STAGES = ["pclean.products", "pclean.jsonable", "pclean.casa", "pclean.sim", "pclean.params", "pclean.workers",
          "pclean.worker_preload", "pclean.run", "pclean.gather", "pclean.view",
          "pclean.compare", "pclean.api", "pclean.cli", "pclean"]
RANK = {"pclean.products": 0, "pclean.jsonable": 0, "pclean.casa": 0, "pclean.sim": 1, "pclean.params": 1,
        "pclean.workers": 2, "pclean.worker_preload": 2, "pclean.run": 3, "pclean.gather": 4,
        "pclean.view": 5, "pclean.compare": 6, "pclean.api": 7, "pclean.cli": 8, "pclean": 9}


def _modules() -> dict[str, str]:
    out = {}
    for folder, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


def _stage(module: str) -> str:
    return max((s for s in STAGES if module == s or module.startswith(s + ".")), key=len)


def _imports(path: str, modules: dict) -> set[str]:
    """Every pclean module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "pclean"}
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] == "pclean":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
    return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(p, modules) - {m} for m, p in modules.items()}


def test_no_import_runs_back_up_the_stages():
    back = [f"{a} imports {b}" for a, deps in _graph().items() for b in deps
            if a != "pclean" and RANK[_stage(b)] > RANK[_stage(a)]]
    assert not back, back


def test_no_import_circles():
    graph = _graph()
    graph["pclean"] = set()  # the package's lazy names load on attribute access only
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, circles


def test_no_module_over_400_lines():
    long = {m: n for m, p in _modules().items() if (n := len(open(p).readlines())) > 400}
    assert not long, long


def test_every_subpackage_says_what_it_holds():
    for m, p in _modules().items():
        if p.endswith("__init__.py"):
            assert ast.get_docstring(ast.parse(open(p).read())), m


def test_the_loop_and_iteration_tests_run_without_casa_in_under_a_second():
    """casatools and casatasks made unimportable: the loop, the iteration control and the
    chunk logic still pass, and their tests (set-up, call and tear-down of each, as pytest
    times them; not the interpreter's start or the imports) take under a second together."""
    env = dict(os.environ, PCLEAN_TESTS_WITHOUT_CASA="1")
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-m", "pytest", "-vv", "--durations=0",
                          "-p", "no:cacheprovider", os.path.join(here, "test_loop.py"),
                          os.path.join(here, "test_chunk_logic.py")],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    summary = out.stdout.strip().splitlines()[-1]
    m = re.search(r"(\d+) passed", summary)
    assert m and int(m.group(1)) >= 15, summary
    times = [float(t) for t in re.findall(r"^([\d.]+)s (?:setup|call|teardown) ", out.stdout,
                                           re.M)]
    assert len(times) >= 3 * int(m.group(1)), out.stdout[-2000:]
    assert sum(times) < 1.0, f"{sum(times):.2f} s: {summary}"
