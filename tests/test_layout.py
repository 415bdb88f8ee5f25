"""The tree shows the architecture: imports flow one way, between the parts and inside nat/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# inside the product: what each part may import of the package
ALLOWED = {
    "nat.instance": set(),  # ships alone to the instance: standard library only
    "nat.inputs": {"nat.inputs"},
    "nat.design": {"nat.inputs", "nat.design", "nat.instance"},
    "nat.components": {"nat.inputs", "nat.design", "nat.components", "nat.instance"},
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_each_part_of_the_product_imports_only_what_is_below_it() -> None:
    checked = 0
    for part, allowed in ALLOWED.items():
        for path in (ROOT / part.replace(".", "/")).glob("*.py"):
            ours = {name for name in imports_of(path) if name.split(".")[0] == "nat"}
            # `from nat.inputs import options` names the part; the module is what counts
            wrong = {name for name in ours
                     if not any(name == a or name.startswith(a + ".") for a in allowed)
                     and name not in {f"{a}" for a in ALLOWED}}
            assert not wrong, f"{module_of(path)} imports {sorted(wrong)}"
            checked += 1
    assert checked >= 20


def test_the_product_never_imports_the_commands_the_test_bed_or_the_tests() -> None:
    for path in (ROOT / "nat").rglob("*.py"):
        outside = {name for name in imports_of(path)
                   if name.split(".")[0] in ("natctl", "testbed", "bench", "tests", "scripts")}
        assert not outside, f"{module_of(path)} imports {sorted(outside)}"
