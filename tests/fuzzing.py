"""The differential fuzzer: random data and tclean options, serial tclean against pclean.

A case is a seed. From it: a dataset (``pclean.simdata.draw``: array, band, frames, spws,
polarizations, fields, snapshots, dropped integrations, flags), then the tclean call a user
might make on it (selections, the channel grid, frames, interpolation, Stokes, weighting,
deconvolution and stopping, masks, restoring beam, saving the model into the MS) and, once
serial tclean has said how many channels the cube has, a chunk plan (random sizes, 1-channel
chunks anywhere). Serial tclean is called as a user calls it; pclean with the same parameters,
each on its own copy of the MSs when it saves the model. A case passes when

* both made the same products, equal by ``oracle.compare_cube`` (1e-5 of peak per channel and
  product, beams 1e-6, coordinates, masks, metadata), with the same iterdone, nmajordone,
  stopcode and minor-cycle summary, and the same model saved in the MS
  (``oracle.saved_model_problems``) ("equal"); or
* pclean refused the call before any worker started (a ParameterError saying why, "rejected");
  or both refused it ("both-failed").

Anything else fails: different products or numbers ("differs"), pclean failing after its
workers started ("crash"), pclean imaging what tclean refused ("pclean-only").

``python tests/fuzzing.py SEED [--scheduler ADDRESS] [--keep DIR]`` runs one case and prints its
result as JSON (benchmarks/fuzz.py runs many, each in a fresh process).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from oracle import (compare_cube, run_serial, saved_model_problems,  # noqa: E402
                    summary_problems)

from pclean import casa  # noqa: E402
from pclean.sim import data as simdata  # noqa: E402

PASSING = ("equal", "rejected", "both-failed")


# ---------------------------------------------------------------------------------------------
# drawing a tclean call

def _choice(rng, options, p=None):
    if p is not None:
        p = np.asarray(p, float) / np.sum(p)
    return options[int(rng.choice(len(options), p=p))]


def ms_info(paths: list[str]) -> dict:
    """What a user looking at the data knows: the time range and antenna names."""
    tb = casa.tools().table()
    times, names = [], []
    for path in paths:
        tb.open(path)
        times += [float(tb.getcol("TIME").min()), float(tb.getcol("TIME").max())]
        tb.close()
        tb.open(os.path.join(path, "ANTENNA"))
        names = [str(n) for n in tb.getcol("NAME")]
        tb.close()
    return {"t0": min(times), "t1": max(times), "antennas": names}


def _mjd_string(seconds: float) -> str:
    qa = casa.tools().quanta()
    return qa.time({"value": seconds, "unit": "s"}, form=["ymd"], prec=9)[0]


def _grid(rng, spec: simdata.DataSpec, sel_spws: list[int]) -> dict:
    """nchan/start/width/restfreq/veltype: tclean's default grid, or one in channels,
    frequency or velocity, ascending or descending, starting inside, at or outside the band."""
    spws = [spec.spws[i] for i in sel_spws] or spec.spws
    lo = min(s.edges()[0] for s in spws)
    hi = max(s.edges()[1] for s in spws)
    width = min(abs(s.width_hz) for s in spws)
    nband = max(1, int(round((hi - lo) / width)))
    kind = _choice(rng, ["default", "channel", "frequency", "velocity", "width-only"],
                   [0.3, 0.2, 0.2, 0.22, 0.08])
    nchan = -1 if rng.random() < 0.4 else int(rng.integers(1, min(nband, 24) + 1))
    out = {"nchan": nchan}
    if kind == "channel":
        out["start"] = int(rng.integers(0, max(1, nband // 2)))
        out["width"] = int(_choice(rng, [1, 1, 2, -1, -2]))
        if out["width"] < 0:
            out["start"] = int(rng.integers(nband // 2, nband))
    elif kind == "frequency":
        w = width * float(_choice(rng, [1.0, 1.0, 2.0, 1.5, 0.7]))
        w = -w if rng.random() < 0.3 else w
        edge = lo if w > 0 else hi
        offset = float(_choice(rng, [0.5, 0.5, 2.5, -1.5, -0.3, 0.0])) * width  # -: outside
        out["start"] = f"{edge + math.copysign(offset, w):.6f}Hz"
        out["width"] = f"{w:.6f}Hz"
    elif kind == "velocity":
        rest = float(_choice(rng, [(lo + hi) / 2, spec.line.center_hz if spec.line else hi]))
        out["restfreq"] = [f"{rest:.6f}Hz"]
        optical = rng.random() < 0.4
        out["veltype"] = "optical" if optical else "radio"
        c = 299792.458
        v_hi_f = c * (rest - lo) / rest  # radio velocity of the band's low edge
        v_lo_f = c * (rest - hi) / rest
        dv = c * width / rest * float(_choice(rng, [1.0, 1.0, 2.0, 1.3]))
        if rng.random() < 0.5:  # increasing velocity: decreasing frequency
            out["start"] = f"{v_lo_f + float(_choice(rng, [0.5, 2.0, -1.5])) * dv:.6f}km/s"
            out["width"] = f"{dv:.6f}km/s"
        else:
            out["start"] = f"{v_hi_f - float(_choice(rng, [0.5, 2.0, -1.5])) * dv:.6f}km/s"
            out["width"] = f"{-dv:.6f}km/s"
    elif kind == "width-only":
        out["width"] = int(_choice(rng, [2, 3]))
    return out


def draw_call(rng, spec: simdata.DataSpec, info: dict) -> dict:
    """A tclean call on a dataset: everything but vis, imagename and the chunk plan."""
    p = dict(simdata.imaging_geometry(spec))
    p["specmode"] = _choice(rng, ["cube", "cubedata"], [0.9, 0.1])
    # selection
    sel_spws = []
    if len(spec.spws) > 1 and not spec.split_spws and rng.random() < 0.35:
        sel_spws = sorted(int(i) for i in rng.choice(len(spec.spws), int(rng.integers(
            1, len(spec.spws))), replace=False))
        p["spw"] = ",".join(str(i) for i in sel_spws)
    elif rng.random() < 0.25:
        k = 0 if spec.split_spws else int(rng.integers(len(spec.spws)))
        n = spec.spws[k].nchan
        a = int(rng.integers(0, max(1, n // 3)))
        b = int(rng.integers(min(n - 1, a + 2), n))
        p["spw"] = f"{'*' if spec.split_spws else k}:{a}~{b}"
        sel_spws = [k]
    if len(spec.fields) > 1 and rng.random() < 0.4:
        k = int(rng.integers(len(spec.fields)))
        p["field"] = spec.fields[k][0] if rng.random() < 0.5 else str(k)
    if rng.random() < 0.12:
        p["uvrange"] = _choice(rng, [">30m", "<3km", ">0.2klambda"])
    if rng.random() < 0.12 and info["t1"] - info["t0"] > 60:
        t0 = info["t0"] + 0.2 * (info["t1"] - info["t0"])
        t1 = info["t0"] + 0.8 * (info["t1"] - info["t0"])
        p["timerange"] = f"{_mjd_string(t0)}~{_mjd_string(t1)}"
    if rng.random() < 0.08 and len(info["antennas"]) > 4:
        p["antenna"] = "!" + info["antennas"][int(rng.integers(len(info["antennas"])))]
    if rng.random() < 0.1:
        p["datacolumn"] = "data"
    # the channel grid and frames
    p.update(_grid(rng, spec, sel_spws))
    if p["specmode"] == "cube":
        p["outframe"] = _choice(rng, ["", "LSRK", "BARY", "TOPO", "LSRD", "GEO"],
                                [0.3, 0.3, 0.15, 0.15, 0.05, 0.05])
    p["interpolation"] = _choice(rng, ["linear", "nearest", "cubic"], [0.6, 0.2, 0.2])
    p["stokes"] = _choice(rng, simdata.stokes_options(spec.corr),
                          [0.6] + [0.4 / (len(simdata.stokes_options(spec.corr)) - 1)]
                          * (len(simdata.stokes_options(spec.corr)) - 1))
    # weighting
    w = _choice(rng, ["natural", "briggs", "uniform", "briggsbwtaper", "briggsabs",
                      "superuniform", "radial"], [0.25, 0.3, 0.1, 0.15, 0.05, 0.05, 0.1])
    p["weighting"] = w
    if w.startswith("briggs"):
        p["robust"] = float(_choice(rng, [-2.0, -0.5, 0.0, 0.5, 1.0, 2.0]))
    if w == "briggsabs":
        p["noise"] = "0.1Jy"
    if w in ("briggs", "uniform") and rng.random() < 0.35:
        p["perchanweightdensity"] = False
    if rng.random() < 0.1:
        cell = float(p["cell"].replace("arcsec", ""))
        p["uvtaper"] = [f"{cell * float(rng.uniform(3, 8)):.3g}arcsec"]
    p["pblimit"] = float(_choice(rng, [0.2, 0.2, 0.05, 0.5, -0.2]))
    # deconvolution and stopping
    p["niter"] = 0 if rng.random() < 0.3 else int(_choice(rng, [20, 100, 300, 1000]))
    if p["niter"]:
        p["deconvolver"] = _choice(rng, ["hogbom", "clark", "multiscale"], [0.45, 0.3, 0.25])
        if p["deconvolver"] == "multiscale":
            p["scales"] = [0, 2, 5]
        if p["deconvolver"] == "clark" and p["stokes"] != "I" and rng.random() < 0.5:
            p["deconvolver"] = "clarkstokes"
        if rng.random() < 0.5:
            p["cycleniter"] = int(_choice(rng, [5, 20, 50]))
        if rng.random() < 0.3:
            p["gain"] = float(_choice(rng, [0.05, 0.2, 0.3]))
        if rng.random() < 0.3:
            p["nsigma"] = float(_choice(rng, [1.5, 3.0, 5.0]))
        if rng.random() < 0.25:
            p["threshold"] = _choice(rng, ["1mJy", "20mJy", "0.1Jy"])
        if rng.random() < 0.15:
            p["nmajor"] = int(_choice(rng, [1, 2, 3]))
        if rng.random() < 0.15:
            p["cyclefactor"] = float(_choice(rng, [0.5, 2.0]))
        if rng.random() < 0.2:
            p["usemask"] = "pb"
            p["pbmask"] = float(_choice(rng, [0.2, 0.5]))
        elif rng.random() < 0.25:
            n = p["imsize"]
            a, b = int(n * rng.uniform(0.1, 0.4)), int(n * rng.uniform(0.6, 0.9))
            p["mask"] = _choice(rng, [f"box[[{a}pix,{a}pix],[{b}pix,{b}pix]]",
                                      f"circle[[{n // 2}pix,{n // 2}pix],{(b - a) // 2}pix]"])
        p["fullsummary"] = bool(rng.random() < 0.1)
        if rng.random() < 0.25:
            p["pbcor"] = True
    if rng.random() < 0.12:
        p["restoringbeam"] = "common"
    return p


def draw_savemodel(seed: int) -> dict:
    """``savemodel`` for a case, from a generator of its own: the other draws of a seed (and
    so the regression seeds' cases) are as they were before it was drawn."""
    rng = np.random.default_rng([seed, 1])
    if rng.random() < 0.15:
        return {"savemodel": _choice(rng, ["modelcolumn", "virtual"])}
    return {}


def draw_chunks(rng, nchan: int):
    """A chunk plan for a cube of ``nchan`` channels: the default, a size, or random sizes with
    1-channel chunks anywhere."""
    kind = _choice(rng, ["default", "size", "random", "ones"], [0.2, 0.2, 0.5, 0.1])
    if kind == "default" or nchan == 1:
        return None
    if kind == "size":
        return int(rng.integers(1, max(2, nchan // 2) + 1))
    if kind == "ones" and nchan <= 16:
        return [1] * nchan
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, nchan), min(nchan - 1, int(
        rng.integers(1, 6))), replace=False))
    bounds = [0] + cuts + [nchan]
    return [b - a for a, b in zip(bounds[:-1], bounds[1:])]


# ---------------------------------------------------------------------------------------------
# running a case

def _nchan(prefix: str) -> int | None:
    ia = casa.tools().image()
    for prod in ("psf", "residual"):
        if os.path.isdir(f"{prefix}.{prod}"):
            ia.open(f"{prefix}.{prod}")
            n = int(ia.shape()[3])
            ia.close()
            return n
    return None


SERIAL_DONE = "serial tclean done in"


def run_case(seed: int, root: str, cluster=None, cache_dir: str | None = None,
             overrides: dict | None = None) -> dict:
    """Draw case ``seed``, run serial tclean and pclean under ``root``; the result record.
    ``overrides`` change the drawn call (a value of None removes that parameter)."""
    from pclean import pclean
    from pclean.params import ParameterError

    rng = np.random.default_rng(seed)
    spec = simdata.draw(rng)
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "pclean-fuzz-ms")
    t0 = time.time()
    vis = simdata.build_cached(spec, cache_dir)
    call = draw_call(rng, spec, ms_info(vis))
    call.update(draw_savemodel(seed))
    for key, value in (overrides or {}).items():
        call.pop(key) if value is None else call.update({key: value})
    result = {"seed": seed, "params": call, "data": simdata.describe(spec)
              if hasattr(simdata, "describe") else spec.config}
    os.makedirs(root, exist_ok=True)
    ref, test = os.path.join(root, "ref"), os.path.join(root, "pc")
    ref_vis = test_vis = vis
    if call.get("savemodel", "none") != "none":  # each run writes its own copy of the MSs
        ref_vis, test_vis = ([shutil.copytree(v, os.path.join(root, f"ms-{who}", os.path.basename(
            v))) for v in vis] for who in ("ref", "pc"))
    vis, ref_vis, test_vis = (v[0] if len(v) == 1 else v for v in (vis, ref_vis, test_vis))
    t1 = time.time()
    try:
        ref_summary = run_serial(ref_vis, ref, call)
        ref_error = None if ref_summary is not None or _nchan(ref) else "tclean returned None"
    except RuntimeError as exc:  # tclean refused the call (or died)
        ref_summary, ref_error = None, str(exc)
    result["tclean_s"] = time.time() - t1
    # for a harness that times the case out: the serial reference is done, pclean runs now
    print(f"{SERIAL_DONE} {result['tclean_s']:.1f}", flush=True)
    nchan = _nchan(ref)
    chunks = draw_chunks(rng, nchan) if nchan else None
    result.update(chunks=chunks, nchan=nchan, tclean_error=ref_error)
    t1 = time.time()
    try:
        got = pclean(vis=test_vis, imagename=test, cluster=cluster, chanchunk=chunks, **call)
        error = None
    except ParameterError as exc:
        got, error = None, ("rejected", str(exc))
    except Exception as exc:
        got, error = None, ("crash", f"{type(exc).__name__}: {exc}\n"
                                     + "".join(traceback.format_exc(limit=-3)))
    result["pclean_s"] = time.time() - t1
    if ref_error:
        if error:
            result.update(status="both-failed", message=error[1][:500])
        else:
            result.update(status="pclean-only", message=ref_error[:500])
    elif error:
        result.update(status=error[0], message=error[1][:2000])
    else:
        problems, worst = compare_cube(test, ref)
        problems += summary_problems(got, ref_summary)
        if ref_vis is not vis:
            for t_ms, r_ms in zip(np.atleast_1d(test_vis), np.atleast_1d(ref_vis)):
                problems += saved_model_problems(str(t_ms), str(r_ms))
        result.update(status="differs" if problems else "equal", worst=worst,
                      message="; ".join(problems[:6]))
    result["total_s"] = time.time() - t0
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seed", type=int)
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (else embedded)")
    ap.add_argument("--keep", help="write the images here and keep them")
    ap.add_argument("--cache", help="dataset cache directory")
    args = ap.parse_args(argv)
    root = args.keep or tempfile.mkdtemp(prefix=f"pclean-fuzz-{args.seed}-")
    try:
        result = run_case(args.seed, root, cluster=args.scheduler, cache_dir=args.cache)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, default=str))
    return 0 if result["status"] in PASSING else 1


if __name__ == "__main__":
    sys.exit(main())
