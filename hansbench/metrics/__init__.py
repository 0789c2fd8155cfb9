"""Metrics; importing this package registers the built-ins."""
