"""The one parameter schema: it feeds pclean()'s signature, the command line and config files.

tclean's parameters are not written out here: their names, order and defaults are read from the
installed casatasks ``tclean`` (our contract with users), and so are its type rules (the cerberus
schema generated from tclean.xml), so a value is accepted and coerced exactly as tclean would
(read without importing casatasks: see ``casahelpers``).
What we add is short: the parallel parameters, and which tclean values the parallel path does
not support yet (rejected by name, never silently ignored).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pclean import casahelpers


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    doc: str = ""
    parallel: bool = False  # one of pclean's own, not tclean's


PARALLEL_PARAMS = (
    Param("nworkers", None, "Number of Dask workers. Default: one single-threaded process per "
          "core for the embedded cluster; all workers of a given client/scheduler.", True),
    Param("chanchunk", None, "Channels per chunk. Default: chosen by the plan's cost model.", True),
    Param("cluster", None, "Where to run: None/'local' (embedded LocalCluster), a "
          "distributed.Client, a scheduler address ('tcp://host:8786'), or 'slurm' "
          "(dask-jobqueue; see cluster_options).", True),
    Param("cluster_options", None, "Extra keyword arguments for the cluster (e.g. SLURM queue, "
          "walltime, account) as a dict.", True),
    Param("worker_memory", None, "Memory limit per worker for the embedded cluster "
          "(e.g. '4GiB'). Default: machine memory / nworkers.", True),
    Param("workdir", None, "Where chunk sub-cubes are written (must be visible to every "
          "worker). Default: beside imagename.", True),
    Param("keep_chunks", False, "Keep the chunk sub-cubes and their logs after gathering.", True),
    Param("gather", "paged", "'paged': one ordinary CASA image per product (copies every pixel "
          "once, one worker per product); 'virtual': the final cubes reference the chunks' "
          "planes, moved inside them (chunks with halo channels first copy their own channels, "
          "each on its worker).", True),
    Param("fitsout", False, "Also export the final products to FITS (imagename.<product>.fits).",
          True),
)

# tclean values the parallel cube path does not support yet: name -> (is_supported, reason)
UNSUPPORTED = {
    "interactive": (lambda v: not v, "interactive cleaning needs one serial viewer"),
    "outlierfile": (lambda v: not v, "outlier fields are not chunked yet"),
    "startmodel": (lambda v: not v, "a start model would have to be split by channel"),
    "psfphasecenter": (lambda v: not v, "a separate PSF phase centre is not supported"),
    "facets": (lambda v: v == 1, "faceted imaging is serial in CASA too"),
    "gridder": (lambda v: v in ("standard", "gridft", "ft"),
                "only the standard gridder is verified against tclean so far"),
    "usemask": (lambda v: v in ("user", "pb"), "auto-multithresh is not chunked yet"),
    "deconvolver": (lambda v: v != "mtmfs", "tclean does not support mtmfs cubes either"),
    "savemodel": (lambda v: v == "none", "chunks would write MODEL_DATA concurrently"),
    "calcpsf": (lambda v: bool(v), "pclean starts from nothing: calcpsf must be True"),
    "calcres": (lambda v: bool(v), "pclean starts from nothing: calcres must be True"),
}


@lru_cache(maxsize=1)
def tclean_params() -> tuple[Param, ...]:
    """tclean's parameters, names and defaults as the installed casatasks defines them."""
    return tuple(Param(name, default) for name, default in casahelpers.tclean_definition().params)


def all_params() -> tuple[Param, ...]:
    return tclean_params() + PARALLEL_PARAMS


def defaults() -> dict:
    return {p.name: p.default for p in all_params()}


def signature() -> inspect.Signature:
    params = [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
              for p in all_params()]
    return inspect.Signature(params)


def coerce_tclean(values: dict) -> dict:
    """Validate and coerce tclean parameters with tclean's own type rules."""
    return casahelpers.validate_tclean({k: values[k] for k in (p.name for p in tclean_params())})


def bind(args: tuple, kwargs: dict) -> dict:
    """Full parameter dict from a pclean(...) call: defaults filled, unknown names rejected."""
    try:
        bound = signature().bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"pclean: {exc}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def docstring() -> str:
    lines = ["Parallel tclean for spectral cubes: tclean's parameters (names and defaults), "
             "plus:", ""]
    for p in PARALLEL_PARAMS:
        lines.append(f"    {p.name} (default {p.default!r}): {p.doc}")
    lines += ["", "tclean values not supported by the parallel path yet (an error names them):"]
    for name, (_check, reason) in UNSUPPORTED.items():
        lines.append(f"    {name}: {reason}")
    lines += ["", "specmode other than cube/cubedata/cubesource runs serial tclean (logged).",
              "tclean's 'parallel' parameter is accepted for compatibility; cubes are always "
              "distributed over Dask workers.", "",
              "Returns tclean's summary dict."]
    return "\n".join(lines)
