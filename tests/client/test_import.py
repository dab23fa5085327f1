"""`sensorbase.client` imports without the server's dependencies: in a fresh interpreter where
importing any of them fails, as in a gateway's environment with httpx alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SERVER_ONLY = [
    "fastapi", "starlette", "uvicorn", "numpy", "pcodec", "psycopg", "psycopg_pool",
    "pydantic", "pydantic_settings", "msgspec", "jiter", "typer", "argon2", "jwt", "limits",
    "prometheus_client", "dateutil", "multipart",
]  # fmt: skip

PROGRAM = f"""
import importlib.abc, sys
BLOCKED = {SERVER_ONLY!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is a server dependency")
        return None

sys.meta_path.insert(0, Block())
import sensorbase.client
from sensorbase.client import AsyncClient, Client, Point
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
sensorbase_modules = sorted(m for m in sys.modules if m.startswith("sensorbase"))
print(loaded, sensorbase_modules)
"""


def test_the_client_imports_without_the_servers_dependencies() -> None:
    src = Path(__file__).parents[2] / "src"
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    loaded, _, modules = done.stdout.partition("] ")
    assert loaded == "["
    # Nothing of the server's packages either, only the client's own modules.
    assert all(
        m == "sensorbase" or m.startswith("sensorbase.client") for m in ast.literal_eval(modules)
    )


def test_the_blocker_would_catch_a_server_import() -> None:
    """The check above can fail: the same program importing the server's settings fails."""
    src = Path(__file__).parents[2] / "src"
    program = PROGRAM.replace("import sensorbase.client\n", "import sensorbase.settings\n")
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "is a server dependency" in done.stderr
