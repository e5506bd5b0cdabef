"""Measure pclean's cost-model coefficients on this machine and predict large cubes.

    python benchmarks/scaling.py [--nchan 32] [--imsizes 256,512,1024] [--out benchmarks/scaling.json]

For each image size, pclean runs (2 workers, niter=0: a psf pass and a residual pass) with one
chunk per worker and with four, in fresh processes. From the pair:
  fixed cost per chunk per pass   = extra imaging time / (extra chunks per worker x passes)
  time per channel per pass       = the rest, per channel a worker images
  memory                          = each worker's peak (VmHWM) against its largest chunk
  gather write rate               = bytes of the final products / gather time x writers
Then it fits the per-channel time and memory against pixels per plane, and prints what
``pclean.params.forecast`` predicts (with these coefficients) for 1000 channels of 8000x8000 on 10 to
1000 workers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_pclean import run_child, worker_peaks  # noqa: E402

PASSES = 2  # niter=0: psf and residual


def measure(ms: str, out_dir: str, nchan: int, imsize: int, chunks_per_worker: int) -> dict:
    chanchunk = -(-nchan // (2 * chunks_per_worker))
    params = dict(vis=ms, imagename=os.path.join(out_dir, f"s{imsize}-k{chunks_per_worker}"),
                  specmode="cube", imsize=imsize, cell=f"{6 * 256 / imsize:.3f}arcsec",
                  weighting="briggs", niter=0, pblimit=0.2, nworkers=2, chanchunk=chanchunk)
    run = run_child(["--child", "pclean", json.dumps(params)])
    t = run["pclean"]["timings"]
    return {"imsize": imsize, "chunks_per_worker": chunks_per_worker, "chanchunk": chanchunk,
            "imaging_s": t["imaging"], "gather_s": t["gather"],
            "cluster_start_s": t["cluster_start"], "worker_peak_mb": max(worker_peaks(run))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nchan", type=int, default=32)
    ap.add_argument("--imsizes", default="256,512,1024")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default="benchmarks/scaling.json")
    ns = ap.parse_args()

    from pclean.params import costmodel, forecast
    from pclean.sim.simulate import SimSpec, simulate

    work = ns.workdir or tempfile.mkdtemp(prefix="pclean-scaling-")
    os.makedirs(work, exist_ok=True)
    ms = os.path.join(work, f"scaling-{ns.nchan}.ms")
    if not os.path.exists(ms):
        simulate(ms, SimSpec(nchan=ns.nchan, chan_width_hz=400e6 / 256, hours=2.0,
                             integration_s=60.0))
    out_dir = os.path.join(work, time.strftime("run-%Y%m%d-%H%M%S"))
    os.makedirs(out_dir)
    points = []
    for imsize in (int(s) for s in ns.imsizes.split(",")):
        one, four = (measure(ms, out_dir, ns.nchan, imsize, k) for k in (1, 4))
        per_worker = ns.nchan / 2
        fixed = (four["imaging_s"] - one["imaging_s"]) / (3 * PASSES)
        chan = (one["imaging_s"] / PASSES - fixed) / per_worker
        nbytes = 6 * ns.nchan * imsize * imsize * 4
        point = {"imsize": imsize, "npix": imsize * imsize, "one_chunk": one, "four_chunks": four,
                 "fixed_s": fixed, "chan_pass_s": chan,
                 "write_mb_s": nbytes / costmodel.MB / one["gather_s"] / 2}
        points.append(point)
        print(f"{imsize}x{imsize}: fixed {fixed:.3f} s/chunk/pass, {chan * 1e3:.1f} ms/channel/"
              f"pass, worker peak {one['worker_peak_mb']:.0f} MB (chunks of {one['chanchunk']})"
              f" vs {four['worker_peak_mb']:.0f} MB (chunks of {four['chanchunk']}), gather "
              f"{one['gather_s']:.2f} s", flush=True)

    npix = np.array([p["npix"] for p in points], float)
    chan = np.array([p["chan_pass_s"] for p in points])
    slope, intercept = np.polyfit(npix / 1e6, chan, 1)
    # memory: peak = base + chunk channels x pixels x bytes, from all runs
    rows = [(p[k]["chanchunk"] * p["npix"], p[k]["worker_peak_mb"])
            for p in points for k in ("one_chunk", "four_chunks")]
    x, y = np.array(rows, float).T
    mem_slope, mem_base = np.polyfit(x, y * costmodel.MB, 1)
    coeffs = costmodel.Coefficients(
        fixed_s=float(np.median([p["fixed_s"] for p in points])),
        chan_pass_s=float(max(intercept, 0.0)), chan_pass_s_per_mpix=float(slope),
        worker_base_mb=float(mem_base / costmodel.MB), bytes_per_chan_pixel=float(mem_slope),
        write_mb_s=float(np.median([p["write_mb_s"] for p in points])),
        cluster_start_s=float(np.median([p["one_chunk"]["cluster_start_s"] for p in points])))
    print("fitted coefficients:", json.dumps(coeffs.as_dict()))
    predictions = []
    print("prediction, 1000 channels of 8000x8000, 3 passes, 64 GiB per worker:")
    for w in (10, 30, 100, 300, 1000):
        pr = forecast.predict(1000, 8000, w, passes=3, memory_limit_mb=64 * 1024, c=coeffs)
        virt = forecast.predict(1000, 8000, w, passes=3, memory_limit_mb=64 * 1024,
                                 gather="virtual", c=coeffs)
        predictions.append({"paged": pr, "virtual": virt})
        s = pr["seconds"]
        print(f"  {w:5d} workers: {pr['chunks_per_worker']} chunk(s)/worker, "
              f"{pr['worker_memory_mb'] / 1024:.1f} GiB/worker, imaging {s['imaging']:.0f} s, "
              f"gather paged {s['gather']:.0f} s ({pr['shares']['gather'] * 100:.0f}%) / "
              f"virtual {virt['seconds']['gather']:.0f} s, total {pr['total_s']:.0f} / "
              f"{virt['total_s']:.0f} s")
    with open(ns.out, "w") as f:
        json.dump({"points": points, "coefficients": coeffs.as_dict(),
                   "predictions": predictions}, f, indent=2)
    print(f"saved {ns.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
