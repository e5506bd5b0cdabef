"""Cube-wide iteration control, owned by the coordinator, as serial tclean does it.

For cubes tclean's ``niter`` is one budget for the whole cube, checked after each minor-cycle
round; the cycle threshold is one cube-wide value from the cube-wide peak residual; ``cycleniter``
applies per channel. One casatools ``iterbotsink`` is fed, at every step, ONE record that is what
serial tclean's single deconvolver would have returned for the whole cube, combined from the
chunks' records (:func:`combine_init`, :func:`combine_exec`), so every chunk runs the same
major/minor cycles under the same controls. (Checked: chunks run as independent tclean calls
differ from serial tclean by up to 0.28 of the residual peak and do 2684 iterations instead of
2304.)

Why combine rather than merge each chunk's record into the iterbot: CASA's merges are not all
max/min/sum. ``mergeinitrecord`` overwrites the nsigma threshold with the last record's (serial's
is nsigma x the largest robust rms over *all* channels: measured, a binding nsigma stopped
serial on stopcode 8 after 30 major cycles and chunks merged one by one on stopcode 4 after 33);
``mergeexecrecord`` offsets each record's minor-cycle summary by the iterations merged before it
and takes the peak residual of the last record only.
"""
from __future__ import annotations

import numpy as np

from pclean import casaenv, casahelpers

# record fields that are the largest over the cube's channels
_INIT_MAX = ("peakresidual", "maxpsfsidelobe", "peakresidualnomask", "madrms", "nsigmathreshold")


class MaskSums:
    """The ``masksum`` serial's deconvolver would report: the mask sum of the whole cube when it
    changed (or is zero), else -1. A chunk reports its own sum the same way."""

    def __init__(self, nchunks: int):
        self.current = [None] * nchunks  # last sum each chunk reported (None: no mask yet)
        self.reported = -1.0

    def combine(self, sums: list[float]) -> float:
        for j, s in enumerate(sums):
            if float(s) != -1.0:
                self.current[j] = float(s)
        known = [s for s in self.current if s is not None]
        cube = float(sum(known)) if known else -1.0
        if cube != self.reported or cube == 0.0:
            self.reported = cube
            return cube
        return -1.0


def combine_init(records: list[dict], masksums: MaskSums) -> dict:
    out = dict(records[0])
    for key in _INIT_MAX:
        out[key] = max(float(r[key]) for r in records)
    out["masksum"] = masksums.combine([r["masksum"] for r in records])
    return out


def remap_summary(summ: np.ndarray, first: int, nlocal: int, nchan: int,
                  fullsummary: bool) -> np.ndarray:
    """A chunk's minor-cycle summary with the cube's channel numbers. Without fullsummary the
    'chan' row holds channel + stokes x (channels of the deconvolver's image)."""
    rows = casahelpers.imager_helpers().SummaryMinor.getRowDescriptionsOldOrder(fullsummary)
    chan = rows.index("chan")
    out = np.array(summ, dtype=float, copy=True)
    if fullsummary:
        out[chan, :] += first
    else:
        stokes, c = np.divmod(out[chan, :], nlocal)
        out[chan, :] = c + first + stokes * nchan
    return out


def combine_exec(records: list[dict], specs: list, nchan: int, fullsummary: bool) -> dict:
    summaries = [remap_summary(r["summaryminor"], s.first, s.nchan, nchan, fullsummary)
                 for r, s in zip(records, specs)
                 if isinstance(r.get("summaryminor"), np.ndarray) and r["summaryminor"].ndim == 2]
    nrows = summaries[0].shape[0] if summaries else len(
        casahelpers.imager_helpers().SummaryMinor.getRowDescriptionsOldOrder(fullsummary))
    return {
        "iterdone": int(sum(int(r["iterdone"]) for r in records)),
        "maxcycleiterdone": int(max(int(r["maxcycleiterdone"]) for r in records)),
        "peakresidual": float(max(float(r["peakresidual"]) for r in records)),
        "updatedmodelflag": bool(any(r["updatedmodelflag"] for r in records)),
        "summaryminor": (np.concatenate(summaries, axis=1) if summaries
                         else np.zeros((nrows, 0))),
    }


class CubeIterationControl:
    def __init__(self, iterpars: dict, chunks: list, nchan: int, fullsummary: bool):
        self.ib = casaenv.tools().iterbotsink()
        self.ib.setupiteration(iterpars=iterpars)
        self.nmajor_limit = int(iterpars.get("nmajor", -1))
        self.chunks = list(chunks)  # ChunkSpec: first channel and channels of each
        self.nchan = int(nchan)
        self.fullsummary = bool(fullsummary)
        self.major_count = 0
        self.masksums = MaskSums(len(self.chunks))

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
        self.ib.mergeinitrecord(combine_init(init_records, self.masksums), 0)
        reached = self.nmajor_limit >= 0 and self.major_count >= self.nmajor_limit
        return self.ib.cleanComplete(reachedMajorLimit=reached) > 0

    # -- minor cycles ----------------------------------------------------------------------
    def minor_controls(self) -> dict:
        controls = self.ib.getminorcyclecontrols()
        self.ib.resetminorcycleinfo()
        return controls

    def merge_minor(self, exec_records: list[dict]) -> bool:
        """Merge the chunks' minor-cycle records as serial's one record; True if any chunk
        iterated."""
        rec = combine_exec(exec_records, self.chunks, self.nchan, self.fullsummary)
        self.ib.mergeexecrecord(rec, 0)
        return rec["iterdone"] > 0

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
