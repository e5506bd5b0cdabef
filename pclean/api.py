"""pclean(): tclean's parameters in, tclean's cube and summary dict out, computed in parallel;
and run_and_compare(): the same call through serial tclean and pclean, compared.

The stages, in order: params (plan, before any worker) -> run (cluster, cycles over the
chunks) -> gather (the final cube) -> view (FITS, when asked)."""
from __future__ import annotations

import os
import time
import warnings

from pclean import casa, params, run
from pclean.params import ParameterError, config, resume, schema
from pclean.run import checkpoint, cluster, progress
from pclean.run.events import Ledger, ProgressLog


def _say(message: str) -> None:
    """A line for the terminal (stderr) and the CASA log."""
    import sys

    print(message, file=sys.stderr, flush=True)
    casa.log(message)


def _report(p: dict):
    """Dask's performance report of the run, beside the products, when asked for."""
    import contextlib

    if not p["performance_report"]:
        return contextlib.nullcontext()
    from distributed import performance_report

    from pclean.params import resources

    return performance_report(filename=resources.performance_report_path(p["imagename"]))


def _notify(observer, event) -> None:
    if observer is not None:
        observer.notify(event)


def _close(observer) -> None:
    if observer is not None:
        observer.close()


class SerialFallback(UserWarning):
    """A call pclean hands to serial tclean (not a cube)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what scancel and a SLURM walltime send) during a run: stopped as Ctrl-C
    stops it, so the cluster is closed and the run can be continued."""


def _on_sigterm():
    """During a run, SIGTERM raises Terminated (Python's default ends the process at once,
    leaving the workers to their death timeout); the earlier handler comes back after."""
    import contextlib
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()

    def raise_terminated(signum, frame):
        raise Terminated("pclean: terminated (SIGTERM)")

    @contextlib.contextmanager
    def installed():
        previous = signal.signal(signal.SIGTERM, raise_terminated)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    return installed()


def pclean(*args, **kwargs) -> dict:
    p = schema.bind(args, kwargs)
    given = set(kwargs) | set(list(schema.signature().parameters)[:len(args)])
    return run_params(config.apply(p, given))  # pclean's Dask-config defaults where not given


pclean.__signature__ = schema.signature()
pclean.__doc__ = schema.docstring()


def run_params(raw: dict) -> dict:
    timings = {}
    t_start = time.time()
    p = params.normalize(raw)
    if not params.is_cube(p):
        params.check_serial_outputs(p)
        why = (f"pclean: specmode={p['specmode']!r} is not a cube (tclean's default is "
               f"'mfs'); running serial tclean. pclean images cubes in parallel: "
               f"specmode='cube', 'cubedata' or 'cubesource'")
        casa.log(why, "WARN")
        warnings.warn(why, SerialFallback, stacklevel=3)  # on the terminal, not only the log
        from casatasks import tclean

        return tclean(**{k: p[k] for k in (q.name for q in schema.tclean_params())})

    with _on_sigterm():
        return _run_cube(p, timings, t_start)


