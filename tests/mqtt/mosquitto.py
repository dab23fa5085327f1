"""A real Mosquitto broker of a test's own: a free port, a generated configuration with the
dynamic-security plugin, and a dynamic-security file whose admin is Sensorbase's user."""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.live import free_port

PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
ADMIN_USER, ADMIN_PASSWORD = "sensorbase", "broker-admin-password"


def available() -> str | None:
    """Why a broker cannot be started here, or None."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_ctrl") is None:
        return "Debian's mosquitto and mosquitto-clients packages are not installed"
    if not PLUGIN.exists():
        return f"the dynamic-security plugin is not at {PLUGIN}"
    return None


@dataclass
class Broker:
    home: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def settings_env(self) -> dict[str, str]:
        return {
            "SENSORBASE_MQTT_URL": self.url,
            "SENSORBASE_MQTT_USERNAME": ADMIN_USER,
            "SENSORBASE_MQTT_PASSWORD": ADMIN_PASSWORD,
        }

    def start(self) -> Broker:
        self.home.mkdir(parents=True, exist_ok=True)
        dynsec = self.home / "dynamic-security.json"
        if not dynsec.exists():
            subprocess.run(
                ["mosquitto_ctrl", "dynsec", "init", str(dynsec), ADMIN_USER, ADMIN_PASSWORD],
                check=True,
                capture_output=True,
            )
        conf = self.home / "mosquitto.conf"
        # (Started as root, mosquitto would become the 'mosquitto' user, who cannot read the
        # test's directory: it stays whoever runs the test.)
        user = getpass.getuser()
        conf.write_text(
            f"user {user}\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            "persistence true\n"
            f"persistence_location {self.home}/\n"
            "max_queued_messages 1000000\n"
            f"plugin {PLUGIN}\n"
            f"plugin_opt_config_file {dynsec}\n"
        )
        with (self.home / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["mosquitto", "-c", str(conf), "-v"], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError(
            f"mosquitto did not start: {(self.home / 'mosquitto.log').read_text()}"
        )

    def stop(self) -> None:
        """A clean stop (SIGTERM): the broker saves its sessions and queued messages."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
