"""Spark lakehouse for web-traffic and product analytics (bronze -> silver -> gold -> SQL)."""

__version__ = "0.1.0"
