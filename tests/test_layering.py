"""engine/__init__.py's LAYERS table is the law: a package imports only the
packages listed for it."""

import ast
from pathlib import Path

import engine

ROOT = Path(engine.__file__).parent


def unit_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_units(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for n in names:
            parts = n.split(".")
            if parts[0] == "engine" and len(parts) > 1:
                out.add(parts[1])
    return out


def test_layering_every_module_imports_only_allowed_packages():
    violations = []
    for path in ROOT.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == ROOT:
            continue
        unit = unit_of(path)
        assert unit in engine.LAYERS, f"{path}: unit {unit!r} missing from engine.LAYERS"
        allowed = engine.LAYERS[unit] | {unit}
        for dep in imported_units(ast.parse(path.read_text())):
            if dep not in allowed:
                violations.append(f"{path.relative_to(ROOT)} imports engine.{dep}")
    assert not violations, violations


def test_layering_table_has_no_cycles():
    seen, stack = set(), set()

    def visit(u):
        assert u not in stack, f"cycle through {u}"
        if u in seen:
            return
        stack.add(u)
        for d in engine.LAYERS[u]:
            visit(d)
        stack.discard(u)
        seen.add(u)

    for u in engine.LAYERS:
        visit(u)
