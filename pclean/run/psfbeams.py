"""The psf's per-channel beams as serial tclean sets them for the whole cube.

CASA quirk (SIImageStore::makeImageBeamSet, run for every *gridding sub-cube*): a channel whose
psf cannot be fitted (psf peak <= 0: no data, all flagged; or the fit throws) gets the largest
beam by area of the valid channels **of the same sub-cube**, or 1e-6 arcsec if there is none.
Serial tclean grids a cube as one sub-cube unless it does not fit in memory
(SynthesisImagerVi2::nSubCubeFitInMemory); a chunk is its own sub-cube, so left alone it fills
with the largest beam of *its* channels (measured: beams up to 99% off, and the restored image
with them). The coordinator recomputes the fill over serial's sub-cubes from every chunk's valid
beams and writes the result into the chunks' psfs before their deconvolvers read them (the first
``initminorcycle``, or ``restore``: beams written later are not seen).
"""
from __future__ import annotations

import math
import os

from pclean import casa
from pclean.params.chunking import split

EMPTY_BEAM_ARCSEC = 1e-6  # what CASA gives every channel of a sub-cube without a valid psf


_ARCSEC = {"arcsec": 1.0, "arcmin": 60.0, "deg": 3600.0, "rad": 180.0 * 3600.0 / math.pi,
           "mas": 1e-3, "marcsec": 1e-3}


def _arcsec(q: dict) -> float:
    unit = q["unit"]
    if unit in _ARCSEC:
        return float(q["value"]) * _ARCSEC[unit]
    qa = casa.tools().quanta()  # any other unit CASA writes
    return qa.convert(qa.quantity(float(q["value"]), unit), "arcsec")["value"]


def area(beam: dict) -> float:
    """A beam's area in arcsec^2 (up to pi/4: what CASA compares beams by)."""
    return _arcsec(beam["major"]) * _arcsec(beam["minor"])


def max_area_channel(beams: list[dict]) -> int:
    """The channel whose Stokes-0 plane holds the cube's largest psf beam, as casacore's
    ImageBeamSet places its max-area beam (``_calculateAreas``: the first maximum in storage
    order, channels fastest, so Stokes 0 and the first of equal beams, e.g. of a fill's copies).

    CASA quirk (restoringbeam='common'): SIImageStore::restore computes the common beam as
    ``CasaImageBeamSet(itsPSFBeams).getCommonBeam()``. When the largest beam does not enclose
    every other, getCommonBeam recurses on ``ImageBeamSet newBeamSet(*this)`` with the enlarged
    beam put at the max-area position by ``setBeams``; the copy shares the Matrix storage
    (casacore Array copy constructor: reference semantics) and setBeams assigns element-wise, so
    each level writes into the psf beams restore then uses. That plane ends with the common beam
    itself as its psf beam, rescaleResolution finds "Input and output beam sizes are the same"
    and its residual is added unconvolved and unscaled. (Measured, seed 2000: channel 7 Stokes I,
    0.24 of peak; a restore with an explicit beam, as a chunk's, convolves it.)"""
    areas = [area(b) for b in beams]
    return areas.index(max(areas))


def empty_beam() -> dict:
    return {"major": {"unit": "arcsec", "value": EMPTY_BEAM_ARCSEC},
            "minor": {"unit": "arcsec", "value": EMPTY_BEAM_ARCSEC},
            "positionangle": {"unit": "deg", "value": 0.0}}


def fill(beams: list[dict], valid: list[bool], subcubes: list[tuple[int, int]]) -> list[dict]:
    """The cube's beams after CASA's fill: every invalid channel gets the largest valid beam of
    its sub-cube ((first, n) ranges)."""
    out = list(beams)
    for first, n in subcubes:
        idx = range(first, first + n)
        good = [c for c in idx if valid[c]]
        best = max((beams[c] for c in good), key=area) if good else empty_beam()
        for c in idx:
            if not valid[c]:
                out[c] = best
    return out


def serial_subcubes(nchan: int, memreq_gb_per_chan: float) -> list[tuple[int, int]]:
    """The sub-cubes serial tclean would grid this cube in, on this machine now
    (SynthesisImagerVi2::nSubCubeFitInMemory): CASA's required memory for the cube (what a chunk
    records as ``memreq`` in its images' miscinfo, per channel) against 80% (casarc
    system.resources.memfrac) of the free memory (or system.resources.memory MB); the first
    channels take the remainder."""
    memfrac, memory_mb = _casarc("system.resources.memfrac", 80.0), _casarc(
        "system.resources.memory", -1.0)
    avail = memory_mb * 2.0**20 if memory_mb > 0 else _mem_free() * memfrac / 100.0
    return split(nchan, max(1, min(nchan, math.ceil(memreq_gb_per_chan * 2.0**30 * nchan
                                                       / avail))))


def _mem_free() -> float:
    """casacore's HostInfo::memoryFree on Linux: MemFree of /proc/meminfo (measured: CASA's
    'Available mem.' was 80% of it)."""
    import psutil

    return float(psutil.virtual_memory().free)


def _casarc(key: str, default: float) -> float:
    for path in (os.path.expanduser("~/.casarc"), os.path.expanduser("~/.casa/rc"),
                 os.path.expanduser("~/.aipsrc")):
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(":")
                    if name.strip() == key:
                        return float(value.strip())
        except (OSError, ValueError):
            continue
    return default


def common_beam(beams: list[dict], nstokes: int = 1) -> list[str]:
    """The cube's common restoring beam (restoringbeam='common'), computed by casacore's
    ImageBeamSet from the cube's psf beams as tclean does: over every plane, each channel's beam
    on all its Stokes planes. (Measured: over one Stokes plane of an IQUV cube the common beam of
    nearly round beams came out with another position angle, -1.23 deg against -0.02.)"""
    ct = casa.tools()
    qa = ct.quanta()
    ia = ct.image()
    ia.fromshape("", [1, 1, int(nstokes), len(beams)])
    try:
        for c, b in enumerate(beams):
            for s in range(int(nstokes)):
                ia.setrestoringbeam(major=b["major"], minor=b["minor"], pa=b["positionangle"],
                                    channel=c, polarization=s)
        beam = ia.commonbeam()
    finally:
        ia.close()
    # in serial's units: its restored image carries the common beam's angle in radians
    return [f"{qa.convert(beam['major'], 'arcsec')['value']!r}arcsec",
            f"{qa.convert(beam['minor'], 'arcsec')['value']!r}arcsec",
            f"{qa.convert(beam['pa'], 'rad')['value']!r}rad"]
