"""In-process stand-ins for CASA in the loop's unit tests: chunks that "clean" by shrinking each
channel's peak, an iterbot with tclean's budget and threshold rules, and a plan of plain values.

They are deliberately simple; what they let the tests check is the coordinator's side: the
order of tclean's steps, the same controls to every chunk, one budget for the cube, records
combined per field, the beams written where they must be, chunks closed on failure, events.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from pclean.run.chunkset import ChunkSet

# CASA's minor-cycle summary rows (SummaryMinor.getRowDescriptionsOldOrder), checked against
# casatasks in tests/parity/test_validation.py
ROWS = ["iterDone", "peakRes", "modelFlux", "cycleThresh", "deconId", "chan"]
ROWS_FULL = ROWS + ["stoke", "cycleStartIters", "startIterDone", "startPeakRes",
                    "startModelFlux", "startPeakResNM", "peakResNM", "masksum", "mpiServer",
                    "multifieldId", "stopCode"]


def beam(major: float, minor: float = 1.0) -> dict:
    return {"major": {"unit": "arcsec", "value": float(major)},
            "minor": {"unit": "arcsec", "value": float(minor)},
            "positionangle": {"unit": "deg", "value": 0.0}}


class FakeIterBot:
    """casatools' iterbotsink, reduced to tclean's rules for a cube: one niter budget, a
    cycle threshold from the peak and the psf sidelobe, stop codes 1 (niter), 2 (threshold),
    9 (nmajor)."""

    def __init__(self):
        self.merged_init, self.merged_exec = [], []  # (field index, record) as merged
        self.closed = False

    def setupiteration(self, iterpars):
        self.niter = int(iterpars["niter"])
        self.cycleniter = int(iterpars.get("cycleniter", -1))
        self.threshold = float(iterpars.get("threshold", 0.0))
        self.cyclefactor = float(iterpars.get("cyclefactor", 1.0))
        self.gain = float(iterpars.get("loopgain", 0.1))
        self.iterdone = self.nmajordone = self.stopcode = 0
        self.peak = self.sidelobe = 0.0
        self.columns = []

    def _stop(self, reached_major_limit=False) -> int:
        if self.iterdone >= self.niter:
            return 1
        if self.peak <= self.threshold:
            return 2
        return 9 if reached_major_limit else 0

    def cleanComplete(self, lastcyclecheck=False, reachedMajorLimit=False):
        code = self._stop(reachedMajorLimit)
        if not lastcyclecheck and code:
            self.stopcode = code
        return code

    def resetminorcycleinfo(self):
        self.peak = self.sidelobe = 0.0

    def mergeinitrecord(self, rec, field):
        self.merged_init.append((field, dict(rec)))
        self.peak = max(self.peak, float(rec["peakresidual"]))
        self.sidelobe = max(self.sidelobe, float(rec["maxpsfsidelobe"]))

    def getminorcyclecontrols(self):
        left = self.niter - self.iterdone
        cycleniter = min(self.cycleniter, left) if self.cycleniter > 0 else left
        return {"cycleniter": int(cycleniter), "loopgain": self.gain,
                "cyclethreshold": max(self.threshold, self.cyclefactor * self.sidelobe
                                      * self.peak)}

    def mergeexecrecord(self, rec, field):
        self.merged_exec.append((field, rec))
        self.iterdone += int(rec["iterdone"])
        self.columns.append(np.asarray(rec["summaryminor"]))
        self.peak = float(rec["peakresidual"])

    def endmajorcycle(self):
        self.nmajordone += 1

    def getiterationsummary(self):
        return {"iterdone": self.iterdone, "nmajordone": self.nmajordone,
                "stopcode": self.stopcode, "niter": self.niter,
                "summaryminor": (np.concatenate(self.columns, axis=1) if self.columns
                                 else np.zeros((len(ROWS), 0)))}

    def done(self):
        self.closed = True


class FakeChunk:
    """A chunk whose channels "clean" by losing ``gain`` of their peak per iteration."""

    def __init__(self, index, first, peaks, fields=("0",), beams=None, valid=None,
                 fail_in=None):
        self.index, self.first = index, first
        self.peaks = {f: [float(p) for p in peaks] for f in fields}
        self.fields = list(fields)
        n = len(peaks)
        self.beams = beams or [beam(10.0)] * n
        self.valid = valid or [True] * n
        self.fail_in = fail_in
        self.calls = []  # (step name, args) in order
        self.closed = False

    def __getattribute__(self, name):
        fail_in = object.__getattribute__(self, "fail_in")
        if name == fail_in:
            raise RuntimeError(f"{name}: CASA failed (fake)")
        return object.__getattribute__(self, name)

    def make_psf(self):
        return {"beams": {f: list(self.beams) for f in self.fields},
                "valid": {f: list(self.valid) for f in self.fields}, "memreq_gb_per_chan": 0.0}

    def make_pb(self):
        return None

    def major_cycle(self, controls):
        return None

    def init_minor(self):
        return {f: {"peakresidual": max(self.peaks[f]), "maxpsfsidelobe": 0.2,
                    "peakresidualnomask": max(self.peaks[f]), "madrms": 0.0,
                    "nsigmathreshold": 0.0, "masksum": -1.0} for f in self.fields}

    def setup_mask(self):
        return {f: False for f in self.fields}

    def minor_cycle(self, controls):
        out = {}
        for f in self.fields:
            done = []
            for c, peak in enumerate(self.peaks[f]):
                n = 0
                while peak > controls["cyclethreshold"] and n < controls["cycleniter"]:
                    peak *= 1.0 - controls["loopgain"]
                    n += 1
                self.peaks[f][c] = peak
                done.append(n)
            summ = np.zeros((len(ROWS), len(done)))
            summ[ROWS.index("iterDone")] = done
            summ[ROWS.index("peakRes")] = self.peaks[f]
            summ[ROWS.index("chan")] = np.arange(len(done))
            out[f] = {"iterdone": sum(done), "maxcycleiterdone": max(done),
                      "peakresidual": max(self.peaks[f]), "updatedmodelflag": sum(done) > 0,
                      "summaryminor": summ}
        return out

    def set_psf_beams(self, beams):
        return None

    def restore(self, beams, pbcor, common_planes=None):
        return None

    def finish(self):
        return None

    def status(self):
        return {"chunk": self.index, "busy_s": {"minor_cycle": 0.001}}

    def close(self):
        self.closed = True


class FakeChunkSet(ChunkSet):
    """The chunk-set facade over FakeChunks, in this process; ``stretches`` lists the step
    names of every call, in order."""

    def __init__(self, chunks: list[FakeChunk], observers=None):
        super().__init__([SimpleNamespace(name=f"chunk {c.index}") for c in chunks], observers)
        self.chunks = chunks
        self.stretches = []

    def _call(self, calls):
        self.stretches.append(tuple(name for name, *_ in calls[0]))
        out = []
        for chunk, chunk_calls in zip(self.chunks, calls):
            results = []
            for name, *args in chunk_calls:
                chunk.calls.append((name, args))
                results.append(getattr(chunk, name)(*args))
            out.append(results)
        return out


def fake_plan(ranges, fields=("0",), niter=100, restoration=True, pbcor=False, common=False,
              nstokes=1):
    """A plan of plain values for the loop: chunks at ``ranges`` ((first, nchan) each)."""
    nchan = sum(n for _, n in ranges)
    return SimpleNamespace(
        params={"restoration": restoration, "pbcor": pbcor, "niter": niter, "imsize": 64,
                "fullsummary": False},
        records=SimpleNamespace(decpars={f: {"usemask": "user"} for f in fields}),
        grid=SimpleNamespace(nchan=nchan, nstokes=nstokes),
        chunks=[SimpleNamespace(first=f, nchan=n) for f, n in ranges],
        fields=list(fields), common_beam=common, continues=False)
