"""`lakehouse serve`: the analytics API over the exported gold tables, and its metrics."""
