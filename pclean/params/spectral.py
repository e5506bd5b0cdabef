"""The full cube's output channel grid, resolved once on the coordinator by CASA itself, and the
chunks cut from it.

We do not re-implement tclean's start/width/nchan/outframe logic: the coordinator builds a
synthesisimager for the *whole* cube, lets ``defineimage`` resolve the grid exactly as serial
tclean does (``nchan=-1``, defaults, velocity or frequency starts, frames, rest frequency, spw
channel ranges, several spws), and reads the coordinate system back. No image is written and no
visibility is gridded.

A chunk is never described again in the user's terms (a new start/width): CASA re-derives such a
grid and its data-to-channel mapping from the data, and every way that re-derivation differs from
the full cube's is a wrong chunk (a start CASA moves inward for some nchan, optical-velocity
increments that depend on nchan, spw channel ranges and several spws placed from spw channel 0,
measured as crashes or as the top channels getting data serial flags). Instead, as CASA's own
parallel cube mode does with sub-images of the full cube (``CubeMajorCycleAlgorithm``), a chunk is
the full cube's coordinate system with its spectral origin shifted to the chunk's first channel
(casacore's ``CoordinateSystem::subImage``, the coordinates a SubImage has), handed to
``defineimage`` as its ``csys`` record: ``SynthesisParamsImage`` then uses that coordinate system
as it is. Workers still check their channel frequencies against the full cube's
(:func:`verify_chunk`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pclean import casa


@dataclass
class CubeGrid:
    """The full output grid: what serial tclean's images will have on their spectral axis."""

    nchan: int
    freqs_hz: np.ndarray  # world frequency of every channel, in the image's frame
    frame: str
    csys: dict  # the full cube's coordinate system record

    @property
    def width(self) -> float:
        """The narrowest channel spacing of the grid (Hz)."""
        if self.nchan < 2:
            spec = self.csys["spectral2"]
            axis = spec["wcs"] if "wcs" in spec else spec["tabular"]  # linear or tabular axis
            return abs(float(np.atleast_1d(axis["cdelt"])[0]))
        return float(np.abs(np.diff(self.freqs_hz)).min())

    @property
    def nstokes(self) -> int:
        key = next(k for k in self.csys if k.startswith("stokes"))
        return len(np.atleast_1d(self.csys[key]["stokes"]))

    @property
    def fracbw(self) -> float:
        """CASA's serial definition: first and last channel of the full image, in its frame."""
        fmin, fmax = sorted((abs(float(self.freqs_hz[0])), abs(float(self.freqs_hz[-1]))))
        return 2.0 * (fmax - fmin) / (fmax + fmin)

    def chunk_csys(self, first: int) -> dict:
        """The coordinate system of a sub-cube starting at full-cube channel ``first``."""
        return cut_csys(self.csys, first)


def spectral_freqs(csys_record: dict, nchan: int) -> tuple[np.ndarray, str]:
    """World frequencies (Hz) of every channel of a coordinate system record."""
    ct = casa.tools()
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


def gridder_spacings(csys_record: dict, nchan: int) -> np.ndarray:
    """``f[k+1] - f[k]`` for every channel ``k`` of the cube, as CASA's gridder computes the
    channel spacing of a sub-cube whose first channel is ``k``: world frequencies of single
    pixels (``SpectralCoordinate::toWorld``) converted to LSRK, the frame it matches data in.

    CASA quirk: FTMachine::interpolateFrequencyTogrid takes the spacing of an image's first two
    channels, ``imageFreq[1] - imageFreq[0]``, to decide how to interpolate the data
    (``floor(spacing / data channel spacing)`` interpolation points per image channel, and the
    points' offsets). Converted to LSRK the spacing of a linear grid differs in its last bits
    from channel to channel, and where image channels are a whole number of data channels the
    floor then flips. Measured (fuzz seed 1134: image channels of exactly 2 data channels, a
    TOPO image of LSRK data): the full cube's spacing gives 2.0, a sub-cube starting at channel
    3, 6, 8, 9, 11 or 20 of 24 gives 1.99999999999787, and those sub-cubes grid the channels at
    the spw edges differently (a sumwt of 0 for serial's 212.9, a beam 4e-4 off).
    A sub-cube's coordinates are the full cube's with the pixel origin shifted by a whole
    number (``cut_csys``), so its pixel 0 and 1 give exactly these values."""
    cs = casa.tools().coordsys()
    cs.fromrecord(csys_record)
    try:
        spec_pixel = int(cs.findcoordinate("spectral")["pixel"][0])
        spec_world = int(cs.findcoordinate("spectral")["world"][0])
        if cs.referencecode("spectral")[0] not in ("REST", "Undefined"):
            cs.setconversiontype(spectral="LSRK")
        pixel = list(np.asarray(cs.referencepixel()["numeric"], dtype=float))
        freqs = []
        for k in range(nchan):
            pixel[spec_pixel] = float(k)
            freqs.append(float(cs.toworld(pixel, "n")["numeric"][spec_world]))
    finally:
        cs.done()
    return np.diff(np.asarray(freqs, dtype=float))


def cut_csys(csys_record: dict, first: int) -> dict:
    """``csys_record`` with its spectral pixel origin moved to channel ``first`` (a sub-image's
    coordinates: linear and tabular spectral axes alike)."""
    ct = casa.tools()
    cs = ct.coordsys()
    cs.fromrecord(csys_record)
    try:
        shift = [0.0] * int(cs.naxes())
        shift[int(cs.findcoordinate("spectral")["pixel"][0])] = float(first)
        return cs.subimage(originshft=shift)
    finally:
        cs.done()


def resolve_grid(si) -> CubeGrid:
    """The full cube's grid from a synthesisimager on which ``defineimage`` has run."""
    nchan = int(si.updatenchan())
    csys = si.getcsys()["coordsys"]
    if nchan < 1:
        raise ValueError("the data selection gives no channel for this cube")
    freqs, frame = spectral_freqs(csys, nchan)
    return CubeGrid(nchan=nchan, freqs_hz=freqs, frame=frame, csys=csys)


def verify_chunk(csys_record: dict, nchan: int, expected_hz: np.ndarray, chunk: str) -> None:
    """Fail loudly if a chunk's channels are not the full cube's (relative 1e-12), naming the
    chunk and the first channel that differs."""
    freqs, _ = spectral_freqs(csys_record, nchan)
    expected = np.asarray(expected_hz, dtype=float)
    if len(freqs) != len(expected):
        raise RuntimeError(f"{chunk}: CASA made {len(freqs)} channels, the full cube has "
                           f"{len(expected)} there")
    bad = np.flatnonzero(~np.isclose(freqs, expected, rtol=1e-12, atol=0))
    if bad.size:
        k = int(bad[0])
        raise RuntimeError(f"{chunk}: channel grid differs from the full cube's at its plane {k}: "
                           f"{freqs[k]!r} Hz, full cube {expected[k]!r} Hz")
