"""SLURM job settings (no CASA, no jobs): the site's dask-jobqueue memory is kept unless
worker_memory is given, and the user's prologue and worker arguments are added to pclean's."""
from __future__ import annotations

import dask

from pclean.run import cluster


def test_the_sites_jobqueue_memory_is_kept_unless_worker_memory_is_given():
    with dask.config.set({"jobqueue.slurm.memory": "11GiB"}):
        assert cluster.slurm_kwargs(None, {})["memory"] == "11GiB"
        assert cluster.slurm_kwargs("3GiB", {})["memory"] == "3GiB"
    with dask.config.set({"jobqueue.slurm.memory": None}):
        assert cluster.slurm_kwargs(None, {})["memory"] == "4GiB"


def test_user_prologue_and_worker_args_are_added_not_replacing():
    kw = cluster.slurm_kwargs(None, {"job_script_prologue": ["module load x"],
                                     "worker_extra_args": ["--lifetime", "1h"], "queue": "q"})
    assert kw["job_script_prologue"][-1] == "module load x"
    assert "export OMP_NUM_THREADS=1" in kw["job_script_prologue"]
    assert kw["worker_extra_args"] == ["--preload", "pclean.worker_preload", "--death-timeout",
                                       "60", "--lifetime", "1h"]
    assert kw["queue"] == "q" and kw["cores"] == 1 and kw["processes"] == 1
