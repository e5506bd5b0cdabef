"""Cube-wide iteration control, owned by the coordinator, as serial tclean does it.

For cubes tclean's ``niter`` is one budget for the whole cube, checked after each minor-cycle
round; the cycle threshold is one cube-wide value from the cube-wide peak residual; ``cycleniter``
applies per channel. One casatools ``iterbotsink`` is fed, at every step and for every field,
ONE record that is what serial tclean's single deconvolver would have returned for the whole
cube, combined from the chunks' records (:func:`combine_init`, :func:`combine_exec`), so every
chunk runs the same major/minor cycles under the same controls. (Checked: chunks run as
independent tclean calls differ from serial tclean by up to 0.28 of the residual peak and do 2684
iterations instead of 2304.)

Why combine rather than merge each chunk's record into the iterbot: CASA's merges are not all
max/min/sum. ``mergeinitrecord`` overwrites the nsigma threshold with the last record's (serial's
is nsigma x the largest robust rms over *all* channels: measured, a binding nsigma stopped
serial on stopcode 8 after 30 major cycles and chunks merged one by one on stopcode 4 after 33);
``mergeexecrecord`` offsets each record's minor-cycle summary by the iterations merged before it
and takes the peak residual of the last record only.

Nothing here imports CASA: the iterbot is given (casatools' ``iterbotsink``, or a fake in
tests), and so is the row order of CASA's minor-cycle summary.
"""
from __future__ import annotations

import numpy as np

from pclean.params.deconvolvers import minor_block

# record fields that are the largest over the cube's channels
_INIT_MAX = ("peakresidual", "maxpsfsidelobe", "peakresidualnomask", "madrms", "nsigmathreshold")


class MaskSums:
    """The ``masksum`` serial's deconvolver would report: the mask sum of the whole cube when it
    changed (or is zero), else -1. A chunk reports its own sum the same way, so the cube's is
    the sum of every chunk's last reported one."""

    def __init__(self, nchunks: int):
        self.current = [None] * nchunks  # last sum each chunk reported (None: no mask yet)
        self.reported = -1.0

    def update(self, sums: list[float]) -> None:
        for j, s in enumerate(sums):
            if float(s) != -1.0:
                self.current[j] = float(s)

    @property
    def cube(self) -> float:
        known = [s for s in self.current if s is not None]
        return float(sum(known)) if known else -1.0

    def report(self) -> float:
        cube = self.cube
        if cube != self.reported or cube == 0.0:
            self.reported = cube
            return cube
        return -1.0


def combine_init(records: list[dict], masksums: MaskSums) -> dict:
    out = dict(records[0])
    for key in _INIT_MAX:
        out[key] = max(float(r[key]) for r in records)
    masksums.update([r["masksum"] for r in records])
    if masksums.cube > 0:
        # CASA quirk: a deconvolver whose whole mask is empty reports its peak residual over
        # the full image; serial's, with a mask somewhere in the cube, counts those channels
        # as 0 (measured: 1.103 from a chunk with an empty mask, against 0)
        out["peakresidual"] = max([float(r["peakresidual"]) for r, s in
                                   zip(records, masksums.current) if s and s > 0] or [0.0])
    out["masksum"] = masksums.report()
    return out