def _run_cube(p: dict, timings: dict, t_start: float) -> dict:
    shown = progress.observer(p["progress"], int(p["niter"]), casa.log)
    try:
        # every cube-wide value and check before any worker starts; or the plan of an
        # interrupted run of this call, to continue
        plan = params.make_plan(p)
    except BaseException:
        _close(shown)
        raise
    timings["planning"] = time.time() - t_start
    failed = True
    try:
        t0 = time.time()
        _notify(shown, progress.Phase("cluster start"))
        with cluster.connect(p["cluster"], p["nworkers"], p["worker_memory"],
                             p["cluster_options"], p["cluster_timeout"],
                             p["dashboard"]) as client, _report(p):
            if p["dashboard"]:
                _say(f"pclean: Dask dashboard at {cluster.dashboard_link(client) or 'none'}")
            workers = cluster.worker_addresses(client, p["nworkers"])
            timings["cluster_start"] = time.time() - t0
            if not plan.chunks:  # the recorded chunks, if a resumed run has them
                plan = params.with_chunks(plan, len(workers),
                                          cluster.memory_limit_mb(client, workers))
                resume.save(plan)
            plan.write_manifest()
            from pclean import gather

            recorded = None
            if plan.resumed:
                recorded = checkpoint.StretchLog(plan.workdir.stretches).read()
                _say(f"pclean: continuing the interrupted run in {plan.workdir.root} "
                     f"({len(recorded)} stretches of tclean's cycles done"
                     + (", imaging complete" if _imaged(recorded) else "") + ")")
            _notify(shown, progress.Phase("chunks starting", len(plan.chunks), plan.grid.nchan))
            observers = [ProgressLog(casa.log), Ledger(plan.workdir.ledger)]
            observers += [shown] if shown else []
            summary, chunk_status = run.image(plan, client, workers, timings, observers,
                                              recorded)
            t0 = time.time()
            _notify(shown, progress.Phase("gather"))
            if plan.resumed:
                gather.recover(plan)
            written = gather.gather(plan, client, workers, timings)
            timings["gather"] = time.time() - t0
            _notify(shown, progress.Phase("done"))
        failed = False
    finally:
        _close(shown)
        if failed:
            if os.path.isdir(plan.workdir.root):
                casa.log(f"pclean stopped; chunk images, checkpoints and CASA logs kept in "
                         f"{plan.workdir.root}: the same call continues from the last "
                         f"completed stretch", "SEVERE")
        elif not p["keep_chunks"]:
            plan.workdir.remove()
        resume.release(plan.workdir.root)
    if p["fitsout"]:
        from pclean.view import fitsio

        for path in written:
            fitsio.export(path, path + ".fits")
    if int(p["niter"]) == 0:
        summary = run.summary.residual_summary(plan.params)
    timings["total"] = time.time() - t_start
    # pclean's one addition to tclean's dict: how the run went
    summary["pclean"] = {"timings": timings, "chunks": chunk_status,
                         "nchunks": len(plan.chunks), "nworkers": len(workers),
                         "nchan": plan.grid.nchan, "fracbw": plan.cubewide.get("fracbw"),
                         "products": written, "identity": plan.manifest()["identity"]}
    casa.log("pclean timings: " + ", ".join(f"{k}={v:.2f}s" for k, v in timings.items()
                                            if isinstance(v, float)))
    return summary


def _imaged(recorded: list) -> bool:
    return bool(recorded) and any(c[0] == "close" for c in recorded[-1][0][0])


def run_and_compare(params_: dict, ref_prefix: str | None = None, tolerance: float | None = None,
                    report_prefix: str | None = None):
    """Run serial tclean and pclean with the same parameters, then compare their products.

    params_: pclean()'s parameters (tclean's plus pclean's own); tclean receives the tclean ones
        with ``imagename=ref_prefix`` (default ``<imagename>.tclean``), pclean all of them.
    report_prefix: if given, also write ``.json``, ``.csv`` and ``.png`` reports there.

    tclean runs first, then pclean; both wall times and both runs' ``iterdone``/``nmajordone``
    go into the report. Existing outputs of either run are refused before anything runs
    (tclean would otherwise continue from them).
    """
    from pclean.compare import DEFAULT_TOLERANCE, compare_prefixes
    from pclean.products import PRODUCTS

    p = dict(params_)
    if not p.get("imagename"):
        raise ValueError("imagename: an output image name is required")
    test_prefix = str(p["imagename"])
    ref_prefix = str(ref_prefix or test_prefix + ".tclean")
    if os.path.abspath(ref_prefix) == os.path.abspath(test_prefix):
        raise ValueError("ref_prefix must differ from imagename")
    existing = [f"{ref_prefix}.{prod}" for prod in PRODUCTS
                if os.path.exists(f"{ref_prefix}.{prod}")]
    if existing:
        raise FileExistsError("tclean's output images exist: " + ", ".join(existing)
                              + " (remove them, choose another ref_prefix, or compare existing "
                              "sets with compare_prefixes)")
    params.normalize(schema.bind((), p))  # bad pclean/tclean input: fail before running

    tclean_names = {q.name for q in schema.tclean_params()}
    tclean_args = {k: v for k, v in p.items() if k in tclean_names}
    tclean_args["imagename"] = ref_prefix
    casa.configure()
    from casatasks import tclean

    t0 = time.perf_counter()
    ref_result = tclean(**tclean_args) or {}
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_result = pclean(**p) or {}
    t_test = time.perf_counter() - t0

    report = compare_prefixes(test_prefix, ref_prefix,
                              DEFAULT_TOLERANCE if tolerance is None else tolerance)
    report.wall_time_s = {"test": t_test, "ref": t_ref}
    report.iterations = {"test": _iterations(test_result), "ref": _iterations(ref_result)}
    if report_prefix:
        report.save(report_prefix)
    return report


def _iterations(result: dict) -> dict:
    out = {}
    for key in ("iterdone", "nmajordone"):
        value = result.get(key) if isinstance(result, dict) else None
        out[key] = int(value) if value is not None else None
    return out


__all__ = ["pclean", "run_and_compare", "ParameterError"]
