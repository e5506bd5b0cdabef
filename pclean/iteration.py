"""Cube-wide iteration control, owned by the coordinator, as serial tclean does it.

For cubes tclean's ``niter`` is one budget for the whole cube, checked after each minor-cycle
round; the cycle threshold is one cube-wide value from the cube-wide peak residual; ``cycleniter``
applies per channel. One casatools ``iterbotsink`` is fed the merged records of every chunk, so
every chunk runs the same major/minor cycles under the same controls. (Checked: chunks run as
independent tclean calls differ from serial tclean by up to 0.28 of the residual peak and do
2684 iterations instead of 2304.)

The merges of casatools' SIIterBot are max/min/sum over records, so merging one record per chunk
as if they were one deconvolver gives the cube-wide values. Only the minor-cycle summary needs
care: each chunk numbers its channels from 0, so we shift them to full-cube channel numbers.
"""
from __future__ import annotations

import numpy as np

from pclean import casaenv, casahelpers


class CubeIterationControl:
    def __init__(self, iterpars: dict, chunks: list, fullsummary: bool):
        self.ib = casaenv.tools().iterbotsink()
        self.ib.setupiteration(iterpars=iterpars)
        self.nmajor_limit = int(iterpars.get("nmajor", -1))
        self.chunks = list(chunks)  # ChunkSpec: image offset and halo channels of each
        self.fullsummary = bool(fullsummary)
        self.major_count = 0

    # -- major cycles ----------------------------------------------------------------------
    def major_controls(self, usemask: str) -> dict:
        last = self.ib.cleanComplete(lastcyclecheck=True) > 0
        return {"lastcycle": bool(last), "usemask": usemask}

    def end_major(self, clean_cycle: bool) -> None:
        if clean_cycle:
            self.major_count += 1
        self.ib.endmajorcycle()

    # -- convergence -----------------------------------------------------------------------
    def converged(self, init_records: list[dict]) -> bool:
        self.ib.resetminorcycleinfo()
        for rec in init_records:
            self.ib.mergeinitrecord(rec, 0)
        reached = self.nmajor_limit >= 0 and self.major_count >= self.nmajor_limit
        return self.ib.cleanComplete(reachedMajorLimit=reached) > 0

    # -- minor cycles ----------------------------------------------------------------------
    def minor_controls(self) -> dict:
        controls = self.ib.getminorcyclecontrols()
        self.ib.resetminorcycleinfo()
        return controls

    def merge_minor(self, exec_records: list[dict]) -> bool:
        """Merge every chunk's minor-cycle record; True if any chunk iterated."""
        summary_minor = casahelpers.imager_helpers().SummaryMinor
        rows = summary_minor.getRowDescriptionsOldOrder(self.fullsummary)
        chan_row, iter_row = rows.index("chan"), rows.index("iterDone")
        did = False
        for spec, rec in zip(self.chunks, exec_records):
            rec = dict(rec)
            summ = rec.get("summaryminor")
            if isinstance(summ, np.ndarray) and summ.ndim == 2 and summ.shape[1] > 0:
                if spec.halo_local:
                    # a halo channel repeats a neighbouring chunk's channel: max-type fields
                    # are unchanged by it, its iterations must not count twice
                    is_halo = np.isin(summ[chan_row, :], spec.halo_local)
                    rec["iterdone"] = int(rec["iterdone"] - summ[iter_row, is_halo].sum())
                    summ = summ[:, ~is_halo]
                summ = summ.copy()
                summ[chan_row, :] += spec.img_first
                rec["summaryminor"] = summ
            did = did or rec["iterdone"] > 0
            self.ib.mergeexecrecord(rec, 0)
        return did

    # -- the result dict -------------------------------------------------------------------
    def summary(self) -> dict:
        helpers = casahelpers.imager_helpers()
        summ = self.ib.getiterationsummary()
        if "stopcode" in summ:
            summ["stopDescription"] = helpers.PySynthesisImager.getStopDescription(
                None, summ["stopcode"])
        if "summaryminor" in summ:
            summ["summaryminor"] = helpers.SummaryMinor.convertMatrix(summ["summaryminor"],
                                                              self.fullsummary)
        return summ

    def done(self) -> None:
        self.ib.done()
