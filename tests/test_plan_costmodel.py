"""The default chunk plan follows the cost model: fewest chunks that fit the workers' memory."""
from __future__ import annotations

import math

import pytest

from pclean import chunking, costmodel


def test_one_balanced_chunk_per_worker_when_memory_allows():
    chunks = chunking.plan(256, 2, npix=256 * 256, memory_limit_mb=12 * 1024)
    assert chunks == [(0, 128), (128, 128)]
    chunks = chunking.plan(255, 4, npix=256 * 256, memory_limit_mb=None)
    assert [n for _, n in chunks] == [64, 64, 64, 63]
    assert [f for f, _ in chunks] == [0, 64, 128, 192]


def test_chunks_split_until_the_largest_fits_worker_memory():
    nchan, npix, nworkers, limit = 1000, 8000 * 8000, 10, 64 * 1024
    chunks = chunking.plan(nchan, nworkers, npix=npix, memory_limit_mb=limit)
    k = len(chunks) // nworkers
    assert len(chunks) == k * nworkers and k > 1
    assert sum(n for _, n in chunks) == nchan
    largest = max(n for _, n in chunks)
    assert costmodel.worker_memory_mb(largest, npix) <= 0.8 * limit
    # minimal: one chunk fewer per worker would not fit
    fewer = math.ceil(math.ceil(nchan / nworkers) / (k - 1))
    assert costmodel.worker_memory_mb(fewer, npix) > 0.8 * limit


def test_chanchunk_forces_the_size_and_assign_balances():
    chunks = chunking.plan(10, 2, chanchunk=3)
    assert chunks == [(0, 3), (3, 3), (6, 3), (9, 1)]
    placement = chunking.assign(chunks, 2)
    assert sorted(i for w in placement for i in w) == [0, 1, 2, 3]
    loads = [sum(chunks[i][1] for i in w) for w in placement]
    assert max(loads) - min(loads) <= 3


def test_model_prefers_fewer_chunks_and_counts_gather():
    npix = 256 * 256
    one = costmodel.imaging_s([[128], [128]], npix, passes=3)
    four = costmodel.imaging_s([[32] * 4, [32] * 4], npix, passes=3)
    assert four - one == pytest.approx(3 * 3 * costmodel.DEFAULT.fixed_s)
    # paged: one writer per product, so more workers than products do not help; virtual: each
    # worker copies its own channels, so the cost falls with the number of workers
    big = 8000 ** 2
    assert costmodel.gather_s(1000, big, 100) == costmodel.gather_s(1000, big, 6)
    assert costmodel.gather_s(1000, big, 100, "virtual") == pytest.approx(
        10 * costmodel.gather_s(1000, big, 1000, "virtual"))
    assert costmodel.gather_s(1000, big, 6, "virtual") == pytest.approx(
        costmodel.gather_s(1000, big, 6), rel=0.01)  # same bytes, as many writers
    pr = costmodel.predict(1000, 8000, 100, memory_limit_mb=64 * 1024)
    assert pr["total_s"] == pytest.approx(sum(pr["seconds"].values()))
    assert pr["worker_memory_mb"] <= 0.8 * 64 * 1024
