"""The server's logging: uvicorn's, plus the `sensorbase` logger through `FirstStartHandler`.

On first start the app's lifespan logs the bootstrap admin key once (api/app.py); the handler
prints that record as a banner on stderr, so that it stands out of the server's log.

Every line starts with its UTC time to the millisecond (`2026-12-06T19:20:01.123Z INFO: ...`);
`serve --log-format json` writes one JSON object a line instead, for a log collector:
`{"time", "level", "logger", "message"}`, and for the access log also `client`, `method`,
`path`, `http_version`, `status`.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from uvicorn.logging import AccessFormatter, DefaultFormatter

LOG_FORMATS = ("text", "json")


def utc_time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(DefaultFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_time(record)


class AccessTextFormatter(AccessFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_time(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a record; uvicorn's access records carry their request as `args`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": utc_time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            line.update(client=client, method=method, path=path, http_version=version)
            line.update(status=status, message=record.getMessage())
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class FirstStartHandler(logging.StreamHandler):
    """Log records of the `sensorbase` logger at `min_level` and above on stderr; and the one
    that carries the bootstrap key (`extra={"bootstrap_key": ...}`), whatever the log level,
    as a banner with the key alone on its own unwrapped line."""

    def __init__(self, stream: Any = None, min_level: str = "INFO", as_json: bool = False) -> None:
        super().__init__(stream)
        self.min_level = logging.getLevelName(min_level.upper())
        self.as_json = as_json

    def emit(self, record: logging.LogRecord) -> None:
        key = getattr(record, "bootstrap_key", None)
        if key is None:
            if record.levelno >= self.min_level:
                super().emit(record)
            return
        org = getattr(record, "bootstrap_org", "default")
        if self.as_json:  # one line like the others, the key in its own member
            line = {"time": utc_time(record), "level": "warning", "logger": record.name,
                    "message": f"first start: created organisation {org} and its admin key "
                    "(also server admin); it is shown once", "bootstrap_key": key}  # fmt: skip
            self.stream.write(json.dumps(line) + "\n")
            self.flush()
            return
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


def logging_config(level: str, log_format: str = "text") -> dict[str, Any]:
    """uvicorn's logging with times (or as JSON), plus the `sensorbase` logger through
    FirstStartHandler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    formatters = config["formatters"]
    if log_format == "json":
        formatters["default"] = {"()": f"{__name__}.JsonFormatter"}
        formatters["access"] = {"()": f"{__name__}.JsonFormatter"}
    else:
        formatters["default"]["()"] = f"{__name__}.TextFormatter"
        formatters["default"]["fmt"] = "%(asctime)s " + formatters["default"]["fmt"]
        formatters["access"]["()"] = f"{__name__}.AccessTextFormatter"
        formatters["access"]["fmt"] = "%(asctime)s " + formatters["access"]["fmt"]
    config["handlers"]["sensorbase"] = {
        "()": f"{__name__}.FirstStartHandler",
        "formatter": "default",
        "stream": "ext://sys.stderr",
        "min_level": level,
        "as_json": log_format == "json",
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
