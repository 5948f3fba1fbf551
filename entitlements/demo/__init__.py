"""Deterministic demo exports of a small service business, with planted leakage.

`generate_demo` writes CRM and billing CSVs and usage JSON lines the way source
systems export them, plus `ground_truth/leakage.csv`: the leaks it planted, known
from the planting itself, never from the pipeline's output (its `scenario` column tags
the hard cases: a leak on a contract's end day, a visit to an asset another entitlement
of the customer covers, an allowance crossed across a mid-period amendment, an overage
only late events reveal), and `ground_truth/decoys.csv`: look-alikes that are not leaks
(duplicate events exactly at the limit, overage invoiced in full, a free incident on a
contract's first day).
"""

from entitlements.demo.generator import DemoSummary, generate_demo

__all__ = ["DemoSummary", "generate_demo"]
