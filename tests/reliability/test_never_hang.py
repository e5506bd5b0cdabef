"""Nothing pclean waits for hangs: workers that die at start, SLURM jobs that cannot start, a
worker killed mid-run or during the gather. Each ends within a bound, with an error that says
what happened (or, for the gather, completes on the live worker, bit-identical)."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import fill_disk
from pclean import pclean
from pclean.run import cluster, waits

IMAGING = dict(specmode="cube", imsize=48, cell="12arcsec", pblimit=0.2)


def _worker_pids(client) -> dict:
    return client.run(os.getpid)


def _kill_when(ledger: str, step: str, pid: int, timeout_s: float = 300.0) -> threading.Thread:
    """Kill ``pid`` once the run's ledger shows a stretch with ``step`` started."""
    def watch():
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if os.path.exists(ledger):
                with open(ledger) as f:
                    for line in f:
                        event = json.loads(line)
                        if event["event"] == "StretchStarted" and step in event["steps"]:
                            os.kill(pid, signal.SIGKILL)
                            return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_workers_that_exit_at_start_end_the_wait_at_once():
    t0 = time.monotonic()
    with pytest.raises(waits.ClusterStartError, match="exited before connecting"):
        with cluster.connect(None, nworkers=2, options={"preload": ["pclean_no_such_module"]}):
            pass
    assert time.monotonic() - t0 < 60


