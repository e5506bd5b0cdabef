"""What ``savemodel='modelcolumn'`` costs, serial tclean against pclean; prints and saves JSON.

    python benchmarks/savemodel_cost.py [--nchan 256] [--imsize 256] [--nworkers 2]
                                        [--out benchmarks/savemodel.json]

Four runs of bench_pclean's cube (briggs), each in a fresh process on its own copy of the same
simulated MS: serial tclean (CASA's default threading) without and with savemodel, and pclean
without and with it. pclean saves the model once from the coordinator after the gather
(``pclean/gather/savemodel.py``), serial in its last major cycle: the ratios say what that
costs each, and whether pclean stays ahead. The two MODEL_DATA columns are compared too.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_pclean import bench_ms, cube_arguments, imaging_params  # noqa: E402


def child(mode: str, params: dict) -> dict:
    from pclean import casa

    os.chdir(os.path.dirname(params["imagename"]))  # tclean's scratch tables go beside its images
    t0 = time.time()
    if mode == "serial":
        casa.configure()
        from casatasks import tclean

        tclean(**params)
        return {"call_s": time.time() - t0}
    from pclean import pclean

    summary = pclean(**params)
    return {"call_s": time.time() - t0, "timings": summary["pclean"]["timings"]}


def run(mode: str, params: dict) -> dict:
    t0 = time.time()
    proc = subprocess.run([sys.executable, __file__, "--child", mode, json.dumps(params)],
                          capture_output=True, text=True, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]), wall_s=time.time() - t0)


def model_column(ms: str):
    from pclean import casa

    casa.configure()
    from casatools import table

    tb = table()
    tb.open(ms)
    try:
        return tb.getcol("MODEL_DATA")
    finally:
        tb.close()


def main() -> int:
    ap = cube_arguments(__doc__, "benchmarks/savemodel.json")
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.child:
        print(json.dumps(child(ns.child[0], json.loads(ns.child[1])), default=str))
        return 0

    ms, out_dir = bench_ms(ns.workdir, ns.nchan, "pclean-savemodel-")
    base = imaging_params("briggs", ns.imsize)
    walls, copies = {}, {}
    for mode in ("serial", "pclean"):
        for save in ("none", "modelcolumn"):
            name = f"{mode}-{save}"
            copies[name] = shutil.copytree(ms, os.path.join(out_dir, f"{name}.ms"))
            params = dict(base, vis=copies[name], imagename=os.path.join(out_dir, name),
                          savemodel=save)
            if mode == "pclean":
                params.update(nworkers=ns.nworkers, progress=False)
            walls[name] = run(mode, params)
    import numpy as np

    a, b = model_column(copies["serial-modelcolumn"]), model_column(copies["pclean-modelcolumn"])
    peak = float(np.abs(a).max())
    saved = walls["pclean-modelcolumn"]["timings"].get("savemodel", 0.0)
    result = {
        "cube": {"nchan": ns.nchan, "imsize": ns.imsize, "nworkers": ns.nworkers},
        "wall_s": {k: v["wall_s"] for k, v in walls.items()},
        "serial_savemodel_extra_s": walls["serial-modelcolumn"]["wall_s"]
        - walls["serial-none"]["wall_s"],
        "pclean_savemodel_s": saved,
        "pclean_savemodel_share": saved / walls["pclean-modelcolumn"]["wall_s"],
        "speedup_none": walls["serial-none"]["wall_s"] / walls["pclean-none"]["wall_s"],
        "speedup_modelcolumn": walls["serial-modelcolumn"]["wall_s"]
        / walls["pclean-modelcolumn"]["wall_s"],
        "model_column_max_diff_over_peak": float(np.abs(a - b).max()) / peak if peak else 0.0,
    }
    print(f"serial tclean: {walls['serial-none']['wall_s']:.1f} s, with savemodel "
          f"{walls['serial-modelcolumn']['wall_s']:.1f} s; pclean: "
          f"{walls['pclean-none']['wall_s']:.1f} s, with savemodel "
          f"{walls['pclean-modelcolumn']['wall_s']:.1f} s (the save {saved:.1f} s, "
          f"{100 * result['pclean_savemodel_share']:.0f}%)")
    print(f"speed-up {result['speedup_none']:.2f}x without, {result['speedup_modelcolumn']:.2f}x "
          f"with savemodel; MODEL_DATA max|diff|/peak "
          f"{result['model_column_max_diff_over_peak']:.1e}")
    with open(ns.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0 if result["model_column_max_diff_over_peak"] <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
