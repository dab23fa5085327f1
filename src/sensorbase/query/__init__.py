"""Queries: what to select (spec.py), calendar buckets (calendar.py), running them (service.py)."""
