"""Health checks for the workers pclean starts: each raises ``ClusterStartError`` with the
reason as soon as the awaited workers cannot come, and describes what it saw for the message
when the wait runs out of time."""
from __future__ import annotations

import shutil
import subprocess
import time

from pclean.run.waits import ClusterStartError


class Embedded:
    """The embedded cluster's worker processes: one that exited cannot connect any more
    (a bad ``worker_memory``, a crash at import, killed)."""

    def __init__(self, cluster):
        self.cluster = cluster

    def exited(self) -> dict:
        import psutil

        out = {}
        for name, worker in list(self.cluster.workers.items()):
            process = getattr(worker, "process", None)
            if process is None:
                continue
            code = process.returncode
            if code is None:
                try:
                    if psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE:
                        continue
                except psutil.NoSuchProcess:
                    pass
            out[name] = code
        return out

    def __call__(self) -> None:
        exited = self.exited()
        if exited:
            codes = ", ".join(f"worker {k}: exit code {v}" for k, v in sorted(exited.items()))
            raise ClusterStartError(
                f"the embedded cluster's workers exited before connecting ({codes}); their "
                f"error is printed above (check worker_memory and cluster_options)")

    def describe(self) -> str:
        return f"{len(self.cluster.workers)} worker processes started"


def embedded(cluster) -> Embedded:
    return Embedded(cluster)


class SlurmJobs:
    """The SLURM jobs of a dask-jobqueue cluster, read with ``squeue`` every ``every_s``: a
    job that ended before the run has its workers, or that could not be submitted, ends the
    wait; pending jobs are described with SLURM's reason."""

    def __init__(self, cluster, every_s: float = 5.0):
        self.cluster = cluster
        self.every_s = every_s
        self.last = 0.0
        self.states: dict[str, tuple[str, str]] = {}

    def job_ids(self) -> list[str]:
        return [str(j.job_id) for j in list(self.cluster.workers.values())
                if getattr(j, "job_id", None)]

    def __call__(self) -> None:
        submit = getattr(self.cluster, "job_cls", None)
        command = getattr(submit, "submit_command", "sbatch") or "sbatch"
        if shutil.which(command.split()[0]) is None:
            raise ClusterStartError(f"cluster='slurm': {command.split()[0]!r} is not on PATH: "
                                    f"no SLURM job can be submitted from this machine")
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        ids = self.job_ids()
        # SpecCluster lists a job only once its submission has returned: one without a job
        # id was refused by sbatch (its message is printed above)
        if len(ids) < len(self.cluster.workers):
            raise ClusterStartError(
                f"cluster='slurm': sbatch refused {len(self.cluster.workers) - len(ids)} of "
                f"{len(self.cluster.workers)} jobs (its error is printed above; check "
                f"cluster_options: queue, account, memory, walltime)")
        if not ids:
            return
        self.states = squeue(ids)
        ended = [i for i in ids if i not in self.states or self.states[i][0] in _ENDED]
        if ended:
            raise ClusterStartError(
                f"SLURM job(s) {', '.join(ended)} ended before the run had its workers; their "
                f"output is in the jobs' log files (slurm-<jobid>.out, or cluster_options "
                f"log_directory)")

    def describe(self) -> str:
        if not self.states:
            return "no SLURM job state read yet"
        return "SLURM jobs: " + ", ".join(f"{i} {state}" + (f" ({reason})" if reason not in
                                                              ("", "None") else "")
                                          for i, (state, reason) in sorted(self.states.items()))


_ENDED = ("COMPLETED", "COMPLETING", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
          "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED")


def squeue(job_ids: list[str], timeout_s: float = 30.0) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` of the jobs SLURM still lists (ended jobs are absent)."""
    out = subprocess.run(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i|%T|%r"],
                         capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        if "Invalid job id" in out.stderr:  # every job has left squeue's memory
            return {}
        raise ClusterStartError(f"squeue failed: {out.stderr.strip()}")
    states = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def slurm_jobs(cluster) -> SlurmJobs:
    return SlurmJobs(cluster)
