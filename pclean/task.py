"""pclean(): tclean's parameters in, tclean's cube and summary dict out, computed in parallel."""
from __future__ import annotations

import os
import time

from pclean import casaenv, casahelpers, cluster, params, schema
from pclean.params import ParameterError


def pclean(*args, **kwargs) -> dict:
    p = schema.bind(args, kwargs)
    return run_params(p)


pclean.__signature__ = schema.signature()
pclean.__doc__ = schema.docstring()


def run_params(raw: dict) -> dict:
    timings = {}
    t_start = time.time()
    p = params.normalize(raw)
    if not params.is_cube(p):
        casaenv.log(f"pclean: specmode={p['specmode']!r} is not a cube; running serial tclean")
        from casatasks import tclean

        return tclean(**{k: p[k] for k in (q.name for q in schema.tclean_params())})

    plan = params.make_plan(p)  # every cube-wide check before any worker starts
    timings["planning"] = time.time() - t_start
    t0 = time.time()
    with cluster.connect(p["cluster"], p["nworkers"], p["worker_memory"],
                         p["cluster_options"]) as client:
        workers = cluster.worker_addresses(client, p["nworkers"])
        timings["cluster_start"] = time.time() - t0
        os.makedirs(plan.workroot)
        failed = True
        try:
            t0 = time.time()
            params.add_primary_beam_model(plan)
            params.add_shared_weight_density(plan)
            params.split_chunks(plan, len(workers), cluster.memory_limit_mb(client, workers))
            timings["planning"] += time.time() - t0
            from pclean import driver, gather

            summary, chunk_status = driver.run(plan, client, workers, timings)
            t0 = time.time()
            written = gather.gather(plan.chunks, plan.imagename, params.CHUNK_PRODUCTS,
                                    client, workers, p["gather"], plan.single_beam)
            if plan.weight_density:  # serial leaves the shared density as <imagename>.gridwt
                written.append(gather.keep(plan.weight_density, plan.imagename + ".gridwt"))
            timings["gather"] = time.time() - t0
            failed = False
        finally:
            if failed:
                casaenv.log(f"pclean failed; chunk images and CASA logs kept in {plan.workroot}",
                            "SEVERE")
            elif not p["keep_chunks"]:
                params.cleanup_workroot(plan)
    if p["fitsout"]:
        from pclean import fitsio

        for path in written:
            fitsio.export(path, path + ".fits")
    if int(p["niter"]) == 0:
        summary = _residual_summary(plan)
    timings["total"] = time.time() - t_start
    # pclean's one addition to tclean's dict: how the run went
    summary["pclean"] = {"timings": timings, "chunks": chunk_status,
                         "nchunks": len(plan.chunks), "nworkers": len(workers),
                         "nchan": plan.grid.nchan, "fracbw": plan.fracbw, "products": written}
    casaenv.log("pclean timings: " + ", ".join(f"{k}={v:.2f}s" for k, v in timings.items()
                                               if isinstance(v, float)))
    return summary


def _residual_summary(plan) -> dict:
    """niter=0: tclean builds its return dict from the residual image (ImagingDict)."""
    return casahelpers.imager_helpers().ImagingDict().construct_residual_dict(plan.imager)


__all__ = ["pclean", "ParameterError"]
