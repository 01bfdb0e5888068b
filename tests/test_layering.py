"""The package layers of DESIGN.md section 2, read from the imports of every module under lib/:
utils -> config -> models, datasets -> evaluation -> engine.  An import never runs up a layer,
modules never import each other in a cycle, and no package takes another's private name."""
import ast
import os

from tests.helpers import ROOT

LAYERS = {"utils": 0, "config": 1, "models": 2, "datasets": 2, "evaluation": 3, "engine": 4}


def _modules():
    """{module name: path} of every module under lib/."""
    found = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "lib")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def _imports(module, path, known):
    """(imported module, imported names) of every import in ``path``, functions included;
    ``from package import submodule`` counts as an import of the submodule."""
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lib"):
                    yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("lib"):
                continue
            names = [a.name for a in node.names]
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            yield from ((s, []) for s in subs)
            others = [n for n in names if f"{target}.{n}" not in known]
            if others:
                yield target, others


def _graph():
    known = _modules()
    return {m: list(_imports(m, p, known)) for m, p in known.items()}


def _layer(module):
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_no_module_imports_a_higher_layer():
    upward = [f"{m} imports {t}" for m, edges in _graph().items() for t, _ in edges
              if _layer(m) is not None and _layer(t) is not None and _layer(t) > _layer(m)]
    assert not upward, upward


def test_every_package_of_lib_has_a_layer():
    assert {m.split(".")[1] for m in _modules() if m != "lib"} == set(LAYERS)


def _cycles(graph):
    """Import cycles of ``graph`` ({module: modules it imports}), each as a closed path."""
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_no_import_cycle():
    modules = _modules()
    graph = {m: {t for t, _ in edges if t in modules and t != m} for m, edges in _graph().items()}
    assert not _cycles(graph)


def test_no_package_imports_another_packages_private_name():
    private = [f"{m} imports {t}.{n}" for m, edges in _graph().items() for t, names in edges
               for n in names if n.startswith("_") and t.split(".")[:2] != m.split(".")[:2]]
    assert not private, private


def test_the_checks_catch_an_upward_import_a_private_name_and_a_cycle(tmp_path):
    known = {"lib.utils.a": "", "lib.engine.b": "", "lib.engine": ""}
    (tmp_path / "a.py").write_text("from ..engine.b import _x\nfrom .. import engine\n")
    edges = list(_imports("lib.utils.a", str(tmp_path / "a.py"), known))
    assert edges == [("lib.engine.b", ["_x"]), ("lib.engine", [])]
    assert _layer("lib.engine.b") > _layer("lib.utils.a")
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
