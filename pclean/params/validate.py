"""tclean parameters coerced with tclean's rules and checked before CASA's imager is built.

Everything here runs before any worker exists; every error names its parameter."""
from __future__ import annotations

import os

import numpy as np

from pclean import casa
from pclean.params import refusals, resources, schema
from pclean.params.errors import ParameterError
from pclean.products import PRODUCTS

CUBE_MODES = ("cube", "cubedata", "cubesource")


def is_cube(params: dict) -> bool:
    return params["specmode"] in CUBE_MODES


def normalize(params: dict) -> dict:
    """Coerce with tclean's type rules and check what can be checked without CASA's imager."""
    parallel = schema.check_parallel(params)
    check_cluster_options(parallel)
    resources.check_embedded_workers(parallel)
    resources.check_slurm_submit(parallel)
    if not params.get("vis"):
        raise ParameterError("vis: no MeasurementSet given")
    for ms in np.atleast_1d(params["vis"]):
        if not os.path.isdir(str(ms)) or not os.path.exists(os.path.join(str(ms), "table.dat")):
            raise ParameterError(f"vis: {ms!r} is not a MeasurementSet (no such table)")
    try:
        out = schema.coerce_tclean(params)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    out.update(parallel)
    if not str(out["imagename"]).strip():
        raise ParameterError("imagename: an output image name is required")
    _absolute_paths(out)
    if out["specmode"] == "cont":
        out["specmode"] = "mfs"
    _check_imsize_cell(out)
    resources.check_quantities(out)
    resources.check_dashboard(out)
    if is_cube(out):
        _check_cube(out)
    return out


def check_cluster_options(p: dict) -> None:
    """``cluster_options`` are the keyword arguments of what pclean creates for ``cluster``;
    a name that object does not take is an error now, not after jobs were queued. SLURM jobs
    need a count: pclean does not guess how many to queue."""
    cluster, options = p["cluster"], p["cluster_options"] or {}
    if cluster == "slurm" and p["nworkers"] is None:
        raise ParameterError("nworkers: required with cluster='slurm' (the number of SLURM jobs, "
                             "one single-threaded worker each)")
    if not options:
        return
    if not isinstance(cluster, (str, type(None))):
        raise ParameterError("cluster_options: a distributed.Client is used as it is; options "
                             "apply to the clusters pclean creates")
    target = _options_target(cluster)
    unknown = sorted(set(options) - _keywords(*target[1]))
    if unknown:
        raise ParameterError(f"cluster_options: {unknown} are not keyword arguments of "
                             f"{target[0]} (cluster={cluster!r})")


def _options_target(cluster) -> tuple[str, tuple]:
    if cluster in (None, "local"):
        from distributed import Worker

        return "distributed.Worker (the embedded cluster's workers)", (Worker,)
    if cluster == "slurm":
        from dask_jobqueue import SLURMCluster
        from dask_jobqueue.slurm import SLURMJob

        return "dask_jobqueue.SLURMCluster", (SLURMCluster, SLURMJob)
    from distributed import Client

    return "distributed.Client", (Client,)


def _keywords(*classes) -> set[str]:
    """The keyword arguments ``classes`` take, following ``**kwargs`` up their bases."""
    import inspect

    names = set()
    for cls in classes:
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            params = inspect.signature(init).parameters.values()
            names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                            p.KEYWORD_ONLY)} - {"self"}
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                break
    return names


def _absolute_paths(p: dict) -> None:
    """Workers run in directories of their own: every input path must be absolute."""
    if isinstance(p["vis"], (list, tuple)):
        p["vis"] = [os.path.abspath(v) for v in p["vis"]]
    else:
        p["vis"] = os.path.abspath(p["vis"])
    for name in ("vptable", "cfcache"):
        if p[name]:
            p[name] = os.path.abspath(p[name])
    if isinstance(p["startmodel"], (list, tuple)):
        p["startmodel"] = [os.path.abspath(m) if str(m).strip() else m for m in p["startmodel"]]
    elif str(p["startmodel"]).strip():
        p["startmodel"] = os.path.abspath(p["startmodel"])
    masks = p["mask"] if isinstance(p["mask"], list) else [p["mask"]]
    masks = [os.path.abspath(m) if m and os.path.exists(m) else m for m in masks]
    p["mask"] = masks if isinstance(p["mask"], list) else masks[0]


