"""The full cube's output channel grid, resolved once on the coordinator by CASA itself.

We do not re-implement tclean's start/width/nchan/outframe logic: the coordinator builds a
synthesisimager for the *whole* cube, lets ``defineimage`` resolve the grid exactly as serial
tclean does (``nchan=-1``, defaults, velocity or frequency starts, frames, rest frequency), and
reads the coordinate system back. No image is written and no visibility is gridded.

Each chunk is then described in the user's own terms, so that CASA maps data to channels the
same way it does for the whole cube:

* start and width in channels (or left to default): the chunk starts at channel
  ``start + k*width``. Checked fact: on TOPO-labelled data, defining chunks by explicit
  frequencies instead changes which data land in the edge channels (sumwt 33726 vs 33417).
* start and width both quantities (Hz or km/s): ``start + k*width`` in that unit, as CASA builds
  the grid from them.
* anything else (a quantity start with a default width, ...): the world value of the chunk's
  first channel read from the full cube's coordinate system.

Workers check that their chunk's channel frequencies equal the full cube's (``verify_chunk``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from pclean import casaenv

_CHANNEL_RE = re.compile(r"^\s*[-+]?\d+\s*$")


def is_channel_value(value) -> bool:
    """True for tclean's channel-index form of start/width: '' , an int, or a digit string."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, str) and (value.strip() == "" or bool(_CHANNEL_RE.match(value)))


def _quantity(value):
    qa = casaenv.tools().quanta()
    if isinstance(value, dict):
        return value
    return qa.quantity(value)


@dataclass
class CubeGrid:
    """The full output grid: what serial tclean's images will have on their spectral axis."""

    nchan: int
    freqs_hz: np.ndarray  # world frequency of every channel, in the image's frame
    frame: str
    csys: dict  # the full cube's coordinate system record

    @property
    def fracbw(self) -> float:
        """CASA's serial definition: first and last channel of the full image, in its frame."""
        fmin, fmax = float(self.freqs_hz[0]), float(self.freqs_hz[-1])
        return 2.0 * (fmax - fmin) / (fmax + fmin)


def spectral_freqs(csys_record: dict, nchan: int) -> tuple[np.ndarray, str]:
    """World frequencies (Hz) of every channel of a coordinate system record."""
    ct = casaenv.tools()
    cs = ct.coordsys()
    cs.fromrecord(csys_record)
    try:
        spec_axis = cs.findcoordinate("spectral")["world"][0]
        ref = cs.referencepixel()["numeric"]
        pixels = np.tile(ref, (nchan, 1)).T.astype(float)
        pixels[spec_axis, :] = np.arange(nchan)
        world = cs.toworldmany(pixels)["numeric"][spec_axis]
        frame = cs.referencecode("spectral")[0]
    finally:
        cs.done()
    return np.asarray(world, dtype=float), frame


def resolve_grid(selpars: dict, impars: dict, gridpars: dict) -> CubeGrid:
    """Ask CASA for the full cube's grid (selection and image definition as tclean makes them)."""
    ct = casaenv.tools()
    si = ct.synthesisimager()
    try:
        for key in sorted(selpars):
            si.selectdata(selpars[key])
        si.defineimage(impars, gridpars)
        nchan = int(si.updatenchan())
        csys = si.getcsys()["coordsys"]
    finally:
        si.done()
    if nchan < 1:
        raise ValueError("the data selection gives no channel for this cube "
                         f"(start={impars['start']!r} width={impars['width']!r} "
                         f"nchan={impars['nchan']!r})")
    freqs, frame = spectral_freqs(csys, nchan)
    return CubeGrid(nchan=nchan, freqs_hz=freqs, frame=frame, csys=csys)


def _format_quantity(value: float, unit: str) -> str:
    return f"{value!r}{unit}"


def chunk_start(impars: dict, grid: CubeGrid, first: int):
    """tclean's ``start`` for a chunk whose first channel is full-cube channel ``first``."""
    start, width = impars["start"], impars["width"]
    if is_channel_value(start) and is_channel_value(width):
        s = int(start) if str(start).strip() else 0
        w = int(width) if str(width).strip() else 1
        return s + first * w
    if str(start).strip() and str(width).strip() and not is_channel_value(width):
        qa = casaenv.tools().quanta()
        qs, qw = _quantity(start), _quantity(width)
        if qa.compare(qs, qw):
            value = qs["value"] + first * qa.convert(qw, qs["unit"])["value"]
            return _format_quantity(value, qs["unit"])
    # a world-coordinate start we must read off the full grid
    if "m/s" in str(start) or "m/s" in str(width):
        return _velocity_of(grid, first, impars)
    return _format_quantity(float(grid.freqs_hz[first]), "Hz")


def _velocity_of(grid: CubeGrid, chan: int, impars: dict) -> str:
    ct = casaenv.tools()
    cs = ct.coordsys()
    cs.fromrecord(grid.csys)
    try:
        v = cs.frequencytovelocity(value=[float(grid.freqs_hz[chan])], frequnit="Hz",
                                   doppler=impars.get("veltype") or "radio", velunit="m/s")
    finally:
        cs.done()
    return _format_quantity(float(np.atleast_1d(v)[0]), "m/s")


def verify_chunk(csys_record: dict, nchan: int, expected_hz: np.ndarray) -> None:
    """Fail loudly if a chunk's channels are not the full cube's (relative 1e-12)."""
    freqs, _ = spectral_freqs(csys_record, nchan)
    if len(freqs) != len(expected_hz) or not np.allclose(freqs, expected_hz, rtol=1e-12, atol=0):
        raise RuntimeError(
            "chunk channel grid differs from the full cube's: "
            f"got {freqs[:3]}... expected {np.asarray(expected_hz)[:3]}...")
