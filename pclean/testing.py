"""Regression checks where users write them: assert that a cube equals its reference, in a
pipeline's own pytest suite (as ``xarray.testing.assert_allclose`` serves xarray users).

>>> from pclean.testing import assert_matches
>>> assert_matches("cube", "cube.tclean")           # every product, channel by channel
>>> assert_matches("cube", "ref", rtol=1e-4, products=["image", "residual"])
"""
from __future__ import annotations

from pclean.compare.metrics import compare_prefixes
from pclean.compare.report import DEFAULT_TOLERANCE

__all__ = ["assert_matches"]


def assert_matches(test_prefix: str, ref_prefix: str, rtol: float = DEFAULT_TOLERANCE,
                   products=None, max_lines: int = 20):
    """Raise ``AssertionError`` unless the image set ``test_prefix`` equals ``ref_prefix``:
    per channel and product max|diff| <= ``rtol`` of the reference product's peak, beams to
    ``rtol`` relative, the same products and pixel masks (``pclean.compare``). The message
    lists what differs, worst first per product. Returns the comparison report."""
    __tracebackhide__ = True  # pytest shows the caller's line
    report = compare_prefixes(test_prefix, ref_prefix, tolerance=rtol, products=products)
    if not report.passed:
        lines = report.failures()
        more = f"\n  ... and {len(lines) - max_lines} more" if len(lines) > max_lines else ""
        raise AssertionError(f"{test_prefix} does not match {ref_prefix} (rtol {rtol:g}):\n  "
                             + "\n  ".join(lines[:max_lines]) + more)
    return report
