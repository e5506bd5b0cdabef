"""What a pclean run costs, in wall time and memory per worker, from a few measured coefficients.

Used for pclean's default chunk plan (``chunking.sizes``), the placement of chunks on workers,
and the scaling predictions in the README (``forecast``; ``benchmarks/scaling.py`` measures the
coefficients and prints the predictions).

For a cube of ``nchan`` channels of ``P`` pixels per plane on ``W`` workers, with chunks pinned to
workers and every imaging pass (psf, each major cycle) done by all chunks together:

* imaging  = passes x max over workers of sum over its chunks (FIXED_S + n x chan_pass_s(P));
  the fixed part is paid by every chunk at every pass, so the fewest chunks win;
* memory   = WORKER_BASE_MB + (largest chunk's channels) x P x BYTES_PER_CHAN_PIXEL: a worker
  images its chunks one at a time and CASA's grids for a chunk live only during its pass, so
  splitting a worker's channels into more chunks lowers its peak;
* gather   = (paged) every product of the gather plan written once (nchan x P x 4 bytes, a sumwt
  one pixel per plane) at WRITE_MB_S per writer, one writer per product, in parallel over at
  most ``min(products, W)`` workers;
  (virtual) each worker writes its chunks' own channels once (chunks have halo channels when
  deconvolving), in parallel over all workers, and the products reference them;
* start    = CLUSTER_START_S for the embedded cluster (batch queues add their own wait).

Coefficients measured on the 2-vCPU benchmark machine (see README, "Scaling"), for its simulated
VLA data: the per-channel time grows with the data per channel and the FFTs grow a little faster
than the pixel count, so treat predictions for other data as a shape, not a promise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict

MB = 1024.0 * 1024.0


@dataclass(frozen=True)
class Coefficients:
    # fitted by benchmarks/scaling.py on the 2-vCPU machine (32 channels; 256, 512, 1024 pixels
    # square; one vs four chunks per worker), rounded; see benchmarks/scaling.json
    fixed_s: float = 0.29  # per chunk per imaging pass
    chan_pass_s: float = 0.0075  # per channel per pass, independent of image size (gridding)
    chan_pass_s_per_mpix: float = 0.39  # per channel per pass per million pixels (FFTs, images)
    worker_base_mb: float = 200.0  # a worker with casatools loaded and an imager set up
    bytes_per_chan_pixel: float = 56.0  # a chunk's working memory during a pass
    write_mb_s: float = 258.0  # one process writing a new CASA image (gather)
    cluster_start_s: float = 0.83  # embedded scheduler + workers importing casatools

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT = Coefficients()


def chan_pass_s(npix: int, c: Coefficients = DEFAULT) -> float:
    return c.chan_pass_s + c.chan_pass_s_per_mpix * npix / 1e6


def chunk_pass_s(nchan: int, npix: int, c: Coefficients = DEFAULT) -> float:
    """One imaging pass of one chunk."""
    return c.fixed_s + nchan * chan_pass_s(npix, c)


def imaging_s(loads: list[list[int]], npix: int, passes: int, c: Coefficients = DEFAULT) -> float:
    """Imaging wall time: ``loads`` is, per worker, the channel counts of its chunks."""
    per_pass = max((sum(chunk_pass_s(n, npix, c) for n in chunks) for chunks in loads),
                   default=0.0)
    return passes * per_pass


def worker_memory_mb(chunk_nchan: int, npix: int, c: Coefficients = DEFAULT) -> float:
    return c.worker_base_mb + chunk_nchan * npix * c.bytes_per_chan_pixel / MB


def gather_s(jobs_nbytes: list[int], nworkers: int, mode: str = "paged",
             c: Coefficients = DEFAULT) -> float:
    """Gather wall time for a gather plan's jobs (bytes each product writes; see
    ``gatherplan``)."""
    if not jobs_nbytes:
        return 0.0
    if mode == "virtual":
        # each worker writes its chunks' own channels (halo planes dropped) once; nothing more
        # is copied. (With niter=0 chunks of several channels have no halo and this is 0.)
        return sum(jobs_nbytes) / max(1, nworkers) / MB / c.write_mb_s
    writers = [0.0] * max(1, min(len(jobs_nbytes), nworkers))
    for nbytes in sorted(jobs_nbytes, reverse=True):  # the biggest first, to the least loaded
        writers[writers.index(min(writers))] += nbytes
    return max(writers) / MB / c.write_mb_s


def chunks_per_worker(nchan: int, npix: int, nworkers: int, memory_limit_mb: float | None,
                      c: Coefficients = DEFAULT) -> int:
    """The fewest chunks per worker (fixed cost is paid per chunk) whose largest chunk fits the
    worker's memory with a 20% margin; 1 when memory is no constraint."""
    per_worker = math.ceil(nchan / max(1, nworkers))
    if not memory_limit_mb:
        return 1
    for k in range(1, per_worker + 1):
        if worker_memory_mb(math.ceil(per_worker / k), npix, c) <= 0.8 * memory_limit_mb:
            return k
    return per_worker  # one channel per chunk: the most the plan can do; CASA splits further
