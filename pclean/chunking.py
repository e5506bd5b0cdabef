"""The chunk plan: how the cube's channels are split among workers.

Chunks are pinned to workers (they keep state across cycles) and every imaging pass runs on all
of them together, so there is no work stealing; each chunk pays a fixed cost at every pass
(``costmodel``). The default plan is therefore the fewest chunks per worker whose largest chunk
fits the worker's memory (usually one), balanced to within a channel. The user may force a chunk
size with ``chanchunk``; ``assign`` then balances those chunks over the workers by the model.
"""
from __future__ import annotations

import numpy as np

from pclean import costmodel


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


def plan(nchan: int, nworkers: int, chanchunk: int | None = None, npix: int = 0,
         memory_limit_mb: float | None = None) -> list[tuple[int, int]]:
    """(first channel, number of channels) for every chunk; ``npix`` pixels per plane and the
    workers' memory limit let the cost model split a worker's channels when they would not fit."""
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
