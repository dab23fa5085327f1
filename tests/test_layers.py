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
    "server": 7,
    "web": 7,
}
# auth's token service commits through the ingest committer: a sibling it may use.
ALLOWED_SIDEWAYS = {("auth", "ingest"), ("times", "model")}
# `sensorbase serve` runs the server.
ALLOWED_SIDEWAYS |= {("cli", "server")}


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


def test_drivers_stay_in_their_backend() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        for module in imports(path):
            driver = module.split(".")[0]
            if driver == "sqlite3" and not path.name.startswith("sqlite"):
                wrong.append(str(path))
            # The PostgreSQL backend: postgres.py and its pg_*.py parts (schema, queries).
            postgres = path.name == "postgres.py" or path.name.startswith("pg_")
            if driver in ("psycopg", "psycopg_pool") and not postgres:
                wrong.append(str(path))
    assert wrong == []


# Who may import the entry points' packages: `cli` is the `sensorbase` command; `server` runs
# under it alone. (A `sensorbase/__main__.py` would be an entry point too.)
ENTRY_POINTS = {"cli": {"cli", "__main__"}, "server": {"server", "cli", "__main__"}}


def test_only_entry_points_import_cli_and_server() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        here = top(path)
        for module in imports(path):
            parts = module.split(".")
            if parts[0] != "sensorbase" or len(parts) < 2 or parts[1] not in ENTRY_POINTS:
                continue
            if here not in ENTRY_POINTS[parts[1]]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert wrong == []