def test_a_wait_for_workers_has_a_deadline():
    """Workers that never connect (a scheduler address with none): the wait ends at
    cluster_timeout, saying how many came."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as empty:
        t0 = time.monotonic()
        with pytest.raises(waits.ClusterStartError, match="0 of 2 workers .* after 3 s"):
            with cluster.connect(empty.scheduler_address, nworkers=2, timeout_s=3):
                pass
        assert time.monotonic() - t0 < 30


def _products(prefix: str) -> dict:
    from casatools import image

    out = {}
    for product in ("image", "residual", "model", "psf", "pb", "mask", "sumwt"):
        ia = image()
        ia.open(f"{prefix}.{product}")
        out[product] = (ia.getchunk(), ia.restoringbeam())
        ia.close()
    return out


def _assert_bit_identical(got: dict, want: dict) -> None:
    for product, (pixels, beams) in want.items():
        assert np.array_equal(got[product][0], pixels), product
        assert got[product][1] == beams, product


RUN = dict(niter=200, cycleniter=20, threshold="1mJy", chanchunk=4)


@pytest.fixture(scope="module")
def undisturbed(ms_lsrk, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("calm") / "calm")
    with cluster.connect(None, nworkers=2) as client:
        result = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN, **IMAGING)
    return _products(prefix), result


@pytest.mark.parametrize("step", ["make_psf", "minor_cycle", "major_cycle"])
def test_a_chunk_lost_mid_run_is_rebuilt_bit_identical(ms_lsrk, tmp_path, step, undisturbed):
    """SIGKILL a worker as a stretch with ``step`` starts: its chunks are rebuilt on the other
    worker from their images after the last completed stretch (the one in progress undone,
    then done again), and the cube and the return dict equal an undisturbed run's bit for
    bit."""
    imagename = str(tmp_path / "killed")
    with cluster.connect(None, nworkers=2) as client:
        pids = _worker_pids(client)
        victim = sorted(pids)[1]
        watcher = _kill_when(imagename + ".pclean-work/ledger.jsonl", step, pids[victim])
        t0 = time.monotonic()
        result = pclean(vis=ms_lsrk, imagename=imagename, cluster=client, keep_chunks=True,
                        **RUN, **IMAGING)
        assert time.monotonic() - t0 < 180
        watcher.join(timeout=5)
        assert victim not in client.scheduler_info()["workers"]  # it was killed
    want, want_result = undisturbed
    _assert_bit_identical(_products(imagename), want)
    for key in ("iterdone", "nmajordone", "stopcode", "summaryminor"):
        assert repr(result[key]) == repr(want_result[key]), key
    with open(imagename + ".pclean-work/ledger.jsonl") as f:
        rebuilt = [json.loads(line) for line in f if '"ChunkRebuilt"' in line]
    assert rebuilt and all(r["lost"] == victim for r in rebuilt)


def test_a_chunk_lost_more_often_than_allowed_ends_the_run_naming_it(ms_lsrk, tmp_path):
    import dask

    imagename = str(tmp_path / "killed")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with cluster.connect(None, nworkers=2) as client:
            pids = _worker_pids(client)
            victim = sorted(pids)[1]
            watcher = _kill_when(imagename + ".pclean-work/ledger.jsonl", "minor_cycle",
                                 pids[victim])
            t0 = time.monotonic()
            with pytest.raises(waits.LostWorker) as info:
                pclean(vis=ms_lsrk, imagename=imagename, cluster=client, **RUN, **IMAGING)
            assert time.monotonic() - t0 < 120
            watcher.join(timeout=5)
    message = str(info.value)
    assert victim in message and "(channels " in message and "allowed-failures (0)" in message
    # no product of the failed run in the user's directory; the work directory is kept
    assert _listing(tmp_path) == ["killed.pclean-work"]


def test_a_worker_killed_at_the_gather_leaves_it_to_the_other(ms_lsrk, tmp_path, monkeypatch):
    """The gather's writers may run on any worker (the chunks are on a shared file system):
    one killed as the gather starts, the other writes every product, bit-identical to an
    undisturbed run."""
    from pclean.gather import execute

    with cluster.connect(None, nworkers=2) as client:
        pclean(vis=ms_lsrk, imagename=str(tmp_path / "calm"), cluster=client, niter=50,
               chanchunk=6, **IMAGING)
    original = execute.on_workers

    def kill_one_then_gather(client, workers, calls):
        pids = _worker_pids(client)
        os.kill(pids[workers[0]], signal.SIGKILL)
        return original(client, workers, calls)

    monkeypatch.setattr(execute, "on_workers", kill_one_then_gather)
    with cluster.connect(None, nworkers=2) as client:
        t0 = time.monotonic()
        pclean(vis=ms_lsrk, imagename=str(tmp_path / "killed"), cluster=client, niter=50,
               chanchunk=6, **IMAGING)
        assert time.monotonic() - t0 < 180
    from casatools import image

    for product in ("image", "residual", "model", "psf", "pb", "mask"):
        planes = []
        for name in ("calm", "killed"):
            ia = image()
            ia.open(str(tmp_path / f"{name}.{product}"))
            planes.append(ia.getchunk())
            ia.close()
        assert np.array_equal(planes[0], planes[1]), product


def test_workers_end_with_a_coordinator_killed_during_cluster_start(tmp_path):
    """SIGKILL the coordinator while its workers still import casatools: they end within
    the death timeout (10 s) and a few seconds, not minutes later."""
    import subprocess
    import sys

    import psutil

    script = tmp_path / "coordinator.py"
    script.write_text("import time\nfrom pclean.run import cluster\n"
                      "with cluster.connect(None, nworkers=2):\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        children = waits.until(lambda: len(psutil.Process(proc.pid).children()) == 2
                               and psutil.Process(proc.pid).children(), None, 60, interval=0.05)
    finally:
        proc.kill()
        proc.wait()
    t0 = time.monotonic()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"{len(alive)} workers still alive 30 s after their coordinator died"
    assert time.monotonic() - t0 < 25


def _listing(path) -> list[str]:
    return sorted(os.listdir(path))


def test_a_failed_gather_leaves_the_users_directory_as_it_was(ms_lsrk, tmp_path, monkeypatch):
    """Half the products written, then an I/O error: no product and no temporary appears in
    the user's directory; what was written is in the work directory's ``unfinished``."""
    from pclean.gather import execute

    original = execute.on_workers

    def fail_half_way(client, workers, calls):
        original(client, workers, calls[: len(calls) // 2])
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(execute, "on_workers", fail_half_way)
    (tmp_path / "user-file").write_text("mine")
    with pytest.raises(OSError, match="injected"):
        pclean(vis=ms_lsrk, imagename=str(tmp_path / "out"), cluster=None, nworkers=2,
               niter=20, chanchunk=6, **IMAGING)
    assert _listing(tmp_path) == ["out.pclean-work", "user-file"]
    unfinished = _listing(tmp_path / "out.pclean-work" / "unfinished")
    assert unfinished and all(name.startswith("out.") for name in unfinished)


def test_a_disk_that_fills_during_the_gather_is_named(ms_lsrk, tmp_path, monkeypatch, mounted):
    """A real full file system (a tmpfs filled as the gather starts): the error names the
    directory that filled, and the user's directory holds only what it held."""
    from pclean.gather import execute

    disk = Path(mounted("size=24m"))
    original = execute.on_workers

    def fill_then_gather(client, workers, calls):
        fill_disk(disk / "filler")
        return original(client, workers, calls)

    monkeypatch.setattr(execute, "on_workers", fill_then_gather)
    with pytest.raises(OSError, match=f"file system of {disk} is full"):
        pclean(vis=ms_lsrk, imagename=str(disk / "out"), workdir=str(tmp_path / "work"),
               cluster=None, nworkers=2, niter=20, chanchunk=6, **IMAGING)
    assert _listing(disk) == ["filler"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_coordinator_mid_run_stops_it_and_its_workers(ms_lsrk, tmp_path, sig):
    """Ctrl-C (SIGINT) and what scancel or a walltime send (SIGTERM), in a major cycle: the
    coordinator exits within seconds and no worker is left."""
    import subprocess
    import sys

    import psutil

    imagename = str(tmp_path / "sig")
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\nfrom pclean import pclean\n"
        f"pclean(vis={ms_lsrk!r}, imagename={imagename!r}, nworkers=2, niter=100000, "
        "cycleniter=5, threshold='0mJy', chanchunk=6, "
        + ", ".join(f"{k}={v!r}" for k, v in IMAGING.items()) + ")\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        ledger = imagename + ".pclean-work/ledger.jsonl"
        waits.until(lambda: os.path.exists(ledger) and "major_cycle" in open(ledger).read(),
                    None, 120, interval=0.1)
        children = psutil.Process(proc.pid).children(recursive=True)
        t0 = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        stopped = time.monotonic() - t0
    finally:
        proc.kill()
    _, alive = psutil.wait_procs(children, timeout=15)
    assert stopped < 5, f"the coordinator took {stopped:.1f} s to stop"
    assert not alive and proc.returncode != 0


def test_a_disk_that_fills_during_imaging_is_named(ms_lsrk, tmp_path, mounted):
    """The work directory's file system filled in the first minor cycle: the run ends with
    an error naming that directory (not CASA's table message), and nothing appears in the
    user's directory. Either way CASA fails: an error from the chunk's call, or a worker
    aborted by an uncaught AipsError (seen in CI; rebuilding it would only abort the next)."""
    disk = Path(mounted("size=32m"))
    workdir = disk / "work"
    ledger = workdir / "ledger.jsonl"

    def fill():
        waits.until(lambda: ledger.exists() and "minor_cycle" in ledger.read_text(), None,
                    120, interval=0.05)
        fill_disk(disk / "filler")

    filler = threading.Thread(target=fill, daemon=True)
    filler.start()
    t0 = time.monotonic()
    with pytest.raises(OSError) as info:
        pclean(vis=ms_lsrk, imagename=str(tmp_path / "out"), workdir=str(workdir),
               cluster=None, nworkers=2, **RUN, **IMAGING)
    filler.join(timeout=5)
    assert time.monotonic() - t0 < 120
    assert info.value.errno == 28 and str(disk) in str(info.value), info.value
    assert _listing(tmp_path) == [disk.name]
