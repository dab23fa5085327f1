"""Alerts and webhooks (docs/alerts.md): rules evaluated on the write path and on a timer,
their states and history, and webhook deliveries from a durable outbox."""
