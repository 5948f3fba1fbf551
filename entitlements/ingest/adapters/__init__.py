"""Vendor adapters: shapes for real exports (Salesforce, Stripe, CloudEvents, metering events, legacy).

Each module declares SHAPES (entitlements/ingest/shapes.py); they are read, typed, checked and landed by the
same code as the canonical layouts. docs/ingest.md lists every shape and its field mapping.
"""

from __future__ import annotations

from entitlements.ingest.adapters import legacy, salesforce, stripe, usage
from entitlements.ingest.shapes import CANONICAL_SHAPES, Shape

ADAPTER_SHAPES: tuple[Shape, ...] = salesforce.SHAPES + stripe.SHAPES + usage.SHAPES + legacy.SHAPES


def all_shapes() -> tuple[Shape, ...]:
    """Every shape the ingest recognises: the canonical ones first, then each adapter's."""
    return CANONICAL_SHAPES + ADAPTER_SHAPES
