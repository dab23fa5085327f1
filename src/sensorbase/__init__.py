"""Sensorbase: a self-hosted platform for sensor and IoT time-series data."""

__version__ = "0.1.0"
