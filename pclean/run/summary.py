"""tclean's return dict, from the iterbot's summary as casatasks makes it."""
from __future__ import annotations

from pclean.casa import helpers
from pclean.params.imager import imager_parameters


def summary_rows(fullsummary: bool) -> list[str]:
    """The row order of CASA's minor-cycle summary matrix."""
    return list(helpers.imager_helpers().SummaryMinor.getRowDescriptionsOldOrder(fullsummary))


def tclean_summary(summ: dict, fullsummary: bool) -> dict:
    """As PySynthesisImager.getSummary: the stop description, the minor-cycle summary per
    field and channel."""
    h = helpers.imager_helpers()
    summ = dict(summ)
    if "stopcode" in summ:
        summ["stopDescription"] = h.PySynthesisImager.getStopDescription(None, summ["stopcode"])
    if "summaryminor" in summ:
        summ["summaryminor"] = h.SummaryMinor.convertMatrix(summ["summaryminor"], fullsummary)
    return summ


def residual_summary(params: dict) -> dict:
    """niter=0: tclean builds its return dict from the residual image (ImagingDict)."""
    return helpers.imager_helpers().ImagingDict().construct_residual_dict(
        imager_parameters(params))
