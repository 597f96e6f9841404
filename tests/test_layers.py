"""The house in layers: every import inside ``phyt2v/`` (deferred and ``TYPE_CHECKING`` ones included) goes to the
same layer or a lower one, no two modules import each other through any chain, and no module takes another's
private names. Read from the source with ``ast``: nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "phyt2v"

# Low to high. A module may import its own layer's modules and any lower layer's, never a higher one's.
LAYERS: list[set[str]] = [
    {"errors"},
    {"resources", "roles", "schemas"},
    {"config"},
    {"registry"},
    {"store"},       # what a run leaves on disk
    {"tiny"},        # random-weight models for smoke runs and tests
    {"runtime"},     # where models run: devices, quantization, the memory plan, swap, lanes
    {"vlm"},         # the shared VLM runtime
    {"llms", "generators", "captioners", "scorers"},  # the roles' backends: siblings never import each other
    {"loop"},        # one run
    {"batch"},       # many prompts
    {"views"},       # reading finished runs
    {"cli", "__main__", "__init__"},
]
SIBLINGS = {"llms", "generators", "captioners", "scorers"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def area(mod: str) -> str:
    """The layer unit of a module: its first name under phyt2v (a subpackage or a top-level module)."""
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rank(mod: str) -> int:
    a = area(mod)
    for i, layer in enumerate(LAYERS):
        if a in layer:
            return i
    raise AssertionError(f"{mod}: its area '{a}' is in no layer of tests/test_layers.py; add it where it belongs")


def imports_of(mod: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or '', line) for every phyt2v import in ``mod``, wherever it stands."""
    path = MODULES[mod]
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] == "phyt2v"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "phyt2v":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((sub, "", node.lineno) if sub in MODULES else (target, a.name, node.lineno))
    return found


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod in MODULES:
        for target, _, _ in imports_of(mod):
            while target not in MODULES and "." in target:  # phyt2v.x.y where y is a name, not a module
                target = target.rpartition(".")[0]
            if target in MODULES and target != mod:
                graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_walker_sees_deferred_and_type_checking_imports():
    names = {(t, n) for t, n, _ in imports_of("phyt2v.loop.refiner")}
    assert ("phyt2v.store.locks", "FolderLock") in names  # a top-level import
    assert ("phyt2v.runtime.memplan", "") in names  # `from ..runtime import memplan`: a module as a name
    deferred = {(t, n) for t, n, _ in imports_of("phyt2v.cli.refine")}
    assert ("phyt2v.loop.refiner", "Refiner") in deferred  # imported inside the command's function


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert cycles(edges()) == []


def test_no_lower_layer_imports_a_higher_one():
    bad = []
    for mod in MODULES:
        for target, name, line in imports_of(mod):
            if target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target not in MODULES:
                continue
            if rank(target) > rank(mod):
                bad.append(f"{mod}:{line} imports {target} (layer {area(target)} is above {area(mod)})")
            elif area(mod) != area(target) and {area(mod), area(target)} <= SIBLINGS:
                bad.append(f"{mod}:{line} imports {target} (role packages never import each other)")
    assert bad == []


def test_the_loop_reaches_backends_only_through_the_registry():
    """The loop imports the roles, never a backend package (nor torch-heavy helpers of theirs)."""
    bad = [f"{m}:{line} imports {t}" for m in MODULES if area(m) == "loop"
           for t, _, line in imports_of(m) if area(t) in SIBLINGS | {"vlm", "tiny"}]
    assert bad == []


def test_no_module_takes_another_modules_private_names():
    bad = []
    for mod in MODULES:
        for target, name, line in imports_of(mod):
            if name.startswith("_") and target != mod:
                bad.append(f"{mod}:{line} imports {target}.{name}")
            private_module = any(p.startswith("_") and p != "__init__" for p in target.split("."))
            if private_module and target.rpartition(".")[0] != mod.rpartition(".")[0]:
                bad.append(f"{mod}:{line} imports the private module {target} from outside its package")
    assert bad == []


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_every_module_is_under_400_lines(mod):
    n = len(MODULES[mod].read_text(encoding="utf-8").splitlines())
    assert n <= 400, f"{MODULES[mod]} has {n} lines; split it"


def test_the_top_level_holds_at_most_a_dozen_modules():
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= 12, top
