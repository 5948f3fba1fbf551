"""Deterministic demo exports of a small service business, with planted leakage.

`generate_demo` writes CRM and billing CSVs and usage JSON lines the way source
systems export them, plus `ground_truth/leakage.csv`: the leaks it planted, known
from the planting itself, never from the pipeline's output.
"""

from entitlements.demo.generator import DemoSummary, generate_demo

__all__ = ["DemoSummary", "generate_demo"]
