"""The one parameter schema: it feeds pclean()'s signature, the command line and config files.

tclean's parameters are not written out here: their names, order and defaults are read from the
installed casatasks ``tclean`` (our contract with users), and so are its type rules (the cerberus
schema generated from tclean.xml), so a value is accepted and coerced exactly as tclean would
(read without importing casatasks: see ``pclean.casa.helpers``), and the command line reads a
value as the type tclean declares for it (``--spw 0`` is the string '0').
What we add is short: pclean's own parameters with their rules, and which tclean values the
parallel path does not support yet (rejected by name, never silently ignored).
"""
from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from pclean.casa import helpers
from pclean.params.errors import ParameterError
from pclean.params.gridders import UNSUPPORTED_GRIDDER


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    doc: str = ""
    # pclean's own: the Python types a value may have, and a rule that says what is wrong with
    # an allowed-type value (None: nothing)
    types: tuple = ()
    rule: Callable[[Any], str | None] | None = None


def _positive_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _chanchunk_rule(value) -> str | None:
    if isinstance(value, (list, tuple)):
        if not value or not all(_positive_int(v) for v in value):
            return f"a list of chunk sizes must hold positive integers, got {value!r}"
        return None
    if value is not None and not _positive_int(value):
        return f"must be a positive integer (channels per chunk) or a list of chunk sizes, " \
               f"got {value!r}"
    return None


def _choice(*allowed):
    def rule(value):
        return None if value in allowed else \
            f"must be {' or '.join(repr(a) for a in allowed)}, got {value!r}"
    return rule


def _memory_rule(value):
    if value is None:
        return None
    from dask.utils import parse_bytes

    try:
        ok = not isinstance(value, bool) and parse_bytes(value) > 0
    except (ValueError, TypeError):
        ok = False
    return None if ok else f"must be a size such as '4GiB' or a number of bytes, got {value!r}"


PARALLEL_PARAMS = (
    Param("nworkers", None, "Number of Dask workers. Default: one single-threaded process per "
          "core for the embedded cluster; all workers of a given client/scheduler; required "
          "for cluster='slurm' (one SLURM job each).", (int, type(None)),
          lambda v: None if v is None or _positive_int(v) else
          f"must be a positive integer, got {v!r}"),
    Param("chanchunk", None, "Channels per chunk, or the list of every chunk's size. Default: "
          "chosen by the plan's cost model.", (int, list, tuple, type(None)), _chanchunk_rule),
    Param("cluster", None, "Where to run: None/'local' (embedded cluster), a "
          "distributed.Client, a scheduler address ('tcp://host:8786'), or 'slurm' "
          "(dask-jobqueue; see cluster_options).", (str, type(None), object)),
    Param("cluster_options", None, "Keyword arguments for what pclean creates for `cluster`: "
          "the embedded cluster's workers (distributed.Worker), dask_jobqueue.SLURMCluster "
          "(queue, account, walltime, ...), or the distributed.Client of a scheduler address. "
          "Checked against that signature before anything starts.", (dict, type(None))),
    Param("cluster_timeout", None, "Seconds to wait for the workers to connect (a run stops "
          "sooner, with the reason, when they cannot: processes that exited, SLURM jobs that "
          "ended or cannot be submitted). Default: 300 for the embedded cluster, 1800 for "
          "SLURM (jobs queue), 120 for a scheduler address.", (int, float, type(None)),
          lambda v: None if v is None or (not isinstance(v, bool) and v > 0) else
          f"must be a positive number of seconds, got {v!r}"),
    Param("worker_memory", None, "Memory limit per worker (e.g. '4GiB'). Default: machine "
          "memory / nworkers for the embedded cluster; for SLURM the site's dask-jobqueue "
          "memory (jobqueue.slurm.memory), else 4GiB.", (str, int, float, type(None)),
          _memory_rule),
    Param("workdir", None, "Where chunk sub-cubes are written (must be visible to every "
          "worker). Default: beside imagename.", (str, type(None))),
    Param("keep_chunks", False, "Keep the chunk sub-cubes and their logs after gathering.",
          (bool,)),
    Param("gather", "paged", "'paged': one ordinary CASA image per product (copies every pixel "
          "once, one worker per product); 'virtual': the final cubes reference the chunks' "
          "planes, moved inside them (chunks with halo channels first copy their own channels, "
          "each on its worker).", (str,), _choice("paged", "virtual")),
    Param("progress", None, "Progress display: None shows a live display (phase, iterations, "
          "peak residual, elapsed, estimate) when stderr is a terminal and writes a line per "
          "major cycle to the CASA log otherwise; True always the display; False none.",
          (bool, type(None))),
    Param("dashboard", False, "Serve the Dask dashboard (the embedded cluster's, at "
          "127.0.0.1:8787 or the next free port; a scheduler's own otherwise) and print its "
          "address. Needs bokeh.", (bool,)),
    Param("performance_report", False, "Write a Dask performance report of the run "
          "(distributed.performance_report) to <imagename>.dask-report.html.", (bool,)),
    Param("fitsout", False, "Also export the final products to FITS (imagename.<product>.fits).",
          (bool,)),
)

# tclean values the parallel cube path does not support yet: name -> (is_supported, reason)
UNSUPPORTED = {
    "interactive": (lambda v: not v, "interactive cleaning needs one serial viewer"),
    "outlierfile": (lambda v: not v, "outlier fields are not chunked yet"),
    "psfphasecenter": (lambda v: not v, "a separate PSF phase centre is not supported"),
    "facets": (lambda v: v == 1, "faceted imaging is serial in CASA too"),
    "gridder": UNSUPPORTED_GRIDDER,
    "usemask": (lambda v: v in ("user", "pb"), "auto-multithresh is not chunked yet"),
    "deconvolver": (lambda v: v != "mtmfs", "tclean does not support mtmfs cubes either"),
}


