"""A chunk's psf beams: read and written in its psf image, and the planes CASA could not fit,
from what it logged while making the psf (the cube-wide fill is ``pclean.run.psfbeams``)."""
from __future__ import annotations

import contextlib
import re

from pclean import casa
from pclean.params.chunking import split


@contextlib.contextmanager
def _imageinfo(path: str, write: bool = False):
    """An image's ``imageinfo`` record (its beams); put back on leaving when ``write``."""
    tb = casa.tools().table()
    tb.open(path, nomodify=not write)
    try:
        info = tb.getkeyword("imageinfo")
        yield info
        if write:
            tb.putkeyword("imageinfo", info)
    finally:
        tb.close()
        tb.done()


def read(path: str) -> list[dict]:
    """Stokes-0 beam records of every channel of an image (CASA's own quantities)."""
    with _imageinfo(path) as info:
        pass
    if "perplanebeams" in info:
        planes = info["perplanebeams"]
        return [planes[f"*{c}"] for c in range(int(planes["nChannels"]))]
    return [info["restoringbeam"]] if "restoringbeam" in info else []


def write(path: str, beams: list[dict]) -> None:
    """Set every channel's beam (all Stokes planes alike, as CASA copies Stokes 0's)."""
    with _imageinfo(path, write=True) as info:
        if "perplanebeams" in info:
            planes = info["perplanebeams"]
            nchan, nstokes = int(planes["nChannels"]), int(planes["nStokes"])
            for s in range(nstokes):
                for c in range(nchan):
                    planes[f"*{s * nchan + c}"] = dict(beams[c])
        else:
            info["restoringbeam"] = dict(beams[0])


def set_plane(path: str, chan: int, stokes: int, beam: dict) -> dict:
    """Set one (channel, Stokes) plane's beam of an image; the beam it had."""
    with _imageinfo(path, write=True) as info:
        if "perplanebeams" in info:
            planes = info["perplanebeams"]
            key = f"*{stokes * int(planes['nChannels']) + chan}"
            previous, planes[key] = planes[key], dict(beam)
        else:
            previous, info["restoringbeam"] = info["restoringbeam"], dict(beam)
    return previous


def beam_record(beam: list[str]) -> dict:
    """A restoringbeam [major, minor, pa] of quantity strings as an image's beam record."""
    qa = casa.tools().quanta()
    major, minor, pa = (qa.quantity(q) for q in beam)
    return {"major": {"unit": major["unit"], "value": float(major["value"])},
            "minor": {"unit": minor["unit"], "value": float(minor["value"])},
            "positionangle": {"unit": pa["unit"], "value": float(pa["value"])}}


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
    starts = [first for first, _n in split(nplanes, nsub)]
    out = set()
    for start, text in zip(starts, segments):
        for line in text.splitlines():
            m = _FIT_ERROR.search(line)
            if m:
                out.add(start + int(m.group(1)))
            elif "PSF is blank for" in line:
                out.update(start + int(c) for c in _BLANK.findall(line))
    return out
