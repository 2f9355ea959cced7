"""Import layering (docs/CONTRACTS.md): a module imports only from its own layer or a lower one, and the top-level
packages import each other without cycles. Imports are read with ``ast`` (module and function level, absolute and
relative); ``importlib.import_module`` strings, such as the family packages named in ``pixtrans.registry``, are not
imports here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pixtrans"

# Top-level unit of pixtrans (a module or a package; "__init__" is the package itself) -> layer, lowest first.
LAYERS: dict[str, int] = {
    "errors": 0,
    "version": 0,
    **dict.fromkeys(("registry", "config", "checkpoints", "losses", "data", "layers", "runtime_env", "configs"), 1),
    "families": 2,
    "infer": 3,
    "eval": 4,
    "train": 5,
    **dict.fromkeys(("web", "cli", "demo", "__main__", "__init__"), 6),
}
# Inside layer 1: registry < config < the leaves (every other layer-1 unit). A leaf may use config and registry but
# no other leaf; config uses registry (to validate a model section); registry uses no layer-1 unit.
LAYER1_RANK = {"registry": 0, "config": 1}
LEAF = 2


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """Whether ``name`` is a pixtrans module or package (rather than a name defined in one)."""
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or base.is_dir()


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, pixtrans module)`` for every import of pixtrans in ``source``, at any depth. ``from X import name``
    counts as an import of ``X.name`` when that is a module, otherwise of ``X``."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "pixtrans"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "pixtrans":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((node.lineno, sub if a.name != "*" and is_module(sub) else target))
    return sorted(found)


def rule_broken(src: str, dst: str) -> str | None:
    """Why unit ``src`` may not import unit ``dst`` (None when it may)."""
    for u in (src, dst):
        if u not in LAYERS:
            return f"pixtrans.{u} is in no layer: add it to LAYERS in tests/test_layers.py and to docs/CONTRACTS.md"
    a, b = LAYERS[src], LAYERS[dst]
    if b > a:
        return f"layer {a} -> higher layer {b}"
    if a == b == 1 and LAYER1_RANK.get(dst, LEAF) >= LAYER1_RANK.get(src, LEAF):
        lower = [u for u, r in LAYER1_RANK.items() if r < LAYER1_RANK.get(src, LEAF)]
        return f"layer 1: {src} may use only {' and '.join(lower) or 'errors'} from its own layer"
    return None


def check(module: str, source: str, is_package: bool = False, path: str = "") -> list[str]:
    """One message per import of ``module`` (its text: ``source``) that breaks the layer rules."""
    path = path or module.replace(".", "/") + ("/__init__.py" if is_package else ".py")
    out = []
    for line, target in imports(module, source, is_package):
        src, dst = unit(module), unit(target)
        why = None if src == dst else rule_broken(src, dst)
        if why:
            out.append(f"{path}:{line} imports {target} ({why})")
    return out


def sources() -> list[tuple[str, str, bool, str]]:
    """``(module, source, is_package, path)`` of every pixtrans/**/*.py."""
    out = []
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(ROOT).as_posix()
        out.append((module_name(f), f.read_text(encoding="utf-8"), f.name == "__init__.py", rel))
    return out


def cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """The groups of units that import one another in a cycle (strongly connected, more than one unit)."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), {}):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {u: reach(u) for u in edges}
    groups = {frozenset(v for v in reachable[u] if u in reachable.get(v, ())) | {u} for u in edges}
    return sorted(sorted(g) for g in groups if len(g) > 1)


def unit_graph() -> dict[str, dict[str, str]]:
    """unit -> {imported unit: 'path:line' of one import that makes the edge}."""
    edges: dict[str, dict[str, str]] = {}
    for module, source, is_package, path in sources():
        for line, target in imports(module, source, is_package):
            src, dst = unit(module), unit(target)
            if src != dst:
                edges.setdefault(src, {}).setdefault(dst, f"{path}:{line}")
    return edges


# ---------------------------------------------------------------------------------------------- the package


def test_every_module_is_in_a_layer():
    missing = sorted({unit(m) for m, *_ in sources()} - set(LAYERS))
    assert not missing, f"pixtrans units in no layer (add them to LAYERS and docs/CONTRACTS.md): {missing}"


def test_no_module_imports_a_higher_layer():
    problems = [
        msg for module, source, is_package, path in sources() for msg in check(module, source, is_package, path)
    ]
    assert not problems, "imports against the layer order (docs/CONTRACTS.md):\n" + "\n".join(problems)


def test_no_import_cycle_between_top_level_units():
    edges = unit_graph()
    found = cycles(edges)
    lines = [
        f"{' <-> '.join(g)}: " + ", ".join(f"{a} -> {b} ({edges[a][b]})" for a in g for b in g if b in edges.get(a, {}))
        for g in found
    ]
    assert not found, "import cycles between top-level units:\n" + "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the checker


def test_checker_reports_a_higher_layer_import_with_file_and_line():
    source = "import torch\n\nfrom ..errors import DataError\n\n\ndef f():\n    from ..train.trainer import Trainer\n"
    assert check("pixtrans.data.io", source) == [
        "pixtrans/data/io.py:7 imports pixtrans.train.trainer (layer 1 -> higher layer 5)"
    ]


def test_checker_resolves_relative_and_absolute_forms():
    assert imports("pixtrans.infer.export", "from .. import __version__\nfrom ..data import transforms\n") == [
        (1, "pixtrans"),
        (2, "pixtrans.data.transforms"),
    ]
    assert imports("pixtrans.families", "from .base import X\nfrom . import pix2pix\n", is_package=True) == [
        (1, "pixtrans.families.base"),
        (2, "pixtrans.families.pix2pix"),
    ]
    assert imports("pixtrans.cli", "import pixtrans.web.app\nfrom pixtrans.families import build_model\n") == [
        (1, "pixtrans.web.app"),
        (2, "pixtrans.families"),
    ]
    # the package's own __init__ is the top layer: a lower layer reading a name from it is a violation
    assert check("pixtrans.infer.export", "def v():\n    from .. import __version__\n") == [
        "pixtrans/infer/export.py:2 imports pixtrans (layer 3 -> higher layer 6)"
    ]


def test_checker_applies_the_layer_1_order():
    assert check("pixtrans.config", "from .data.datasets import build_dataset\n") == [
        "pixtrans/config.py:1 imports pixtrans.data.datasets (layer 1: config may use only registry from its own layer)"
    ]
    assert check("pixtrans.losses", "from .layers.vgg import VGGLoss\n")  # leaves do not import each other
    assert check("pixtrans.registry", "from .config import Section\n")
    assert not check("pixtrans.checkpoints", "from .config import config_from_dict\nfrom .registry import FAMILIES\n")
    assert not check("pixtrans.train.trainer", "from ..eval.evaluate import run_test\nfrom . import distributed\n")
    assert "pixtrans.newthing is in no layer" in check("pixtrans.newthing", "from .errors import DataError\n")[0]


def test_cycle_finder():
    edges = {"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}, "d": {"a": ""}, "e": {}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b": ""}, "b": {}}) == []
