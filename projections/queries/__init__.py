"""Reads of the read models, for the API: each function one query, rows as plain dicts."""
