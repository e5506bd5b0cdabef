"""The demo: simulate a cube MS, image it with pclean and with serial tclean, compare.

Everything is made locally (casatools.simulator); nothing is downloaded. Each run writes into a
new directory (a temporary one, or under ``--workdir``), which it prints, so nothing from an
earlier run is overwritten. The cube is the benchmark's (256 channels of 256x256 pixels), big
enough that the parallel run wins on 2 cores.
"""
from __future__ import annotations

import os
import time

from pclean.sim.simulate import SimSpec, simulate


def demo_params(ms: str, imagename: str, imsize: int, nworkers: int | None) -> dict:
    return dict(vis=ms, imagename=imagename, specmode="cube", imsize=imsize, cell="6arcsec",
                weighting="briggs", robust=0.5, niter=2000, deconvolver="hogbom",
                cycleniter=200, pblimit=0.2, nworkers=nworkers)


def main(workdir: str | None = None, nchan: int = 256, imsize: int = 256,
         nworkers: int | None = None) -> int:
    """Simulate, image with serial tclean (CASA's default threading) and with pclean, compare;
    a short summary on the terminal. ``workdir``: where (default a new temporary directory)."""
    import tempfile

    from pclean.casa import console

    if workdir:
        run_dir = os.path.abspath(os.path.join(workdir, time.strftime("run-%Y%m%d-%H%M%S")))
        os.makedirs(run_dir)
    else:
        run_dir = tempfile.mkdtemp(prefix="pclean-demo-")
    print(f"pclean demo: a simulated 1.0-1.4 GHz cube of {nchan} channels, {imsize}x{imsize} "
          f"pixels, briggs, hogbom, niter=2000\n  in {run_dir}", flush=True)
    with console.filtered_stderr():
        return _run(run_dir, nchan, imsize, nworkers)


def _run(run_dir: str, nchan: int, imsize: int, nworkers: int | None) -> int:
    from pclean import api

    ms = os.path.join(run_dir, "demo.ms")
    t0 = time.time()
    simulate(ms, SimSpec(nchan=nchan, chan_width_hz=400e6 / nchan, frame="LSRK", hours=2.0))
    print(f"simulated {ms} ({time.time() - t0:.1f} s)", flush=True)
    params = demo_params(ms, os.path.join(run_dir, "cube"), imsize, nworkers)
    report = api.run_and_compare(params, report_prefix=os.path.join(run_dir, "compare"))
    t_p, t_s = report.wall_time_s["test"], report.wall_time_s["ref"]
    workers = f"pclean ({params['nworkers'] or os.cpu_count()} workers, embedded cluster):"
    print(f"{'serial tclean (CASA default threading):':<42}{t_s:6.1f} s")
    print(f"{workers:<42}{t_p:6.1f} s   speed-up {t_s / t_p:.2f}x")
    print(f"equal to serial tclean within {report.tolerance:g} of each product's peak: "
          f"{'yes' if report.passed else 'NO'}")
    worst = []
    for prod, d in report.products.items():
        chan, value = d.worst()
        worst.append(f"{prod} {value:.1e}" + (f" (channel {report.channels[chan]})"
                                              if value > 0 else ""))
    print("  largest difference / peak: " + ", ".join(worst))
    for line in report.failures():
        print("  " + line)
    print(f"comparison: {run_dir}/compare.png (and .json, .csv)")
    return 0 if report.passed else 1