def combine_summaries(summaries: list[np.ndarray], chunks: list[tuple[int, int]], nchan: int,
                      block: int, fullsummary: bool, rows: list[str]) -> np.ndarray:
    """The chunks' minor-cycle summaries as serial's one deconvolver writes it for the cube.

    ``chunks``: (first channel, channels) of each; ``rows``: CASA's row order
    (SummaryMinor.getRowDescriptionsOldOrder). Columns are planes in channel order (one per
    plane, or per channel for deconvolvers that clean Stokes jointly, such as clark on IQUV:
    measured). CASA numbers them per minor-cycle block: without fullsummary the 'chan' row is
    channel-in-block + Stokes x channels-in-block + block start; with it 'chan' is the channel
    (a 'stoke' row gives the Stokes plane) and startIterDone counts the iterations of the
    block's earlier columns in this cycle (cycleStartIters stays 0). Each column gets serial's
    numbering for its cube channel. Without fullsummary a chunk is a single block wherever
    several Stokes planes are numbered (params refuses the cubes where serial's own numbering
    breaks)."""
    chan_row, iter_row = rows.index("chan"), rows.index("iterDone")
    parts, channels = [], []
    for summ, (first, n) in zip(summaries, chunks):
        out = np.array(summ, dtype=float, copy=True).reshape(len(rows), -1)
        if fullsummary:
            chan = first + out[chan_row, :].astype(int)
            out[chan_row, :] = chan
        else:
            stokes, local = np.divmod(out[chan_row, :].astype(int), n)
            chan = first + local
            start = (chan // block) * block
            out[chan_row, :] = chan - start + stokes * np.minimum(block, nchan - start) + start
        parts.append(out)
        channels.append(chan)
    merged = np.concatenate(parts, axis=1)
    if fullsummary and merged.shape[1]:
        chan = np.concatenate(channels)
        start_row = rows.index("startIterDone")
        done = np.cumsum(merged[iter_row, :]) - merged[iter_row, :]  # exclusive prefix sums
        block_of = chan // block
        first_col = np.searchsorted(block_of, block_of)  # columns are in channel order
        merged[start_row, :] = done - done[first_col]
    return merged


def combine_exec(records: list[dict], chunks: list[tuple[int, int]], nchan: int, block: int,
                 fullsummary: bool, rows: list[str]) -> dict:
    summaries = [r["summaryminor"] for r in records]
    return {
        "iterdone": int(sum(int(r["iterdone"]) for r in records)),
        "maxcycleiterdone": int(max(int(r["maxcycleiterdone"]) for r in records)),
        "peakresidual": float(max(float(r["peakresidual"]) for r in records)),
        "updatedmodelflag": bool(any(r["updatedmodelflag"] for r in records)),
        "summaryminor": combine_summaries(summaries, chunks, nchan, block, fullsummary, rows),
    }


class CubeIterationControl:
    """Serial's iteration control for the whole cube, fed the chunks' combined records.

    ``chunks``: (first channel, channels) of every chunk; ``fields``: casatasks' field keys;
    ``rows``: the row order of CASA's minor-cycle summary for ``fullsummary``."""

    def __init__(self, iterbot, iterpars: dict, chunks: list[tuple[int, int]], nchan: int,
                 imsize, fullsummary: bool, rows: list[str], fields=("0",)):
        self.ib = iterbot
        self.ib.setupiteration(iterpars=iterpars)
        self.nmajor_limit = int(iterpars.get("nmajor", -1))
        self.chunks = [(int(f), int(n)) for f, n in chunks]
        self.nchan = int(nchan)
        self.block = minor_block(imsize)
        self.fullsummary = bool(fullsummary)
        self.rows = list(rows)
        self.fields = list(fields)
        self.major_count = 0
        self.masksums = {f: MaskSums(len(self.chunks)) for f in self.fields}

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
        """``init_records``: each chunk's {field: initminorcycle record}."""
        self.ib.resetminorcycleinfo()
        for f in self.fields:
            rec = combine_init([r[f] for r in init_records], self.masksums[f])
            self.ib.mergeinitrecord(rec, int(f))
        reached = self.nmajor_limit >= 0 and self.major_count >= self.nmajor_limit
        return self.ib.cleanComplete(reachedMajorLimit=reached) > 0

    # -- minor cycles ----------------------------------------------------------------------
    def minor_controls(self) -> dict:
        controls = self.ib.getminorcyclecontrols()
        self.ib.resetminorcycleinfo()
        return controls

    def merge_minor(self, exec_records: list[dict]) -> bool:
        """Merge each chunk's {field: executeminorcycle record}, per field, as serial's one
        record; True if any chunk iterated."""
        did = False
        for f in self.fields:
            rec = combine_exec([r[f] for r in exec_records], self.chunks, self.nchan,
                               self.block, self.fullsummary, self.rows)
            self.ib.mergeexecrecord(rec, int(f))
            did = did or rec["iterdone"] > 0
        return did

    def summary(self) -> dict:
        """The iterbot's summary, as CASA's getiterationsummary gives it."""
        return self.ib.getiterationsummary()

    def done(self) -> None:
        self.ib.done()
