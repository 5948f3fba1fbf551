"""Serve: answers read from the public marts (check, as-of, statement)."""
