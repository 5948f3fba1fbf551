"""Entitlement analytics: exports to checked marts."""
