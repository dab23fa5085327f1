"""Imports point one way (DESIGN.md): model/errors ← storage ← ingest/query/auth ← dialects ← api.
Driver modules stay inside their backend; SQL stays in storage/."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "src" / "sensorbase"
LAYER = {
    "model": 0,
    "errors": 0,
    "times": 0,
    "settings": 0,
    "limits": 0,
    "storage": 1,
    "ingest": 2,
    "query": 2,
    "auth": 2,
    "services": 3,
    "dialects": 4,
    "api": 5,
    "app": 6,
    "cli": 7,
    "web": 7,
}
ALLOWED_SIDEWAYS = {("times", "model")}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def top(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def test_imports_point_one_way() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        here = top(path)
        if here not in LAYER:
            continue
        for module in imports(path):
            if not module.startswith("sensorbase."):
                continue
            there = module.split(".")[1]
            if there in LAYER and LAYER[there] > LAYER[here]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
            if (
                there in LAYER
                and LAYER[there] == LAYER[here]
                and there != here
                and (here, there) not in ALLOWED_SIDEWAYS
            ):
                wrong.append(f"{path.relative_to(PACKAGE)} imports sibling {module}")
    assert wrong == []


# Each driver belongs to one backend package; its exceptions are translated there.
DRIVER_HOME = {
    "sqlite3": "storage/sqlite",
    "psycopg": "storage/postgres",
    "psycopg_pool": "storage/postgres",
}


def test_drivers_stay_in_their_backend() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        for module in imports(path):
            home = DRIVER_HOME.get(module.split(".")[0])
            if home is not None and not rel.startswith(home + "/"):
                wrong.append(f"{rel} imports {module}")
    assert wrong == []
