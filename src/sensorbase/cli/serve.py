"""`sensorbase serve`: the server under uvicorn (uvloop, httptools).

Settings come from the environment (SENSORBASE_*, see docs/configuration.md) through
`Settings`; the flags override them. With --workers N > 1 N processes (cli/workers.py) each
build the app from `sensorbase.app:create_app`, so the flags travel as SENSORBASE_* variables.
On first start the app's lifespan logs the bootstrap admin key once; `FirstStartHandler`
prints that record as a banner on stderr so that it stands out of the server's log. The
listening socket is bound before that (here, or by the supervisor of --workers): a busy port
fails the start before a key is made, and a key once shown is one a server is serving.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from sensorbase import __version__
from sensorbase.cli.client import CliError, stderr

if TYPE_CHECKING:  # the server's modules load only when `serve` runs: client commands start fast
    from sensorbase.settings import Settings

commands = typer.Typer()


class FirstStartHandler(logging.StreamHandler):
    """Log records of the `sensorbase` logger at `min_level` and above on stderr; and the one
    that carries the bootstrap key (`extra={"bootstrap_key": ...}`), whatever the log level,
    as a banner with the key alone on its own unwrapped line."""

    def __init__(self, stream: Any = None, min_level: str = "INFO") -> None:
        super().__init__(stream)
        self.min_level = logging.getLevelName(min_level.upper())

    def emit(self, record: logging.LogRecord) -> None:
        key = getattr(record, "bootstrap_key", None)
        if key is None:
            if record.levelno >= self.min_level:
                super().emit(record)
            return
        org = getattr(record, "bootstrap_org", "default")
        console = Console(file=self.stream, highlight=False)
        console.rule("[bold yellow]Sensorbase first start[/]", style="yellow")
        console.print(
            f"Created organisation [bold]{escape(str(org))}[/] and its admin key "
            "(also server admin).\n[bold yellow]This key is shown ONCE.[/] Store it now:\n"
        )
        console.print(f"    {key}\n", soft_wrap=True)
        console.print("For the CLI:", soft_wrap=True)
        console.print(f"    export SENSORBASE_KEY={key}", soft_wrap=True)
        console.rule(style="yellow")
        self.flush()


def logging_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, plus the `sensorbase` logger through FirstStartHandler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["sensorbase"] = {
        "()": f"{__name__}.FirstStartHandler",
        "formatter": "default",
        "stream": "ext://sys.stderr",
        "min_level": level,
    }
    # The logger lets the bootstrap record (a warning) through even at --log-level error;
    # the handler applies the level to everything else.
    chosen = logging.getLevelName(level.upper())
    config["loggers"]["sensorbase"] = {
        "handlers": ["sensorbase"],
        "level": min(chosen, logging.WARNING) if isinstance(chosen, int) else logging.INFO,
        "propagate": False,
    }
    return config


def settings_from(overrides: dict[str, Any]) -> Settings:
    from pydantic import ValidationError

    from sensorbase.settings import Settings

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        items = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CliError("invalid settings (flags or SENSORBASE_* variables)", items=items) from None


@commands.command(rich_help_panel="Server")
def serve(
    host: str | None = typer.Option(
        None,
        help="Address to listen on.  [default: SENSORBASE_HOST or 127.0.0.1]",
        show_default=False,
    ),
    port: int | None = typer.Option(
        None, help="Port.  [default: SENSORBASE_PORT or 8000]", show_default=False
    ),
    data_dir: Path | None = typer.Option(
        None,
        help="Directory of the embedded SQLite store.  [default: SENSORBASE_DATA_DIR or ./data]",
        show_default=False,
    ),
    database_url: str | None = typer.Option(
        None,
        help="postgresql://... to use PostgreSQL instead of SQLite.  "
        "[default: SENSORBASE_DATABASE_URL]",
        show_default=False,
    ),
    workers: int = typer.Option(1, min=1, help="Server processes."),
    access_log: bool = typer.Option(True, help="Log every request (stdout)."),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        help="Proxies trusted to name the client in X-Forwarded-For (comma-separated addresses "
        "or networks, * for any): the address failed sign-ins are counted by.  "
        "[default: FORWARDED_ALLOW_IPS or 127.0.0.1,::1]",
        show_default=False,
    ),
) -> None:
    """Run the Sensorbase server.

    Settings come from SENSORBASE_* variables (docs/configuration.md); these flags override
    them."""
    import uvicorn

    from sensorbase.cli.http_protocol import SensorbaseProtocol

    flags = {"host": host, "port": port, "data_dir": data_dir, "database_url": database_url}
    overrides = {name: value for name, value in flags.items() if value is not None}
    settings = settings_from(overrides)
    if settings.log_level.lower() not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise CliError(
            f"SENSORBASE_LOG_LEVEL is '{settings.log_level}'; "
            "use critical, error, warning, info, debug or trace"
        )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": SensorbaseProtocol,
        "log_config": logging_config(settings.log_level),
        "log_level": settings.log_level.lower(),
        "access_log": access_log,
        # The other receive deadlines are the protocol's own (cli/http_guard.py).
        "timeout_keep_alive": settings.keep_alive_timeout_s,
    }
    if forwarded_allow_ips is not None:
        options["forwarded_allow_ips"] = forwarded_allow_ips
    store = "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir.resolve()}"
    stderr.print(f"Sensorbase {__version__}: {store}", soft_wrap=True)
    if workers > 1:
        from sensorbase.cli.workers import handover_supported, serve_workers

        # Every worker builds its own app from the environment.
        os.environ.update({f"SENSORBASE_{k.upper()}": str(v) for k, v in overrides.items()})
        if handover_supported():
            serve_workers(workers, options)
        else:
            uvicorn.run("sensorbase.app:create_app", factory=True, workers=workers, **options)
    else:
        run_bound(settings, options)


def run_bound(settings: Settings, options: dict[str, Any]) -> None:
    """One server process on a socket bound before the app is even built (uvicorn binds only
    after the app's start-up, which makes and shows the bootstrap key)."""
    import uvicorn

    from sensorbase.app import create_app

    listener = listening_socket(options["host"], options["port"])
    config = uvicorn.Config(create_app(settings), **options)  # (sets up logging)
    server = uvicorn.Server(config)
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info(
        "Sensorbase running on http://%s:%d (Press CTRL+C to quit)", shown, port
    )
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    if not server.started:
        raise typer.Exit(3)  # (uvicorn's start-up failure status; it said why)


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A socket listening on host:port, or a CliError saying why not."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(backlog)
    return sock
