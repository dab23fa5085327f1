"""Dialects: one module per vendor API, and `native`. Each owns its routes, request models,
translation to and from the canonical model, and its error shape. `base.py` holds what they share:
the route class that renders errors in the dialect's shape, credentials, body reading."""
