"""Batch mode for real: pclean's chunks run as SLURM jobs (dask-jobqueue) on the machine's own
single-node SLURM, and the cube equals serial tclean's.

``.ci/slurm-up`` installs and starts that SLURM and CI sets ``PCLEAN_TEST_SLURM=1``: there a
missing SLURM fails the test instead of skipping it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from conftest import IMAGING
from oracle import assert_cube_equal, assert_summary_equal
from pclean import casa, pclean
from pclean.casa import fracbw

REQUIRED = os.environ.get("PCLEAN_TEST_SLURM") == "1"
HAVE_SLURM = shutil.which("sbatch") is not None and shutil.which("squeue") is not None

pytestmark = pytest.mark.skipif(not (HAVE_SLURM or REQUIRED),
                                reason="no SLURM on this machine (.ci/slurm-up starts one)")


def _live_jobs(job_ids: set[str]) -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i", "-t", "PENDING,RUNNING,CONFIGURING"],
                         capture_output=True, text=True, check=True).stdout.split()
    return job_ids & set(out)


def test_slurm_jobs_image_the_cube_as_serial_tclean(ms_lsrk, serial, tmp_path):
    assert HAVE_SLURM, "PCLEAN_TEST_SLURM=1 but sbatch/squeue are not on PATH"
    params = dict(IMAGING, weighting="briggsbwtaper", niter=200, deconvolver="hogbom")
    ref_prefix, ref_summary = serial(ms_lsrk, **params)
    prefix = str(tmp_path / "slurm")
    logs = tmp_path / "slurm-logs"
    got = pclean(vis=ms_lsrk, imagename=prefix, cluster="slurm", nworkers=2,
                 worker_memory="2GiB",
                 cluster_options={"walltime": "00:20:00", "log_directory": str(logs)},
                 **params)
    assert_cube_equal(prefix, ref_prefix)
    assert_summary_equal(got, ref_summary)
    chunks = got["pclean"]["chunks"]
    jobs = {c["slurm_job_id"] for c in chunks}
    # every chunk ran inside a SLURM job, two jobs for two workers
    assert None not in jobs and len(jobs) == 2, jobs
    assert len(list(logs.glob("*.err"))) == 2  # the jobs' own logs, where we asked for them
    # the full-cube fracBW reached CASA inside the batch jobs: on the stock wheel the shim
    # substituted it there (a casatools rebuilt with patches/ takes it in setweighting: 0)
    assert got["pclean"]["fracbw"] > 0
    patched = fracbw.accepts_fracbw(casa.tools().synthesisimager.setweighting)
    for c in chunks:
        assert c["fracbw_substitutions"] == 0 if patched else c["fracbw_substitutions"] >= 1
    # pclean cancels its jobs when done: none left running or queued
    deadline = time.time() + 60
    while _live_jobs(jobs) and time.time() < deadline:
        time.sleep(1)
    assert not _live_jobs(jobs)


def test_jobs_that_stay_pending_end_the_wait_with_slurms_reason():
    """Jobs held in the queue (--begin an hour ahead): the wait ends at cluster_timeout with
    SLURM's reason, and the jobs are cancelled."""
    from pclean.run import cluster, waits

    t0 = time.monotonic()
    with pytest.raises(waits.ClusterStartError,
                       match=r"0 of 1 SLURM workers .* after 15 s.*PENDING \(BeginTime\)"):
        with cluster.connect("slurm", 1, None, {"job_extra_directives": ["--begin=now+3600"]},
                             timeout_s=15):
            pass
    assert time.monotonic() - t0 < 60
    assert not subprocess.run(["squeue", "-h", "-t", "PENDING"], capture_output=True,
                              text=True, check=True).stdout.strip()


def test_a_job_sbatch_refuses_ends_the_wait_at_once():
    from pclean.run import cluster, waits

    t0 = time.monotonic()
    with pytest.raises(waits.ClusterStartError, match="sbatch refused 1 of 1 jobs"):
        with cluster.connect("slurm", 1, None, {"queue": "no-such-partition"}):
            pass
    assert time.monotonic() - t0 < 30


def test_a_job_scancelled_mid_run_has_its_chunks_rebuilt(ms_lsrk, serial, tmp_path):
    """scancel one of the two worker jobs in the first minor cycle: its chunks are rebuilt in
    the other job and the cube still equals serial tclean's."""
    import json
    import threading

    params = dict(IMAGING, niter=200, cycleniter=20, threshold="1mJy")
    ref_prefix, ref_summary = serial(ms_lsrk, **params)
    prefix = str(tmp_path / "scancel")
    ledger = prefix + ".pclean-work/ledger.jsonl"
    cancelled = []

    def cancel_one_job():
        deadline = time.time() + 300
        while time.time() < deadline:
            if os.path.exists(ledger) and '"minor_cycle"' in open(ledger).read():
                jobs = subprocess.run(["squeue", "-h", "-o", "%i", "-t", "RUNNING"],
                                      capture_output=True, text=True).stdout.split()
                if jobs:
                    subprocess.run(["scancel", jobs[-1]], check=True)
                    cancelled.append(jobs[-1])
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=cancel_one_job, daemon=True)
    watcher.start()
    got = pclean(vis=ms_lsrk, imagename=prefix, cluster="slurm", nworkers=2,
                 worker_memory="2GiB", chanchunk=4, keep_chunks=True,
                 cluster_options={"walltime": "00:20:00", "log_directory": str(tmp_path)},
                 **params)
    watcher.join(timeout=5)
    assert cancelled
    assert_cube_equal(prefix, ref_prefix)
    assert_summary_equal(got, ref_summary)
    with open(ledger) as f:
        assert any(json.loads(line)["event"] == "ChunkRebuilt" for line in f)
