"""The chunk plan: how the cube's channels are split among workers.

Cost (measured at 256x256, see benchmarks/): each imaging pass of a chunk costs a fixed
``FIXED_S`` (benchmark: 0.32 s; 0.65 s in earlier measurements) plus ``PER_CHANNEL_S`` per
channel, the fixed part paid again at every major cycle. Chunks are pinned to workers (they keep
state across cycles), so there is no work stealing: the best plan is one chunk per worker,
balanced to within a channel. The user may force a chunk size with ``chanchunk``; ``assign``
then balances those chunks over the workers by this cost.
"""
from __future__ import annotations

FIXED_S = 0.65
PER_CHANNEL_S = 0.05


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


def plan(nchan: int, nworkers: int, chanchunk: int | None = None) -> list[tuple[int, int]]:
    """(first channel, number of channels) for every chunk."""
    if chanchunk:
        return [(first, min(chanchunk, nchan - first)) for first in range(0, nchan, chanchunk)]
    return split(nchan, nworkers)


def assign(chunks: list[tuple[int, int]], nworkers: int) -> list[list[int]]:
    """Chunk indices per worker, balancing channels (largest chunk to the least loaded)."""
    loads = [[0, w, []] for w in range(max(1, nworkers))]
    for i in sorted(range(len(chunks)), key=lambda i: -chunks[i][1]):
        target = min(loads, key=lambda x: (x[0], x[1]))
        target[0] += FIXED_S / PER_CHANNEL_S + chunks[i][1]
        target[2].append(i)
    return [sorted(x[2]) for x in loads]
