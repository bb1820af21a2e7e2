"""The package's shape: its layers import only downward, its public names are typed and complete."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import yart_jupyter

PACKAGE = Path(yart_jupyter.__file__).parent

#: The layers, lowest first (docs/architecture.md draws the same picture). A unit (a subpackage or a
#: top-level module) may import only units of lower layers; units of one layer do not import each other.
LAYERS: list[set[str]] = [
    {"_version"},
    {"core"},
    {"errors", "present", "emulator"},
    {"media"},
    {"clients", "store"},
    {"engine"},
    {"experiments", "batches"},
    {"notebook"},
    {"api"},
    {"cli"},
    {"__init__"},
]


def unit_imports() -> dict[str, set[str]]:
    """Each unit's imports of other units of the package (relative imports, lazy ones included)."""
    edges: dict[str, set[str]] = {}
    for file in PACKAGE.rglob("*.py"):
        parts = list(file.relative_to(PACKAGE).with_suffix("").parts)
        unit = parts[0]
        base = parts[:-1]  # the package a relative import starts from (for __init__ too)
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            target = [*base[: len(base) - (node.level - 1)], *(node.module.split(".") if node.module else [])]
            for name in [target[0]] if target else [alias.name for alias in node.names]:
                if name != unit:
                    edges.setdefault(unit, set()).add(name)
    return edges


def test_every_unit_is_in_a_layer_and_imports_only_downward() -> None:
    layer_of = {unit: index for index, layer in enumerate(LAYERS) for unit in layer}
    units = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert units == set(layer_of), f"units without a layer: {units - set(layer_of)}; gone: {set(layer_of) - units}"
    upward = [(unit, target) for unit, targets in unit_imports().items() for target in targets
              if layer_of[target] >= layer_of[unit]]
    assert upward == [], f"imports that do not go down a layer: {upward}"


def test_no_module_over_400_lines() -> None:
    long = {str(f.relative_to(PACKAGE)): n for f in PACKAGE.rglob("*.py")
            if (n := len(f.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_the_http_path_loads_no_server_code() -> None:
    code = ("import sys, yart_jupyter.clients.client, yart_jupyter.engine, yart_jupyter.api; "
            "print(sorted(m for m in sys.modules if m.startswith('yart_jupyter.emulator')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in yart_jupyter.__all__:
        assert getattr(yart_jupyter, name) is not None
    assert {"info", "generate", "batch", "errors", "YandexArtClient"} <= set(yart_jupyter.__all__)
    with pytest.raises(AttributeError):
        yart_jupyter.no_such_name  # noqa: B018


@pytest.mark.slow  # runs a whole tool
def test_users_type_checkers_see_the_real_types(tmp_path: Path) -> None:
    """``yart_jupyter.generate`` is a coroutine function to mypy, not ``Any``: a wrong use is caught."""
    user = tmp_path / "user.py"
    user.write_text("import yart_jupyter\n\n"
                    "wrong: int = yart_jupyter.generate\n"
                    "also_wrong: str = yart_jupyter.GeneratedImage\n"
                    "fine = yart_jupyter.errors.QuotaExceededError\n")
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", str(user)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "MYPYPATH": str(PACKAGE.parent)})  # an editable install hides it
    assert 'user.py:3: error: Incompatible types in assignment' in done.stdout, done.stdout
    assert 'user.py:4: error: Incompatible types in assignment' in done.stdout, done.stdout
    assert "user.py:5" not in done.stdout, done.stdout


def test_the_architecture_page_names_every_module() -> None:
    """docs/architecture.md matches the tree: every subpackage and module is on it."""
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for file in sorted(PACKAGE.rglob("*.py")):
        relative = file.relative_to(PACKAGE)
        if relative.name == "__init__.py" and len(relative.parts) > 1:
            name = f"{relative.parent.as_posix()}/"
        elif len(relative.parts) > 1 and relative.parts[0] in ("emulator", "notebook") and relative.parent.name in (
                "emulator", "magics") and relative.name != "__main__.py":
            name = relative.stem  # listed by name in their package's row
        else:
            name = relative.as_posix() if relative.name != "__init__.py" else "__init__.py"
        if name not in page:
            missing.append(str(relative))
    assert missing == []
