"""Vendor adapters: shapes for real exports (Salesforce, Stripe, CloudEvents, metering events, legacy).

Each module declares SHAPES (entitlements/ingest/shapes.py); they are read, typed, checked and landed by the
same code as the canonical layouts. docs/ingest.md lists every shape and its field mapping.
"""

from __future__ import annotations

from entitlements.ingest.adapters import legacy, salesforce, stripe, usage
from entitlements.ingest.shapes import Shape

ADAPTER_SHAPES: tuple[Shape, ...] = salesforce.SHAPES + stripe.SHAPES + usage.SHAPES + legacy.SHAPES
