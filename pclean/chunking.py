"""The chunk plan: how the cube's channels are split among workers, and what each chunk is.

Chunks are pinned to workers (they keep state across cycles) and every imaging pass runs on all
of them together, so there is no work stealing; each chunk pays a fixed cost at every pass
(``costmodel``). The default plan is therefore the fewest chunks per worker whose largest chunk
fits the worker's memory (usually one), balanced to within a channel. The user may force a chunk
size with ``chanchunk`` (or give every chunk's size as a list); ``assign`` then balances those
chunks over the workers by the model.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field

import numpy as np

from pclean import costmodel

# Neighbour points each side of CASA's frequency interpolation (InterpolateArray1D): nearest
# takes the closest, linear the two around, cubic the four around.
_REACH = {"nearest": 0.5, "linear": 1.0, "cubic": 2.0}


def model_halo(interpolation: str, data_per_image_width: float) -> int:
    """Model planes a chunk needs each side of its own channels so that their residuals are
    serial's. A residual channel is gridded from the data channels around it (interpolated
    onto its frequency), and each of those data channels' model visibility is interpolated from
    the image channels around *it*: the reach is that of both interpolations, in image channels
    (``data_per_image_width``: the widest data channel over the image's channel width).
    Measured: cubic interpolation with two model planes each side (CASA's own parallel cube
    mode gives sub-cubes two) left a chunk-edge residual 4.4e-3 of peak off; with one, 16%."""
    reach = _REACH.get(interpolation, 2.0)
    return int(math.ceil(reach * (1.0 + data_per_image_width) - 1e-9))


def plane_pixels(imsize) -> int:
    """Pixels per image plane from tclean's ``imsize`` (one number means a square)."""
    sizes = np.atleast_1d(imsize)
    return int(sizes[0]) * int(sizes[-1])


def split(nchan: int, nchunks: int) -> list[tuple[int, int]]:
    """``nchunks`` contiguous (first, n) ranges whose sizes differ by at most one."""
    nchunks = max(1, min(nchunks, nchan))
    base, extra = divmod(nchan, nchunks)
    out, first = [], 0
    for k in range(nchunks):
        n = base + (1 if k < extra else 0)
        out.append((first, n))
        first += n
    return out


def plan(nchan: int, nworkers: int, chanchunk=None, npix: int = 0,
         memory_limit_mb: float | None = None) -> list[tuple[int, int]]:
    """(first channel, number of channels) for every chunk. ``chanchunk``: channels per chunk, or
    the list of every chunk's size (which must add up to ``nchan``); by default ``npix`` pixels
    per plane and the workers' memory limit let the cost model split a worker's channels when
    they would not fit."""
    if isinstance(chanchunk, (list, tuple)):
        if sum(chanchunk) != nchan:
            raise ValueError(f"chanchunk: the chunk sizes {list(chanchunk)} add up to "
                             f"{sum(chanchunk)} channels, the cube has {nchan}")
        starts = np.concatenate([[0], np.cumsum(chanchunk)[:-1]])
        return [(int(f), int(n)) for f, n in zip(starts, chanchunk)]
    if chanchunk:
        return [(first, min(chanchunk, nchan - first)) for first in range(0, nchan, chanchunk)]
    k = costmodel.chunks_per_worker(nchan, npix, nworkers, memory_limit_mb)
    return split(nchan, k * nworkers)


def assign(chunks: list[tuple[int, int]], nworkers: int, npix: int = 0) -> list[list[int]]:
    """Chunk indices per worker, balancing the model's time per pass (largest chunk to the
    least loaded worker)."""
    loads = [[0.0, w, []] for w in range(max(1, nworkers))]
    for i in sorted(range(len(chunks)), key=lambda i: -chunks[i][1]):
        target = min(loads, key=lambda x: (x[0], x[1]))
        target[0] += costmodel.chunk_pass_s(chunks[i][1], npix)
        target[2].append(i)
    return [sorted(x[2]) for x in loads]


def halo(first: int, n: int, nchan: int, deconvolving: bool,
         model_planes: int = 2) -> tuple[int, int]:
    """Neighbour channels (before, after) a chunk grids besides its own: the ``model_planes``
    its own channels' prediction needs (``model_halo``), when there is a model; and one for a
    1-channel chunk of a wider cube. CASA quirk: an image of ONE channel is gridded without frequency interpolation
    (FTMachine::interpolateFrequencyTogrid), so a 1-channel chunk maps data to its channel
    differently from the same channel inside the cube (measured: psf 3.2e-3 of peak off in the
    last channel of a 1.03 GHz-start TOPO cube, sumwt 174 vs 0 in an edge channel)."""
    if deconvolving:
        return min(model_planes, first), min(model_planes, nchan - first - n)
    if n == 1 and nchan > 1:
        return (0, 1) if first + 1 < nchan else (1, 0)
    return 0, 0


def model_plane_file(workroot: str, channel: int) -> str:
    """Where the chunk owning cube channel ``channel`` leaves its model plane for neighbours."""
    return os.path.join(workroot, "halo", f"model-{channel:06d}.npy")


@dataclass
class ChunkSpec:
    """Everything a worker needs for its chunk; full-cube values are computed by params.

    A chunk deconvolves its own channels only, in images holding exactly them (``imagename``:
    psf, residual, model, mask, pb, sumwt, image), so its deconvolver's records are those of its
    own channels. With halo channels it grids a wider sub-cube (``grid_imagename``) whose model
    holds, before each major cycle, its own model planes and its neighbours' (read from the
    files they leave after each minor cycle): the prediction of its own channels then sees the
    same model planes as serial tclean's, and its own residual planes are copied into the
    deconvolver's images. Without halo channels both are the same images."""

    index: int
    first: int  # first full-cube channel of this chunk
    nchan: int  # its own channels
    workdir: str
    selpars: dict
    cube_impars: dict  # the full cube's image parameters, as tclean's
    grid_imagename: str  # prefix of the gridded sub-cube's images
    gridpars: dict
    normpars: dict
    weightpars: dict
    decpars: dict
    expected_freqs_hz: np.ndarray  # the gridded sub-cube's channels in the full cube
    deconvolve: bool  # niter > 0 or restoration
    imagename: str  # prefix of this chunk's own-channel images
    fracbw: float | None = None  # full-cube fracBW for briggsbwtaper
    cycle_threads: int | None = None  # OpenMP threads for major and minor cycles
    weight_density: str | None = None  # shared density image when perchanweightdensity=False
    halo_before: int = 0
    halo_after: int = 0
    # (plane of the gridded sub-cube, file a neighbour writes it to) for every halo plane
    halo_inputs: list = field(default_factory=list)
    # (own plane, file) for every own plane a neighbour needs
    halo_outputs: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"chunk {self.index} (channels {self.first}-{self.first + self.nchan - 1})"

    @property
    def img_first(self) -> int:
        return self.first - self.halo_before

    @property
    def img_nchan(self) -> int:
        return self.nchan + self.halo_before + self.halo_after

    @property
    def has_halo(self) -> bool:
        return bool(self.halo_before or self.halo_after)

    @property
    def npix(self) -> int:
        return plane_pixels(self.cube_impars["imsize"])

    def grid_impars(self, cube_csys: dict) -> dict:
        """The gridded sub-cube's image parameters: the full cube's coordinate system (as
        defined where the chunk runs) cut at its first channel (see ``spectral``)."""
        from pclean import spectral

        nx, ny = (list(np.atleast_1d(self.cube_impars["imsize"])) * 2)[:2]
        nstokes = len(np.atleast_1d(cube_csys["stokes1"]["stokes"]))
        impars = dict(copy.deepcopy(self.cube_impars), imagename=self.grid_imagename,
                      nchan=self.img_nchan, csys=spectral.cut_csys(cube_csys, self.img_first),
                      imshape=[int(nx), int(ny), int(nstokes), self.img_nchan],
                      # defineimage takes the observatory position (for the FTMachines' frame
                      # conversions) from a coordinate system it builds, not from a given one
                      obslocation_rec=cube_csys["telescopeposition"])
        if impars["specmode"] == "cubedata":
            # CASA quirk: with a given csys, a cubedata image (frame 'Undefined') is gridded
            # WITH frame conversion of the data unless its outframe is REST; serial's own
            # definition grids it without (measured: the top channel of TOPO data empty,
            # image 84% off)
            impars["outframe"] = "REST"
        return impars

    @property
    def logdir(self) -> str:
        return os.path.join(os.path.dirname(self.workdir), "logs")


def link_halos(specs: list[ChunkSpec], workroot: str) -> None:
    """Fill every chunk's ``halo_inputs`` and the owners' ``halo_outputs``."""
    owner = {}
    for spec in specs:
        for c in range(spec.first, spec.first + spec.nchan):
            owner[c] = spec
    for spec in specs:
        halo_channels = (list(range(spec.img_first, spec.first))
                         + list(range(spec.first + spec.nchan, spec.img_first + spec.img_nchan)))
        for c in halo_channels:
            path = model_plane_file(workroot, c)
            spec.halo_inputs.append((c - spec.img_first, path))
            src = owner[c]
            if (c - src.first, path) not in src.halo_outputs:
                src.halo_outputs.append((c - src.first, path))
