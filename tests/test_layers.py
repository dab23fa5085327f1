"""The house rules, checked on the real imports (docs/architecture.md):
imports point one way (model/errors <- storage <- auth <- catalog/ingest/query <- services <-
dialects <- api <- app <- cli/server/web); dialects never touch storage; auth never imports
ingest; nothing imports cli or server but entry points; driver modules stay in their backend;
no module over 500 lines."""

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
    "auth": 2,
    "catalog": 3,
    "ingest": 3,
    "query": 3,
    "alerts": 3,
    "services": 4,
    "dialects": 5,
    "console": 5,
    "mqtt": 5,
    "api": 6,
    "app": 7,
    "cli": 8,
    "server": 8,
}
MAX_LINES = 500
ALLOWED_SIDEWAYS = {("times", "model")}
# `sensorbase serve` runs the server.
ALLOWED_SIDEWAYS |= {("cli", "server")}
# The MQTT front end takes payloads in the dialects' shapes, with their own decoders.
ALLOWED_SIDEWAYS |= {("mqtt", "dialects")}


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


# The client's offline buffer is an SQLite file of its own, on the gateway, not the server's store.
CLIENT_BUFFER = "client/queue.py"


def test_drivers_stay_in_their_backend() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        for module in imports(path):
            home = DRIVER_HOME.get(module.split(".")[0])
            if module == "sqlite3" and rel == CLIENT_BUFFER:
                continue
            if home is not None and not rel.startswith(home + "/"):
                wrong.append(f"{rel} imports {module}")
    assert wrong == []


def _offenders(rule: str) -> list[str]:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        here = top(path)
        for module in imports(path):
            if not module.startswith("sensorbase."):
                continue
            there = module.split(".")[1]
            if rule == "dialects" and here == "dialects" and there == "storage":
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
            if rule == "auth" and here == "auth" and there == "ingest":
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    return wrong


def test_dialects_never_touch_storage() -> None:
    """A dialect decodes, calls the catalog, the ingest pipeline or the query service, and
    words the reply: it never sees a Reader or a WriteTx."""
    assert _offenders("dialects") == []


def test_auth_never_imports_ingest() -> None:
    assert _offenders("auth") == []


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


def test_the_client_imports_only_itself() -> None:
    """`sensorbase.client` runs where the server's dependencies are not installed."""
    wrong = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in (PACKAGE / "client").rglob("*.py")
        for module in imports(path)
        if module.startswith("sensorbase") and not module.startswith("sensorbase.client")
    ]
    assert wrong == []


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