def _check_imsize_cell(p: dict) -> None:
    imsize = np.atleast_1d(p["imsize"])
    if len(imsize) not in (1, 2) or any(int(n) < 1 for n in imsize):
        raise ParameterError(f"imsize must be one or two positive integers, got {p['imsize']!r}")
    cells = [c for c in np.atleast_1d(p["cell"]) if str(c).strip()]
    if not cells:
        raise ParameterError("cell: a pixel size is required (e.g. cell='1arcsec')")
    qa = casa.tools().quanta()
    for c in cells:
        # isquantity first: quanta.quantity raises CASA's QuantumHolder error on 'abc'
        if isinstance(c, str) and not qa.isquantity(str(c)):
            raise ParameterError(f"cell: {str(c)!r} is not a positive angle")
        q = qa.quantity(c) if isinstance(c, str) else qa.quantity(float(c), "arcsec")
        if not qa.compare(q, qa.quantity("1arcsec")) or q["value"] <= 0:
            raise ParameterError(f"cell: {str(c)!r} is not a positive angle")


def _check_cube(p: dict) -> None:
    for name, (supported, reason) in schema.UNSUPPORTED.items():
        if not supported(p[name]):
            raise ParameterError(f"{name}={p[name]!r} is not supported by pclean's parallel "
                                 f"cube imaging yet: {reason}. Run serial tclean "
                                 "(casatasks.tclean) for this call.")
    if p["nchan"] == 0 or p["nchan"] < -1:
        raise ParameterError(f"nchan must be -1 (all) or a positive number, got {p['nchan']}")
    if int(p["niter"]) < 0:
        raise ParameterError(f"niter must be >= 0, got {p['niter']}")
    if p["weighting"] == "briggsbwtaper":
        # tclean's own constraints (task_tclean.py), enforced up front
        if not p["perchanweightdensity"]:
            raise ParameterError("weighting='briggsbwtaper' needs perchanweightdensity=True")
        if int(p["npixels"]) != 0:
            raise ParameterError("weighting='briggsbwtaper' needs npixels=0")
    refusals.check_call(p)
    _check_start_model(p)
    if continues(p):
        _check_continuation(p)
    else:
        if not p["calcpsf"]:
            raise ParameterError("calcpsf=False with calcres=True is not supported by pclean's "
                                 "parallel cube imaging yet: pclean continues a clean with "
                                 "calcpsf=False and calcres=False. Run serial tclean "
                                 "(casatasks.tclean) for this call.")
        _check_outputs(p)


def start_models(p: dict) -> list[str]:
    """The start model images named (tclean takes a name or a list)."""
    return [str(m) for m in np.atleast_1d(p["startmodel"] or "") if str(m).strip()]


def has_start_model(p: dict) -> bool:
    return bool(start_models(p))


def has_model(p: dict) -> bool:
    """Is there a model to predict: iterations make one, a start model is one."""
    return int(p["niter"]) > 0 or has_start_model(p)


def _check_start_model(p: dict) -> None:
    """One start model that is an image, and no model of this imagename beside it (what
    serial tclean refuses too)."""
    names = start_models(p)
    if len(names) > 1:
        raise ParameterError(f"startmodel: {len(names)} images given; tclean takes one start "
                             "model (a list of several only for deconvolver='mtmfs'): merge "
                             "them first")
    if not names:
        return
    if not os.path.exists(os.path.join(names[0], "table.dat")):
        # serial tclean goes on without a start model (it logs "Starting model image ... does
        # not exist. No initial prediction will be done"): a mistyped name would be lost
        raise ParameterError(f"startmodel: {names[0]!r} is not a CASA image (no such table); "
                             "serial tclean would image without a start model")
    model = f"{p['imagename']}.model"
    if os.path.exists(model):
        # as tclean's image parameters refuse it (SynthesisParamsImage, measured: "Model ...
        # exists, but a starting model of ... is also being requested")
        raise ParameterError(f"startmodel: {model} exists and startmodel={names[0]!r} is given "
                             "as well; tclean refuses this too. Set startmodel='' to continue "
                             "from the existing model, or delete it to start from the new one")