@lru_cache(maxsize=1)
def tclean_params() -> tuple[Param, ...]:
    """tclean's parameters, names and defaults as the installed casatasks defines them."""
    docs = helpers.tclean_descriptions()
    return tuple(Param(name, default, docs.get(name, ""))
                 for name, default in helpers.tclean_definition().params)


# tclean's parameters in groups, each from its first parameter in tclean's order (the task's
# own sections); pclean's own parameters are the last group
GROUPS = (("data selection", "vis"), ("image", "imagename"), ("spectral axis", "specmode"),
          ("gridding and primary beam", "gridder"), ("deconvolution", "deconvolver"),
          ("restoration", "restoration"), ("outlier fields", "outlierfile"),
          ("weighting", "weighting"), ("iteration control", "niter"),
          ("masking", "usemask"), ("continuing and saving", "restart"))


def grouped() -> list[tuple[str, tuple[Param, ...]]]:
    """``[(group title, its parameters), ...]``: tclean's sections, then pclean's own."""
    params = tclean_params()
    starts = {first: title for title, first in GROUPS}
    out = []
    for p in params:
        if p.name in starts or not out:
            out.append((starts.get(p.name, "tclean"), []))
        out[-1][1].append(p)
    return [(title, tuple(ps)) for title, ps in out] + [("parallel (pclean's own)",
                                                         PARALLEL_PARAMS)]


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
    return helpers.validate_tclean({k: values[k] for k in (p.name for p in tclean_params())})


def check_parallel(values: dict) -> dict:
    """pclean's own parameters checked by their rules; ParameterError naming the first wrong."""
    out = {}
    for p in PARALLEL_PARAMS:
        value = values.get(p.name, p.default)
        if p.types and object not in p.types and not isinstance(value, p.types):
            raise ParameterError(f"{p.name} must be of type "
                                 f"{' or '.join(t.__name__ for t in p.types)}, got {value!r}")
        why = p.rule(value) if p.rule else None
        if why:
            raise ParameterError(f"{p.name} {why}")
        out[p.name] = list(value) if isinstance(value, tuple) else value
    return out


def bind(args: tuple, kwargs: dict) -> dict:
    """Full parameter dict from a pclean(...) call: defaults filled, unknown names rejected."""
    try:
        bound = signature().bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"pclean: {exc}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


# ---------------------------------------------------------------------------------------------
# values given as text (command line)
# ---------------------------------------------------------------------------------------------
def _tclean_kinds(name: str) -> set[str]:
    rule = helpers.tclean_definition().schema.get(name, {})
    return {r["type"] for r in rule.get("anyof", [rule]) if "type" in r}


_NUMERIC = {"cInt", "cFloat", "cDouble", "cIntVec", "cFloatVec", "cDoubleVec", "cVariant"}
_LISTS = {"cIntVec", "cFloatVec", "cDoubleVec", "cStrVec", "cReqPathVec", "cPathVec",
          "cVariant", "cBoolVec"}


def from_text(name: str, text: str):
    """A parameter's value written as text, read as the schema types it: '96' for imsize is
    96, '[96,96]' [96, 96], 'true' for a bool True, '0' for spw the string '0', '10arcsec'
    the string. Unknown names: ValueError."""
    param = next((p for p in all_params() if p.name == name), None)
    if param is None:
        raise ValueError(f"unknown parameter {name!r}")
    lowered = text.strip().lower()
    try:
        literal = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        literal = text
    if param.types:  # pclean's own
        if lowered in ("none", "null") and type(None) in param.types:
            return None
        if lowered in ("true", "false") and bool in param.types:
            return lowered == "true"
        return literal if isinstance(literal, param.types) and object not in param.types \
            else text
    kinds = _tclean_kinds(name)
    if lowered in ("true", "false") and kinds & {"cBool", "cBoolVec", "cVariant"}:
        return lowered == "true"
    if isinstance(literal, (list, tuple)) and kinds & _LISTS:
        if not kinds & _NUMERIC:  # a list of strings or paths, written as one: [a, b]
            # unbracketed commas are tclean's own selection syntax: --spw 0,1 is '0,1'
            return [str(v) for v in literal] if text.strip().startswith(("[", "(")) else text
        return list(literal)
    if isinstance(literal, (int, float)) and not isinstance(literal, bool) and kinds & _NUMERIC:
        return literal
    return text


def docstring() -> str:
    lines = ["Parallel tclean for spectral cubes: tclean's parameters (names, defaults and "
             "casatasks' descriptions), then pclean's own.", ""]
    for title, params in grouped():
        lines.append(f"{title[0].upper()}{title[1:]}:")
        for p in params:
            lines.append(f"    {p.name} (default {p.default!r}): {p.doc or p.name}")
        lines.append("")
    lines += ["Defaults of cluster, nworkers, worker_memory, workdir, progress and "
              "cluster_timeout come from dask.config (pclean config shows them)."]
    lines += ["", "tclean values not supported by the parallel path yet (an error names them):"]
    for name, (_check, reason) in UNSUPPORTED.items():
        lines.append(f"    {name}: {reason}")
    lines += ["", "specmode other than cube/cubedata/cubesource runs serial tclean (logged).",
              "tclean's 'parallel' parameter is accepted for compatibility; cubes are always "
              "distributed over Dask workers.", "",
              "Returns tclean's summary dict."]
    return "\n".join(lines)
