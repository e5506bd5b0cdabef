"""The default chunk plan follows the cost model: fewest chunks that fit the workers' memory."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from pclean.params import chunking, costmodel, forecast, gatherplan, placement


def test_one_balanced_chunk_per_worker_when_memory_allows():
    chunks = chunking.sizes(256, 2, npix=256 * 256, memory_limit_mb=12 * 1024)
    assert chunks == [(0, 128), (128, 128)]
    chunks = chunking.sizes(255, 4, npix=256 * 256, memory_limit_mb=None)
    assert [n for _, n in chunks] == [64, 64, 64, 63]
    assert [f for f, _ in chunks] == [0, 64, 128, 192]


def test_chunks_split_until_the_largest_fits_worker_memory():
    nchan, npix, nworkers, limit = 1000, 8000 * 8000, 10, 64 * 1024
    chunks = chunking.sizes(nchan, nworkers, npix=npix, memory_limit_mb=limit)
    k = len(chunks) // nworkers
    assert len(chunks) == k * nworkers and k > 1
    assert sum(n for _, n in chunks) == nchan
    largest = max(n for _, n in chunks)
    assert costmodel.worker_memory_mb(largest, npix) <= 0.8 * limit
    # minimal: one chunk fewer per worker would not fit
    fewer = math.ceil(math.ceil(nchan / nworkers) / (k - 1))
    assert costmodel.worker_memory_mb(fewer, npix) > 0.8 * limit


def test_chanchunk_forces_the_size_and_assign_balances():
    chunks = chunking.sizes(10, 2, chanchunk=3)
    assert chunks == [(0, 3), (3, 3), (6, 3), (9, 1)]
    where = placement.assign(chunks, 2)
    assert sorted(i for w in where for i in w) == [0, 1, 2, 3]
    loads = [sum(chunks[i][1] for i in w) for w in where]
    assert max(loads) - min(loads) <= 3


def test_model_prefers_fewer_chunks_and_counts_gather():
    npix = 256 * 256
    one = costmodel.imaging_s([[128], [128]], npix, passes=3)
    four = costmodel.imaging_s([[32] * 4, [32] * 4], npix, passes=3)
    assert four - one == pytest.approx(3 * 3 * costmodel.DEFAULT.fixed_s)
    # paged: one writer per product, so more workers than products do not help; virtual: each
    # worker copies its own channels, so the cost falls with the number of workers
    big = 8000 ** 2
    product = 1000 * big * 4  # one float32 product of 1000 channels
    six = [product] * 6
    assert costmodel.gather_s(six, 100) == costmodel.gather_s(six, 6)
    assert costmodel.gather_s(six, 6) == pytest.approx(
        product / costmodel.MB / costmodel.DEFAULT.write_mb_s)
    assert costmodel.gather_s(six, 3) == pytest.approx(2 * costmodel.gather_s(six, 6))
    assert costmodel.gather_s(six, 100, "virtual") == pytest.approx(
        10 * costmodel.gather_s(six, 1000, "virtual"))
    assert costmodel.gather_s(six, 6, "virtual") == pytest.approx(costmodel.gather_s(six, 6))


def test_the_gather_cost_is_read_from_the_gather_plan():
    """The cost model prices what the gather plan writes: its products, a sumwt being one
    pixel per plane, and nothing when one chunk's images are moved."""
    chunks = [SimpleNamespace(first=f, nchan=n, imagename=lambda _f, i=i: f"/w/c{i}")
              for i, (f, n) in enumerate([(0, 50), (50, 50)])]
    plan = gatherplan.make(chunks, {"0": "/out/cube"}, {"0": ["sumwt", "psf", "image"]},
                           "paged", True, 100 * 100, 2)
    assert [j.product for j in plan.jobs] == ["psf", "image", "sumwt"]  # the biggest first
    assert plan.nbytes() == [100 * 2 * 10000 * 4] * 2 + [100 * 2 * 4]
    assert [j.single_beam for j in plan.jobs] == [False, True, False]
    assert plan.jobs[1].parts[1] == gatherplan.Part("/w/c1.image", 0, 50, 50)
    moved = gatherplan.make(chunks[:1], {"0": "/out/cube"}, {"0": ["psf"]}, "paged", False,
                            100, 1)
    assert moved.mode == "move" and costmodel.gather_s(moved.nbytes(), 4) == 0.0


def test_the_forecast_adds_up_the_default_plan():
    """predict prices pclean's own default plan: the memory split, the imaging passes and the
    gather plan's products, each checked against the cost model directly."""
    limit = 64 * 1024
    pr = forecast.predict(1000, 8000, 10, memory_limit_mb=limit)
    npix = 8000 * 8000
    k = pr["chunks_per_worker"]
    assert k == costmodel.chunks_per_worker(1000, npix, 10, limit) and k > 1
    assert pr["worker_memory_mb"] <= 0.8 * limit
    per_chunk = math.ceil(1000 / (k * 10))
    assert pr["seconds"]["imaging"] == pytest.approx(
        3 * k * costmodel.chunk_pass_s(per_chunk, npix), rel=0.05)
    assert pr["products"] == 7  # psf residual pb sumwt model mask image
    # 6 big products on 10 writers: one product's time
    assert pr["seconds"]["gather"] == pytest.approx(
        1000 * npix * 4 / costmodel.MB / costmodel.DEFAULT.write_mb_s)
    assert pr["speedup_vs_serial_imaging"] == pytest.approx(
        pr["serial_imaging_s"] / sum(pr["seconds"].values()))
