"""Stage 5: two image sets compared channel by channel (pclean's against serial tclean's).

    metrics  the per-channel differences of pixels, sums and beams (``compare_prefixes``)
    report   the result and its table, JSON, CSV and plot

Running both imagers on one call and comparing is ``pclean.run_and_compare``."""
from pclean.compare.metrics import compare_datasets, compare_prefixes
from pclean.compare.report import DEFAULT_TOLERANCE, BeamDiff, ProductDiff, Report

__all__ = ["BeamDiff", "DEFAULT_TOLERANCE", "ProductDiff", "Report", "compare_datasets",
           "compare_prefixes"]
