"""Which worker runs which chunk: a pure function of the chunks and the live workers.

Chunks keep state across cycles, so each is pinned to one worker for the run; every pass waits
for the slowest worker, so the placement balances the cost model's time per pass (largest chunk
to the least loaded worker, ties to the first)."""
from __future__ import annotations

from pclean.params import costmodel


def assign(chunks: list[tuple[int, int]], nworkers: int, npix: int = 0) -> list[list[int]]:
    """Chunk indices per worker slot for (first, nchan) chunks."""
    loads = [[0.0, w, []] for w in range(max(1, nworkers))]
    for i in sorted(range(len(chunks)), key=lambda i: -chunks[i][1]):
        target = min(loads, key=lambda x: (x[0], x[1]))
        target[0] += costmodel.chunk_pass_s(chunks[i][1], npix)
        target[2].append(i)
    return [sorted(x[2]) for x in loads]


def place(chunks: list[tuple[int, int]], workers: list[str], npix: int = 0) -> list[str]:
    """The worker address of every chunk, in chunk order."""
    if not workers:
        raise ValueError("no live workers to place chunks on")
    out = [None] * len(chunks)
    for w, ids in enumerate(assign(chunks, len(workers), npix)):
        for i in ids:
            out[i] = workers[w]
    return out
