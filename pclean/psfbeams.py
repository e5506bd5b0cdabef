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
import re


from pclean import casaenv

EMPTY_BEAM_ARCSEC = 1e-6  # what CASA gives every channel of a sub-cube without a valid psf


def read(path: str) -> list[dict]:
    """Stokes-0 beam records of every channel of an image (CASA's own quantities)."""
    tb = casaenv.tools().table()
    tb.open(path)
    try:
        info = tb.getkeyword("imageinfo")
    finally:
        tb.close()
        tb.done()
    if "perplanebeams" in info:
        planes = info["perplanebeams"]
        return [planes[f"*{c}"] for c in range(int(planes["nChannels"]))]
    return [info["restoringbeam"]] if "restoringbeam" in info else []


def write(path: str, beams: list[dict]) -> None:
    """Set every channel's beam (all Stokes planes alike, as CASA copies Stokes 0's)."""
    tb = casaenv.tools().table()
    tb.open(path, nomodify=False)
    try:
        info = tb.getkeyword("imageinfo")
        if "perplanebeams" in info:
            planes = info["perplanebeams"]
            nchan, nstokes = int(planes["nChannels"]), int(planes["nStokes"])
            for s in range(nstokes):
                for c in range(nchan):
                    planes[f"*{s * nchan + c}"] = dict(beams[c])
        else:
            info["restoringbeam"] = dict(beams[0])
        tb.putkeyword("imageinfo", info)
    finally:
        tb.close()
        tb.done()


def area(beam: dict) -> float:
    qa = casaenv.tools().quanta()

    def arcsec(q):
        return qa.convert(qa.quantity(float(q["value"]), q["unit"]), "arcsec")["value"]

    return arcsec(beam["major"]) * arcsec(beam["minor"])


def empty_beam() -> dict:
    return {"major": {"unit": "arcsec", "value": EMPTY_BEAM_ARCSEC},
            "minor": {"unit": "arcsec", "value": EMPTY_BEAM_ARCSEC},
            "positionangle": {"unit": "deg", "value": 0.0}}


_FIT_ERROR = re.compile(r"\[Chan(\d+):Pol0\] Error Gaussian fit to PSF")
_BLANK = re.compile(r"\[C(\d+):P0\]")
_SUBCUBES = re.compile(r"Subcubes: (\d+)")
_FIT_DONE = "Time to fit Gaussian to PSF"


def unfitted_planes(log_text: str, nplanes: int) -> set[int]:
    """Planes of an image of ``nplanes`` channels whose psf CASA could not fit, from what it
    logged while making that psf: a fit that threw or a blank psf (its Stokes-0 plane, whose
    beam CASA gives every Stokes plane). Such a plane carries a copied beam, indistinguishable
    from a fitted one in the image. CASA fits sub-cube by sub-cube ("Subcubes: N", then one
    "Time to fit" per sub-cube, channels numbered within it; the first take the remainder)."""
    segments = log_text.split(_FIT_DONE)[:-1] or [log_text]  # INFO lines may be filtered out
    counts = _SUBCUBES.findall(segments[0])
    nsub = int(counts[-1]) if counts else 1
    if len(segments) != nsub:
        raise RuntimeError(f"CASA's log shows {len(segments)} psf fits for {nsub} sub-cubes")
    starts = [first for first, _n in _split(nplanes, nsub)]
    out = set()
    for start, text in zip(starts, segments):
        for line in text.splitlines():
            m = _FIT_ERROR.search(line)
            if m:
                out.add(start + int(m.group(1)))
            elif "PSF is blank for" in line:
                out.update(start + int(c) for c in _BLANK.findall(line))
    return out


def _split(nchan: int, n: int) -> list[tuple[int, int]]:
    size, rem = divmod(nchan, n)
    out, first = [], 0
    for k in range(n):
        m = size + (1 if k < rem else 0)
        out.append((first, m))
        first += m
    return out


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
    return _split(nchan, max(1, min(nchan, math.ceil(memreq_gb_per_chan * 2.0**30 * nchan
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
    ct = casaenv.tools()
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
