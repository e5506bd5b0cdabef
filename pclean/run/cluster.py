"""Where chunks run: an embedded LocalCluster (default), an existing Dask client or scheduler,
or SLURM batch jobs through dask-jobqueue."""
from __future__ import annotations

import contextlib
import logging
import os

import dask

from pclean.run import health, waits

# CASA allocates its grids outside Python: Dask's memory manager would see a worker "leak" and
# spill (nothing to spill: actors hold no Dask data) or pause it (stalling every cycle). Where a
# nanny runs the worker (SLURM jobs, clusters of your own), it restarts a worker only past 98% of
# its limit; the embedded cluster's workers have no nanny, so only the OS limits them.
WORKER_MEMORY_CONFIG = {
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
    "distributed.worker.memory.terminate": 0.98,
}


def worker_env() -> dict:
    """Environment every pclean worker needs before it starts: OpenMP at one thread (one
    worker per core), and the memory settings above as DASK_* variables (dask.config.set does
    not reach another process)."""
    env = {"OMP_NUM_THREADS": "1"}
    for key, value in WORKER_MEMORY_CONFIG.items():
        env["DASK_" + key.replace(".", "__").replace("-", "_").upper()] = str(value)
    return env


@contextlib.contextmanager
def _worker_environment():
    """Environment inherited by the embedded cluster's worker subprocesses: CASA configured
    offline, and ``worker_env()``."""
    from pclean import casa

    casa.configure()
    env = worker_env()
    if _quiet():
        env["DASK_LOGGING__DISTRIBUTED"] = "warning"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _quiet() -> bool:
    return "DASK_LOGGING__DISTRIBUTED" not in os.environ


@contextlib.contextmanager
def _quiet_dask_logs():
    """Dask's INFO lines (about 60 per run: scheduler and worker start, connections, and a
    harmless CommClosedError traceback when the cluster closes) are not what someone running
    tclean expects on the terminal. While pclean's own cluster runs, this process (the
    scheduler is in it) and the embedded workers log Dask warnings and errors only. Setting
    ``DASK_LOGGING__DISTRIBUTED`` (e.g. ``info``) keeps Dask's logging as configured."""
    if not _quiet():
        yield
        return
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _total_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


# a worker that cannot reach its scheduler for this long ends (the coordinator was killed).
# Measured: workers still importing casatools when the coordinator died retried for minutes
# without it, and ended 22 s after it with 20 s; connected ones end within 3 s either way.
# SLURM jobs may reach a scheduler on another node over a slower network.
DEATH_TIMEOUT_S = {"local": 10, "slurm": 60}

# how long workers may take to connect, by kind of cluster (``cluster_timeout`` overrides):
# an embedded worker imports casatools in a few seconds; SLURM jobs wait in a queue
START_TIMEOUT_S = {"local": 300.0, "slurm": 1800.0, "address": 120.0}


@contextlib.contextmanager
def connect(cluster=None, nworkers: int | None = None, worker_memory=None, options=None,
            timeout_s: float | None = None, dashboard: bool = False):
    """Yield a ``distributed.Client``; close whatever this function started. Waiting for the
    workers ends at ``timeout_s`` (default ``START_TIMEOUT_S``) or as soon as they cannot come
    (the embedded cluster's processes exited, SLURM jobs ended or cannot be submitted)."""
    from distributed import Client

    options = dict(options or {})
    if isinstance(cluster, Client):
        yield cluster
        return
    kind = "local" if cluster in (None, "local") else "slurm" if cluster == "slurm" else "address"
    timeout_s = START_TIMEOUT_S[kind] if timeout_s is None else float(timeout_s)
    with dask.config.set(WORKER_MEMORY_CONFIG), _quiet_dask_logs():
        if kind == "local":
            local = _embedded_cluster(nworkers or os.cpu_count() or 1, worker_memory, options,
                                      dashboard)
            try:
                client = Client(local)
            except BaseException:
                local.close()
                raise
            try:
                waits.wait_for_workers(client, len(local.workers), timeout_s,
                                       health.embedded(local), "embedded workers")
                yield client
            finally:
                client.close()
                local.close()
        elif kind == "slurm":
            n = nworkers  # required for SLURM (params.validate)
            jobs = _slurm_cluster(worker_memory, options)
            try:
                jobs.scale(n)
                client = Client(jobs)
            except BaseException:
                jobs.close()
                raise
            try:
                waits.wait_for_workers(client, n, timeout_s, health.slurm_jobs(jobs),
                                       "SLURM workers")
                yield client
            finally:
                client.close()
                try:
                    jobs.close()
                except AssertionError:
                    # distributed's SpecCluster asserts on closing a job sbatch refused (its
                    # start never completed): nothing is left to cancel
                    logging.getLogger("pclean").warning("closing SLURM jobs that never started")
        elif isinstance(cluster, str):
            client = Client(cluster, **{"timeout": min(timeout_s, 60.0), **options})
            try:
                if nworkers:
                    waits.wait_for_workers(client, nworkers, timeout_s, None,
                                           f"workers of {cluster}")
                yield client
            finally:
                client.close()
        else:
            raise ValueError(f"cluster must be None, 'local', 'slurm', a scheduler address or a "
                             f"distributed.Client, got {cluster!r}")


