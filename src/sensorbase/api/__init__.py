"""The ASGI app: every dialect's router, health, metrics, and the fallback error shape."""
