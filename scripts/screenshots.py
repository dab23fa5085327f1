"""The console's screenshots in docs/img/, taken from a fresh server with demo data in Debian's
headless Chromium (the browser tests' setup):

    .venv/bin/python scripts/screenshots.py

A week of three series (a daily cycle, one spike), a user, and the pages docs/console.md shows,
at 1280x800 and at phone width (390x844)."""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.console.browser import OFFLINE, chromium, wait_for  # noqa: E402
from tests.live import KEY_PATTERN, start_server  # noqa: E402

OUT = ROOT / "docs" / "img"
EMAIL, PASSWORD = "ada@example.com", "correct horse battery"


def seed(url: str, root: str) -> None:
    as_root = {"Authorization": f"Bearer {root}"}
    with httpx.Client(base_url=url, headers=as_root, timeout=30) as client:
        client.post("/v1/users", json={"email": EMAIL, "password": PASSWORD, "role": "admin"})
        for key, description in [("greenhouse", "Tomatoes, north side"), ("boiler-room", "")]:
            client.post("/v1/buckets", json={"key": key, "description": description})
        schema = {
            "temperature": {"type": "number", "unit": "°C"},
            "humidity": {"type": "number", "unit": "%"},
        }
        client.post("/v1/buckets/greenhouse/sources", json={"key": "ESP32-001", "schema": schema})
        now = int(time.time()) // 60 * 60
        start = now - 7 * 86400
        points = []
        for t in range(start, now, 120):
            day = math.sin((t % 86400) / 86400 * 2 * math.pi)
            noise = math.sin(t / 977.0) * 0.4
            temperature = 19 + 5 * day + noise
            if t == start + 4 * 86400 + 3600 * 13:
                temperature = 41.7  # one reading's spike, which M4 keeps in view
            points.append(
                {
                    "source": "ESP32-001",
                    "field": "temperature",
                    "value": round(temperature, 2),
                    "time": t,
                }
            )
            points.append(
                {
                    "source": "ESP32-001",
                    "field": "humidity",
                    "value": round(60 - 15 * day + noise, 1),
                    "time": t,
                }
            )
            points.append(
                {
                    "source": "ESP32-002",
                    "field": "temperature",
                    "value": round(17 + 4 * day - noise, 2),
                    "time": t,
                }
            )
        for i in range(0, len(points), 5000):
            reply = client.post(
                "/v1/write?precision=s",
                json={"bucket": "greenhouse", "points": points[i : i + 5000]},
            )
            reply.raise_for_status()
        client.post(
            "/v1/keys",
            json={"name": "gateway north", "scopes": ["data:write"], "bucket": "greenhouse"},
        )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    server = start_server(Path(tempfile.mkdtemp(prefix="sb-shots-")))
    try:
        root = KEY_PATTERN.findall(server.stderr())[0]
        seed(server.url, root)
        with chromium(OFFLINE, "--hide-scrollbars") as (driver, _):
            from selenium.webdriver.common.by import By

            def css(selector: str) -> list:
                return list(driver.find_elements(By.CSS_SELECTOR, selector))

            def shot(name: str) -> None:
                time.sleep(0.3)  # the chart's last frame
                driver.save_screenshot(str(OUT / f"{name}.png"))
                print(f"docs/img/{name}.png")

            def viewport(width: int, height: int, mobile: bool = False) -> None:
                metrics = {
                    "width": width,
                    "height": height,
                    "deviceScaleFactor": 1,
                    "mobile": mobile,
                }
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)

            viewport(1280, 800)
            driver.get(f"{server.url}/")
            wait_for(driver, lambda: css("#sign-in-user"), "the sign-in page")
            shot("console-sign-in")
            css("#sign-in-user input[name=email]")[0].send_keys(EMAIL)
            css("#sign-in-user input[name=password]")[0].send_keys(PASSWORD)
            css("#sign-in-user button")[0].click()
            wait_for(driver, lambda: css("#buckets li"), "the buckets")
            shot("console-buckets")
            driver.get(f"{server.url}/#/b/boiler-room")
            wait_for(driver, lambda: css("#first-point"), "the empty state")
            shot("console-first-point")
            driver.get(f"{server.url}/#/b/greenhouse")
            wait_for(driver, lambda: css("#series-table a"), "the series")
            shot("console-bucket")
            driver.get(f"{server.url}/#/s/greenhouse/ESP32-001/temperature")
            wait_for(driver, lambda: css("#chart canvas"), "the chart")
            css("button[data-preset='7d']")[0].click()
            time.sleep(1)
            shot("console-series")
            driver.get(
                f"{server.url}/#/compare?s=greenhouse/ESP32-001/temperature&s=greenhouse/ESP32-001/humidity&s=greenhouse/ESP32-002/temperature"
            )
            wait_for(driver, lambda: css("#chart canvas"), "the compare chart")
            shot("console-compare")
            driver.get(f"{server.url}/#/keys")
            wait_for(driver, lambda: css("#create-key"), "the keys")
            css("#create-key input[name=name]")[0].send_keys("dashboard")
            css("#create-key button[type=submit]")[0].click()
            wait_for(driver, lambda: css("#new-key-secret"), "the new key")
            shot("console-keys")
            viewport(390, 844, mobile=True)
            driver.get(f"{server.url}/#/s/greenhouse/ESP32-001/temperature")
            wait_for(driver, lambda: css("#chart canvas"), "the chart")
            shot("console-phone")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