def _embedded_cluster(n: int, worker_memory, options: dict, dashboard: bool = False):
    """The scheduler in this process; each worker a fresh ``python -m dask spec`` process.

    Not multiprocessing children: spawn would re-import the user's __main__, and CASA scripts
    are flat scripts with no ``if __name__ == "__main__"`` guard. No nanny either (one process
    per worker, not two): a lost worker fails the run loudly rather than being restarted
    without its chunk's state. Workers import casatools at start-up (pclean.worker_preload).
    """
    from distributed import Scheduler, SpecCluster
    from distributed.deploy.subprocess import SubprocessWorker

    limit = worker_memory or int(_total_memory() / n)
    worker = {"cls": SubprocessWorker,
              "options": {"worker_class": "distributed.Worker",
                          "worker_kwargs": {"nthreads": 1, "memory_limit": limit,
                                            "host": "127.0.0.1",
                                            "death_timeout": DEATH_TIMEOUT_S["local"],
                                            "preload": ["pclean.worker_preload"],
                                            **options}}}
    # the scheduler's HTTP server on this machine only; the dashboard at Dask's usual 8787
    # when asked for (Dask takes a free port when 8787 is the user's own dashboard), else a
    # free port without it
    scheduler = {"cls": Scheduler, "options": {
        "dashboard": bool(dashboard), "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:8787" if dashboard else "127.0.0.1:0"}}
    with _worker_environment():
        return SpecCluster(workers={i: worker for i in range(n)}, scheduler=scheduler,
                           worker=worker, name="pclean")


def _slurm_cluster(worker_memory, options: dict):
    """One single-threaded worker per SLURM job (dask-jobqueue). Each job script exports
    ``worker_env()`` (explicitly: sites often submit with ``--export=NONE``) and the worker
    loads ``pclean.worker_preload`` (CASA offline, casatools imported before the first chunk).
    ``cluster_options`` go to ``SLURMCluster`` (queue, account, walltime, ...); its
    ``job_script_prologue`` and ``worker_extra_args`` are added to ours, not replacing them.
    Each job's memory is ``worker_memory``, else the site's ``jobqueue.slurm.memory``, else 4GiB.
    The run's working directory (``workdir``) must be on a file system every node sees."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(**slurm_kwargs(worker_memory, options))


def slurm_kwargs(worker_memory, options: dict) -> dict:
    """The keyword arguments of pclean's SLURMCluster (see ``_slurm_cluster``)."""
    options = dict(options)
    prologue = [f"export {k}={v}" for k, v in worker_env().items()]
    prologue += list(options.pop("job_script_prologue", None) or [])
    extra_args = ["--preload", "pclean.worker_preload", "--death-timeout",
                  str(DEATH_TIMEOUT_S["slurm"])]
    extra_args += list(options.pop("worker_extra_args", None) or [])
    kwargs = {"cores": 1, "processes": 1, "job_script_prologue": prologue,
              "worker_extra_args": extra_args}
    # the site's dask-jobqueue configuration decides the memory unless worker_memory is given
    memory = worker_memory or dask.config.get("jobqueue.slurm.memory", None)
    kwargs["memory"] = memory or "4GiB"
    kwargs.update(options)
    return kwargs


def dashboard_link(client) -> str | None:
    """The address of the Dask dashboard the client's scheduler serves, if it serves one."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:
        return None
    return client.dashboard_link if "dashboard" in services else None


def memory_limit_mb(client, workers: list[str]) -> float | None:
    """The smallest memory limit among ``workers`` (MB), or None where none is set."""
    info = client.scheduler_info()["workers"]
    limits = [info[w].get("memory_limit") or 0 for w in workers if w in info]
    return min(limits) / 2**20 if limits and all(limits) else None


def worker_addresses(client, nworkers: int | None = None) -> list[str]:
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise RuntimeError("the Dask cluster has no workers")
    return workers[:nworkers] if nworkers else workers
