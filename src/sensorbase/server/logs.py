"""The server's logging: uvicorn's, plus the `sensorbase` logger through `FirstStartHandler`.

On first start the app's lifespan logs the bootstrap admin key once (api/app.py); the handler
prints that record as a banner on stderr, so that it stands out of the server's log.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from rich.console import Console
from rich.markup import escape


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
