"""What a run needs from the machine, checked before any worker starts: disk for the chunks'
images and the final products, directories it can write, workers the embedded cluster's
machine can run, and every quantity-valued parameter parsed.

Measured without these checks (issue 12): ``imsize=50000`` wrote 73 GB of chunk images in
two minutes and filled the disk; a read-only imagename directory failed after the cluster
started with a raw ``OSError``; ``threshold='abc'`` and ``restoringbeam='abc'`` failed in the
workers with CASA's QuantumHolder message, not naming the parameter.
"""
from __future__ import annotations

import os
import shutil

import numpy as np

from pclean import casa, products
from pclean.params.errors import ParameterError

GIB = 2.0**30
# besides the images: CASA's scratch tables, logs, the shared weight density
DISK_MARGIN = 1.10


def plane_bytes(imsize, nstokes: int) -> int:
    """One channel of a float32 image product."""
    nx, ny = (list(np.atleast_1d(imsize)) * 2)[:2]
    return int(nx) * int(ny) * int(nstokes) * 4


def image_bytes(nchan: int, imsize, nstokes: int, deconvolves: bool, restores: bool,
                pbcor: bool) -> tuple[int, int]:
    """(chunk images, final products) in bytes, at least: every product's planes of float32
    pixels once in the chunks (their halo channels excluded) and once in the final cube; when
    deconvolving, the chunks also keep their model and residual as a minor cycle found them
    (``workers.undo``: a stretch in progress can be undone)."""
    plane = plane_bytes(imsize, nstokes)
    made = [p for p in products.expected(deconvolves, restores, pbcor, False) if p != "sumwt"]
    total = len(made) * nchan * plane
    undo = (2 if deconvolves else 0) * nchan * plane
    return total + undo, total


def _existing(path: str) -> str:
    """The nearest existing directory at or above ``path``."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_disk(p: dict, nchan: int, nstokes: int, workdir: str, deconvolves: bool) -> None:
    """Free space on the work directory's and the imagename's file systems, for the chunk
    images and the final products (both on one file system add up). The gather removes each
    chunk only after the whole cube is written, so both are needed at once."""
    restores = deconvolves and bool(p["restoration"])
    chunks, final = image_bytes(nchan, p["imsize"], nstokes, deconvolves, restores,
                                bool(p["pbcor"]))
    if any(str(m).strip() for m in np.atleast_1d(p["startmodel"] or "")):
        chunks += nchan * plane_bytes(p["imsize"], nstokes)  # the start model on the cube's grid
    where = {}
    for label, path, need in (("workdir", _existing(workdir), chunks),
                              ("imagename", _existing(os.path.dirname(p["imagename"])), final)):
        dev = os.stat(path).st_dev
        got = where.setdefault(dev, [path, 0, []])
        got[1] += need
        got[2].append(label)
    for path, need, labels in where.values():
        free = shutil.disk_usage(path).free
        if need * DISK_MARGIN > free:
            raise ParameterError(
                f"{' and '.join(labels)}: this cube needs at least {need / GIB:.1f} GiB on the "
                f"file system of {path} ({nchan} channels of {p['imsize']} pixels, "
                f"{'chunk images and final products' if len(labels) > 1 else 'its images'}); "
                f"{free / GIB:.1f} GiB are free. Free space, choose another workdir, or image "
                f"fewer channels or pixels")


def full_file_system(paths: list[str], below_bytes: int = 2**20) -> str | None:
    """The first of ``paths`` whose file system has less than ``below_bytes`` free."""
    for path in paths:
        try:
            if shutil.disk_usage(path).free < below_bytes:
                return path
        except OSError:
            continue
    return None


def check_writable(imagename: str, workdir: str) -> None:
    """The directories pclean writes into must be writable (checked, not assumed)."""
    for label, path in (("imagename", os.path.dirname(os.path.abspath(imagename))),
                        ("workdir", _existing(os.path.dirname(os.path.abspath(workdir))))):
        if not os.access(path, os.W_OK | os.X_OK):
            raise ParameterError(f"{label}: directory {path} is not writable")


def check_embedded_workers(p: dict) -> None:
    """The embedded cluster runs one single-threaded worker per core on this machine: more
    only share the cores (and each holds casatools, about 0.3 GiB)."""
    if p["cluster"] not in (None, "local") or p["nworkers"] is None:
        return
    cores = os.cpu_count() or 1
    if int(p["nworkers"]) > cores:
        raise ParameterError(
            f"nworkers: {p['nworkers']} workers for the embedded cluster, but this machine has "
            f"{cores} cores (one single-threaded worker per core); use nworkers <= {cores}, or "
            f"a Dask scheduler (cluster='tcp://...') or cluster='slurm' for more")


def check_dashboard(p: dict) -> None:
    """Dask's dashboard is drawn by bokeh, which pclean does not need otherwise; a report of
    the run is a new file beside the products."""
    if p.get("dashboard"):
        import importlib.util

        if importlib.util.find_spec("bokeh") is None:
            raise ParameterError("dashboard: Dask's dashboard needs bokeh, which is not "
                                 "installed (pip install 'bokeh>=3.1', or pclean[dashboard])")
    if p.get("performance_report"):
        report = performance_report_path(p["imagename"])
        if os.path.exists(report):
            raise ParameterError(f"performance_report: {report} exists and would be "
                                 f"overwritten (remove it or choose another imagename)")


def performance_report_path(imagename: str) -> str:
    return f"{os.path.abspath(str(imagename))}.dask-report.html"


def check_slurm_submit(p: dict) -> None:
    if p["cluster"] == "slurm" and shutil.which("sbatch") is None:
        raise ParameterError("cluster='slurm': sbatch is not on PATH, so no SLURM job can be "
                             "submitted from this machine; run pclean on a SLURM login node, "
                             "or use cluster=None (the embedded cluster)")


# quantity-valued parameters the workers use: name -> (a unit they must conform to, what)
_QUANTITIES = {"threshold": (("Jy", "Jy/beam"), "a flux density (e.g. '0.1mJy')"),
               "restoringbeam": (("arcsec",), "angles (e.g. ['1arcsec', '0.8arcsec', '10deg'])"),
               "restfreq": (("Hz",), "frequencies (e.g. '115.27GHz')")}


def check_quantities(p: dict) -> None:
    """Each quantity-valued parameter parses as its kind; a plain number (no unit) is taken
    in CASA's default unit, as tclean takes it."""
    qa = casa.tools().quanta()
    for name, (units, what) in _QUANTITIES.items():
        value = p.get(name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if name == "restoringbeam" and values in (["common"], ["common", ""]):
            continue
        if name == "restoringbeam" and len([v for v in values if str(v).strip()]) > 3:
            raise ParameterError(f"restoringbeam: at most major, minor and position angle, got "
                                 f"{value!r}")
        for k, v in enumerate(values):
            if v is None or isinstance(v, (int, float)) or not str(v).strip():
                continue
            expected = ("deg",) if name == "restoringbeam" and k == 2 else units
            text = str(v).strip()
            # isquantity first: quanta.quantity logs a SEVERE line for what it cannot parse
            ok = bool(qa.isquantity(text))
            if ok:
                q = qa.quantity(text)
                ok = q["unit"] == "" or any(qa.compare(q, u) for u in expected)
            if not ok:
                raise ParameterError(f"{name}: {text!r} is not {what}")
