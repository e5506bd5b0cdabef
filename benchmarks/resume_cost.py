"""What checkpoints cost, and what an interruption costs, on this machine; prints and saves JSON.

    python benchmarks/resume_cost.py [--nchan 256] [--imsize 256] [--nworkers 2]
                                     [--out benchmarks/resume.json]

Three pclean runs of the same cube (bench_pclean's parameters, briggs, with cycleniter=10
for several cycles), each in a fresh process on the same simulated MS:
  1. undisturbed, keeping its work directory: the checkpoints' share of its imaging time (the
     coordinator's writes of ``stretches.jsonl`` and the chunks' undo copies, from the run's
     own timings), the checkpoint file's size, and its wall time;
  2. the same call stopped with SIGTERM (what scancel and a walltime send) as its second
     minor cycle starts;
  3. the same call again, which continues it: its wall time, and 2+3 against 1 (the work an
     interruption costs: cluster start, the stretch in progress, and the replay).
The resumed cube is compared with the undisturbed one, pixel for pixel.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_pclean import bench_ms, cube_arguments, imaging_params  # noqa: E402


def child(params: dict) -> dict:
    from pclean import pclean

    t0 = time.time()
    summary = pclean(**params)
    return {"call_s": time.time() - t0, "iterdone": summary["iterdone"],
            "nmajordone": summary["nmajordone"], "pclean": summary["pclean"]}


def run(params: dict, stop_at_minor: int | None = None) -> dict:
    """pclean in a fresh process; with ``stop_at_minor``, SIGTERM as that minor cycle starts."""
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(params)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if stop_at_minor:
        ledger = params["imagename"] + ".pclean-work/ledger.jsonl"
        while proc.poll() is None:
            if os.path.exists(ledger) and open(ledger).read().count(
                    '"StretchStarted", "steps": ["minor_cycle"]') >= stop_at_minor:
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
    out, err = proc.communicate(timeout=7200)
    wall = time.time() - t0
    if stop_at_minor:
        if proc.returncode == 0 or "Terminated" not in err:
            raise RuntimeError(f"expected the run to stop (rc {proc.returncode}): {err[-2000:]}")
        return {"wall_s": wall}
    if proc.returncode != 0:
        raise RuntimeError(err[-3000:])
    return dict(json.loads(out.strip().splitlines()[-1]), wall_s=wall)


def identical(a: str, b: str) -> bool:
    from pclean import casa

    casa.configure()
    from casatools import image

    for product in ("image", "residual", "model", "psf", "pb", "mask", "sumwt"):
        planes = []
        for prefix in (a, b):
            ia = image()
            ia.open(f"{prefix}.{product}")
            planes.append(ia.getchunk())
            ia.close()
        if not (planes[0] == planes[1]).all():
            return False
    return True


def main() -> int:
    ap = cube_arguments(__doc__, "benchmarks/resume.json")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.child:
        print(json.dumps(child(json.loads(ns.child)), default=str))
        return 0

    ms, out_dir = bench_ms(ns.workdir, ns.nchan, "pclean-resume-")
    p = dict(imaging_params("briggs", ns.imsize), vis=ms, nworkers=ns.nworkers,
             progress=False, niter=10000, cycleniter=10)
    calm = run(dict(p, imagename=os.path.join(out_dir, "calm"), keep_chunks=True))
    t = calm["pclean"]["timings"]
    undo_s = [c["busy_s"].get("undo", 0.0) for c in calm["pclean"]["chunks"]]
    log = os.path.join(out_dir, "calm.pclean-work", "stretches.jsonl")
    cut = os.path.join(out_dir, "cut")
    stopped = run(dict(p, imagename=cut), stop_at_minor=2)
    resumed = run(dict(p, imagename=cut))
    # the chunks run side by side: a worker's undo time is the sum over its chunks
    per_worker = {}
    for c, s in zip(calm["pclean"]["chunks"], undo_s, strict=True):
        per_worker[c["pid"]] = per_worker.get(c["pid"], 0.0) + s
    checkpoint_s = t["checkpoints"] + max(per_worker.values())
    result = {
        "cube": {"nchan": ns.nchan, "imsize": ns.imsize, "nworkers": ns.nworkers},
        "undisturbed": {"wall_s": calm["wall_s"], "imaging_s": t["imaging"],
                        "nmajordone": calm["nmajordone"], "iterdone": calm["iterdone"],
                        "coordinator_checkpoint_s": t["checkpoints"],
                        "chunk_undo_s": undo_s,
                        "checkpoint_share_of_imaging": checkpoint_s / t["imaging"],
                        "checkpoint_file_bytes": os.path.getsize(log)},
        "stopped_wall_s": stopped["wall_s"],
        "resumed": {"wall_s": resumed["wall_s"], "nmajordone": resumed["nmajordone"],
                    "iterdone": resumed["iterdone"]},
        "interruption_cost_ratio": (stopped["wall_s"] + resumed["wall_s"]) / calm["wall_s"],
        "resumed_identical": identical(cut, os.path.join(out_dir, "calm")),
    }
    u = result["undisturbed"]
    print(f"undisturbed: {u['wall_s']:.1f} s, {u['nmajordone']} major cycles; checkpoints "
          f"{checkpoint_s:.2f} s = {100 * u['checkpoint_share_of_imaging']:.1f}% of imaging "
          f"({u['checkpoint_file_bytes'] / 1024:.0f} KiB of checkpoint file)")
    print(f"stopped at minor cycle 2 after {stopped['wall_s']:.1f} s; resumed in "
          f"{resumed['wall_s']:.1f} s: {result['interruption_cost_ratio']:.2f}x the undisturbed "
          f"run's wall time; identical: {result['resumed_identical']}")
    with open(ns.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0 if result["resumed_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
