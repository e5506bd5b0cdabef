"""The chunk plan: how the cube's channels are split, and what each chunk is.

Chunks are pinned to workers (they keep state across cycles) and every imaging pass runs on all
of them together, so there is no work stealing; each chunk pays a fixed cost at every pass
(``costmodel``). The default plan is therefore the fewest chunks per worker whose largest chunk
fits the worker's memory (usually one), balanced to within a channel. The user may force a chunk
size with ``chanchunk`` (or give every chunk's size as a list); ``placement`` then balances
those chunks over the workers by the model.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from pclean.params import costmodel
from pclean.params.imager import ImagingRecords
from pclean.params.workdir import WorkDir

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
    """``nchunks`` contiguous (first, n) ranges whose sizes differ by at most one, the first
    ones taking the remainder (as CASA splits a cube into sub-cubes)."""
    nchunks = max(1, min(nchunks, nchan))
    base, extra = divmod(nchan, nchunks)
    out, first = [], 0
    for k in range(nchunks):
        n = base + (1 if k < extra else 0)
        out.append((first, n))
        first += n
    return out


def sizes(nchan: int, nworkers: int, chanchunk=None, npix: int = 0,
          memory_limit_mb: float | None = None, min_size: int = 1) -> list[tuple[int, int]]:
    """(first channel, number of channels) for every chunk. ``chanchunk``: channels per chunk, or
    the list of every chunk's size (which must add up to ``nchan``); by default ``npix`` pixels
    per plane and the workers' memory limit let the cost model split a worker's channels when
    they would not fit, into chunks of at least ``min_size`` channels."""
    if isinstance(chanchunk, (list, tuple)):
        if sum(chanchunk) != nchan:
            raise ValueError(f"chanchunk: the chunk sizes {list(chanchunk)} add up to "
                             f"{sum(chanchunk)} channels, the cube has {nchan}")
        starts = np.concatenate([[0], np.cumsum(chanchunk)[:-1]])
        return [(int(f), int(n)) for f, n in zip(starts, chanchunk)]
    if chanchunk:
        return [(first, min(chanchunk, nchan - first)) for first in range(0, nchan, chanchunk)]
    k = costmodel.chunks_per_worker(nchan, npix, nworkers, memory_limit_mb)
    return split(nchan, max(1, min(k * nworkers, nchan // max(1, min_size))))


def halo(first: int, n: int, nchan: int, has_model: bool,
         model_planes: int = 2, data_planes: int = 0) -> tuple[int, int]:
    """Neighbour channels (before, after) a chunk grids besides its own: the ``model_planes``
    its own channels' prediction needs (``model_halo``), when there is a model; and one for a
    1-channel chunk of a wider cube. CASA quirk: an image of ONE channel is gridded without
    frequency interpolation (FTMachine::interpolateFrequencyTogrid), so a 1-channel chunk maps
    data to its channel differently from the same channel inside the cube (measured: psf
    3.2e-3 of peak off in the last channel of a 1.03 GHz-start TOPO cube, sumwt 174 vs 0 in an
    edge channel).

    ``data_planes`` (``reach.DataHalo``): neighbour channels each side a chunk grids when
    data channels are wider than image channels, so that the data selection CASA narrows to
    the gridded sub-cube holds the data channels serial interpolates its own channels from."""
    if has_model:
        planes = max(model_planes, data_planes)
        return min(planes, first), min(planes, nchan - first - n)
    before, after = min(data_planes, first), min(data_planes, nchan - first - n)
    if n == 1 and nchan > 1 and not (before or after):
        return (0, 1) if first + 1 < nchan else (1, 0)
    return before, after


def grid_start(start: int, starts_ok) -> int:
    """The channel a chunk's gridded sub-cube starts at: ``start`` (its first own or halo
    channel), or the nearest channel before it at which CASA's gridder sees the full cube's
    channel spacing (``starts_ok``: the cube-wide ``grid_starts``; None: any channel)."""
    if starts_ok is None:
        return start
    while start > 0 and not starts_ok[start]:
        start -= 1
    return start


@dataclass
class ChunkSpec:
    """Everything a worker needs for its chunk, as plain values; full-cube values come from
    the plan (``records``: the full cube's imaging records, every field; ``cubewide``).

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
    workdir: WorkDir
    records: ImagingRecords
    cubewide: dict  # cube-wide values by provider name (see cubewide)
    expected_freqs_hz: np.ndarray  # the gridded sub-cube's channels in the full cube
    deconvolve: bool  # a model (niter > 0, a start model) or restoration
    halo_before: int = 0
    halo_after: int = 0
    cube_nchan: int = 0  # the full cube's channels
    # (field, plane of the gridded sub-cube, file a neighbour writes it to) per halo plane
    halo_inputs: list = field(default_factory=list)
    # (field, own plane, file) for every own plane a neighbour needs
    halo_outputs: list = field(default_factory=list)
    # a continued clean (calcres=False): the chunk starts from its channels of the earlier
    # call's images (the final products, ``records.impars``), not from nothing
    continues: bool = False

    @property
    def name(self) -> str:
        return f"chunk {self.index} (channels {self.first}-{self.first + self.nchan - 1})"

    @property
    def start_model(self) -> str:
        """The start model on the full cube's grid (``cubewide.StartModel``), or ''."""
        return self.cubewide.get("startmodel", "")

    @property
    def fields(self) -> list[str]:
        return self.records.fields

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
        return plane_pixels(self.records.impars["0"]["imsize"])

    def imagename(self, f: str = "0") -> str:
        """Prefix of the chunk's own-channel images of field ``f``."""
        return self.workdir.chunk_image(self.index, f)

    def grid_imagename(self, f: str = "0") -> str:
        """Prefix of its gridded sub-cube's images (its own images without halo channels)."""
        return self.workdir.grid_image(self.index, f) if self.has_halo else self.imagename(f)

    @property
    def dir(self) -> str:
        return self.workdir.chunk_dir(self.index)

    @property
    def logdir(self) -> str:
        return self.workdir.logs

    def cube_impars(self, f: str) -> dict:
        """Field ``f``'s full-cube image parameters, named for this chunk's gridded images."""
        return dict(copy.deepcopy(self.records.impars[f]), imagename=self.grid_imagename(f))

    def grid_impars(self, f: str, cube_csys: dict, cut_csys) -> dict:
        """The gridded sub-cube's image parameters: field ``f``'s full-cube coordinate system
        (as defined where the chunk runs) cut at its first channel (``cut_csys``, see
        ``spectral``)."""
        nx, ny = (list(np.atleast_1d(self.records.impars[f]["imsize"])) * 2)[:2]
        nstokes = len(np.atleast_1d(cube_csys["stokes1"]["stokes"]))
        impars = dict(self.cube_impars(f), nchan=self.img_nchan,
                      csys=cut_csys(cube_csys, self.img_first),
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

    def normpars(self, f: str) -> dict:
        return dict(self.records.normpars[f], imagename=self.grid_imagename(f))

    def decpars(self, f: str) -> dict:
        return dict(self.records.decpars[f], imagename=self.imagename(f))


def chunk_specs(ranges: list[tuple[int, int]], workdir: WorkDir, records: ImagingRecords,
                cubewide: dict, freqs_hz: np.ndarray, has_model: bool, restoring: bool,
                model_planes: int, grid_starts=None, interp_anchors=(),
                data_planes: int = 0, low_edges=()) -> list[ChunkSpec]:
    """Every chunk of the cube (channel ranges in order), with its halo and who sends it;
    a gridded sub-cube starts only where ``grid_starts`` allows (``grid_start``), a chunk
    owning a channel of ``interp_anchors`` grids up to that end of the cube (see
    ``reach.InterpAnchors``), and one whose residuals take a spw's lowest data channels
    grids up to that spw's top (``low_top``)."""
    nchan = len(freqs_hz)
    specs = []
    for index, (first, n) in enumerate(ranges):
        before, after = halo(first, n, nchan, has_model, model_planes, data_planes)
        sides = {side for c, side in interp_anchors or () if first <= c < first + n}
        if "start" in sides:
            before = first
        if "end" in sides:
            after = nchan - first - n
        before = first - grid_start(first - before, grid_starts)
        if has_model:
            after = low_top(first, n, first - before, first + n - 1 + after, low_edges,
                            model_planes) - (first + n - 1)
        specs.append(ChunkSpec(
            index=index, first=first, nchan=n, workdir=workdir, records=records,
            cubewide=dict(cubewide),
            expected_freqs_hz=np.asarray(freqs_hz[first - before:first + n + after]),
            deconvolve=has_model or restoring, halo_before=before, halo_after=after,
            cube_nchan=nchan))
    if has_model:  # model planes are exchanged only where there is a model
        link_halos(specs)
    return specs


def low_top(first: int, n: int, start: int, end: int, low_edges, model_planes: int) -> int:
    """The last channel a chunk owning ``first``..``first+n-1`` grids to, from its gridded
    sub-cube ``start``..``end``, so that each spw's model is predicted from the channels
    serial's is (``interpolation.low_edges``: serial does not degrid the channels below a
    spw's lowest, a sub-cube ending inside the spw does). It matters where the sub-cube holds
    a channel below the spw's lowest and the chunk owns a channel whose residual takes the
    spw's lowest data channels (within ``model_planes`` above it, the reach of both
    interpolations); the sub-cube then reaches the spw's top (no data past its end)."""
    for low_lo, low_hi, top in low_edges or ():
        owns = first <= low_hi + model_planes and first + n - 1 >= low_lo
        if owns and start <= low_hi - 1 and end < top:
            end = top
    return end


def link_halos(specs: list[ChunkSpec]) -> None:
    """Fill every chunk's ``halo_inputs`` and the owners' ``halo_outputs``."""
    owner = {}
    for spec in specs:
        for c in range(spec.first, spec.first + spec.nchan):
            owner[c] = spec
    for spec in specs:
        halo_channels = (list(range(spec.img_first, spec.first))
                         + list(range(spec.first + spec.nchan, spec.img_first + spec.img_nchan)))
        for f in spec.fields:
            for c in halo_channels:
                path = spec.workdir.halo_plane(c, f)
                spec.halo_inputs.append((f, c - spec.img_first, path))
                src = owner[c]
                if (f, c - src.first, path) not in src.halo_outputs:
                    src.halo_outputs.append((f, c - src.first, path))
