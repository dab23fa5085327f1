"""A paho client for the configured broker: its address, TLS and Sensorbase's own credentials
(mqtt:// or mqtts://; the default ports are 1883 and 8883)."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sensorbase.settings import Settings


class BrokerSettingsError(ValueError):
    """SENSORBASE_MQTT_URL is not mqtt:// or mqtts://."""


def address(settings: Settings) -> tuple[str, int, bool]:
    """(host, port, whether TLS) of `mqtt_url`."""
    url = urlsplit(settings.mqtt_url or "")
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise BrokerSettingsError(
            f"SENSORBASE_MQTT_URL is '{settings.mqtt_url}'; use mqtt://host:port or mqtts://..."
        )
    tls = url.scheme == "mqtts"
    return url.hostname, url.port or (8883 if tls else 1883), tls


def client(settings: Settings, client_id: str, *, manual_ack: bool = False) -> paho.Client:
    """A client of protocol 5 with Sensorbase's credentials, not yet connected."""
    _, _, tls = address(settings)
    made = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    if settings.mqtt_username:
        made.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    if tls:
        made.tls_set(
            ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
            certfile=str(settings.mqtt_cert_file) if settings.mqtt_cert_file else None,
            keyfile=str(settings.mqtt_key_file) if settings.mqtt_key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    # Reconnects come quickly: the broker's restart should cost seconds of ingestion, no more.
    made.reconnect_delay_set(min_delay=1, max_delay=5)
    return made