def continues(p: dict) -> bool:
    """calcres=False: the call continues from the images of an earlier one (tclean's second
    call of a clean in several calls)."""
    return not p["calcres"]


# what a continued clean reads from the earlier call's images, and what it leaves as they were
CONTINUE_NEEDS = ("psf", "residual", "pb", "sumwt")
CONTINUE_KEEPS = ("psf", "pb", "mask")


def _check_continuation(p: dict) -> None:
    """A continued clean (calcpsf=False, calcres=False, as tclean's second call): the earlier
    call's images are there, and nothing is asked that serial tclean refuses too."""
    prefix = p["imagename"]
    if p["calcpsf"]:
        raise ParameterError("calcres=False with calcpsf=True is not supported by pclean's "
                             "parallel cube imaging: a continued clean has calcpsf=False and "
                             "calcres=False. Run serial tclean (casatasks.tclean) for this call.")
    if not p["restart"]:
        raise ParameterError("restart=False with calcres=False: a continued clean reads the "
                             "earlier call's images (restart=True)")
    missing = [f"{prefix}.{prod}" for prod in CONTINUE_NEEDS
               if not os.path.exists(f"{prefix}.{prod}")]
    if missing:
        raise ParameterError("calcres=False continues from the images of an earlier call, and "
                             + ", ".join(missing) + " do not exist (image with calcres=True "
                             "first)")
    masks = [m for m in np.atleast_1d(p["mask"]) if str(m).strip()] if p["mask"] else []
    if masks and os.path.exists(f"{prefix}.mask"):
        # as tclean's setupdeconvolution refuses it (measured: "Mask image ... exists, but a
        # specific input mask ... has also been supplied")
        raise ParameterError(f"mask: {prefix}.mask exists and mask={p['mask']!r} is given as "
                             "well; tclean refuses this too. Set mask='' to reuse the existing "
                             "mask, or delete it before continuing")
    if p["fitsout"]:
        existing = [f"{prefix}.{prod}.fits" for prod in PRODUCTS
                    if os.path.exists(f"{prefix}.{prod}.fits")]
        if existing:
            raise ParameterError("fitsout: FITS exports exist and would be overwritten: "
                                 + ", ".join(existing))


def check_serial_outputs(p: dict) -> None:
    """The serial fallback (not a cube) writes through tclean, which reuses or rewrites images
    of the same name: refused where any exists, as for cubes."""
    import glob

    prefix = os.path.abspath(str(p["imagename"]))
    existing = sorted(path for path in glob.glob(glob.escape(prefix) + ".*")
                      if os.path.exists(os.path.join(path, "table.dat")))
    if existing:
        raise ParameterError("imagename: output images exist and would be overwritten: "
                             + ", ".join(existing) + " (remove them or choose another imagename)")


def _check_outputs(p: dict) -> None:
    """Nothing the user has is overwritten: every product (and its FITS export when asked
    for) must be new."""
    outputs = [f"{p['imagename']}.{prod}" for prod in PRODUCTS]
    if p["fitsout"]:
        outputs += [out + ".fits" for out in outputs]
    existing = [out for out in outputs if os.path.exists(out)]
    if existing:
        raise ParameterError("imagename: output images exist and would be overwritten: "
                             + ", ".join(existing) + " (remove them or choose another imagename)")
    parent = os.path.dirname(os.path.abspath(p["imagename"]))
    if not os.path.isdir(parent):
        raise ParameterError(f"imagename: directory {parent} does not exist")
