"""The alert tests' engine: the app's services with short timers and backoff, and the alert
engine running on the test's event loop (the ASGI client does not run the app's lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sensorbase.services import Services
from sensorbase.settings import Settings

FAST = {
    "alerts_check_s": 0.2,
    "webhook_timeout_s": 2.0,
    "webhook_retry_base_s": 0.05,
    "webhook_retry_max_s": 0.2,
}


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    base = Settings(
        data_dir=tmp_path / "data", rate_limit="100000/second", durability="normal"
    ).model_copy(update=FAST)
    if backend == "sqlite":
        yield base
        return
    from tests.pg import temporary_database

    with temporary_database() as url:
        yield base.model_copy(update={"database_url": url})


@pytest.fixture
async def engine(services: Services) -> AsyncIterator[Services]:
    await services.start_background()
    yield services
    await services.stop_background()
