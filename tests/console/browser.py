"""Debian's Chromium, driven by Selenium through Debian's chromedriver: a fresh profile, no
network beyond what a test allows, downloads into a folder the test reads."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# No background traffic, no first-run pages: a run touches only the server under test.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
]
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def require_chromium() -> None:
    """Skip where the browser is missing, except in CI (SENSORBASE_REQUIRE_BROWSER=1), where
    `make test` has installed it and a skip would hide a broken console."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    message = "Debian's chromium and chromium-driver are not installed (make test installs them)"
    if os.environ.get("SENSORBASE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium(*extra: str) -> Iterator[tuple[Any, Path]]:
    """A Chromium session and its download folder."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="sb-chromium-"))
    downloads = profile / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile / 'profile'}", *extra]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        driver.implicitly_wait(0)
        yield driver, downloads
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, condition: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    """The first true answer of `condition()` (polled); a failure names `what` and the
    browser's console messages."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def check(_: Any) -> Any:
        try:
            return condition()
        except WebDriverException:
            return None

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(check)
    except Exception as exc:
        logs = driver.get_log("browser")
        raise AssertionError(f"timed out waiting for {what}; browser console: {logs}") from exc
