"""What a run of such a cube would cost: pclean's own default plan priced by the cost model
(the scaling predictions in the README; ``benchmarks/scaling.py`` prints them)."""
from __future__ import annotations

from types import SimpleNamespace

from pclean import products
from pclean.params import chunking, costmodel, gatherplan, placement


def predict(nchan: int, imsize: int, nworkers: int, passes: int = 3,
            memory_limit_mb: float | None = None, gather: str = "paged",
            c: costmodel.Coefficients = costmodel.DEFAULT) -> dict:
    """Wall-time breakdown and memory per worker for the default plan of a deconvolved,
    restored cube of ``nchan`` channels of ``imsize`` x ``imsize`` pixels (one Stokes)."""
    npix = imsize * imsize
    k = costmodel.chunks_per_worker(nchan, npix, nworkers, memory_limit_mb, c)
    ranges = chunking.split(nchan, k * nworkers)
    sizes = [n for _, n in ranges]
    loads = [[sizes[i] for i in ids] for ids in placement.assign(ranges, nworkers, npix)]
    chunks = [SimpleNamespace(first=f, nchan=n, imagename=lambda _f, i=i: f"chunk-{i}")
              for i, (f, n) in enumerate(ranges)]
    made = [p for p in products.expected(True, True, False, False) if p != "gridwt"]
    plan = gatherplan.make(chunks, {"0": "cube"}, {"0": made}, gather, False, npix, 1)
    t = {"cluster_start": c.cluster_start_s,
         "imaging": costmodel.imaging_s(loads, npix, passes, c),
         "gather": costmodel.gather_s(plan.nbytes(), nworkers, plan.mode, c)}
    total = sum(t.values())
    serial = passes * nchan * costmodel.chan_pass_s(npix, c)
    return {"nchan": nchan, "imsize": imsize, "nworkers": nworkers, "chunks_per_worker": k,
            "worker_memory_mb": costmodel.worker_memory_mb(max(sizes), npix, c),
            "products": len(plan.jobs), "serial_imaging_s": serial, "seconds": t,
            "total_s": total, "shares": {key: v / total for key, v in t.items()},
            "speedup_vs_serial_imaging": serial / total}
