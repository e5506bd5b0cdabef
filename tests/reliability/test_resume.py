"""An interrupted run continues: the same call again (Python or the command line) takes the
work directory's plan and checkpoints and goes on from the last completed stretch, saying so;
the cube and the return dict are bit-identical to an undisturbed run's. Another call against
that directory is refused, naming what differs, before any worker starts; a gather that failed
is done again alone."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import NOWHERE, fill_disk, stop_at
from pclean import ParameterError, pclean
from pclean.params import resume
from pclean.run import chunkset, waits

IMAGING = dict(specmode="cube", imsize=48, cell="12arcsec", pblimit=0.2)
# 12 channels in 3 chunks, several minor and major cycles
RUN = dict(niter=300, cycleniter=5, threshold="0mJy", chanchunk=4, **IMAGING)
PRODUCTS = ("image", "residual", "model", "psf", "pb", "mask", "sumwt")


def _products(prefix: str) -> dict:
    from casatools import image

    out = {}
    for product in PRODUCTS:
        ia = image()
        ia.open(f"{prefix}.{product}")
        misc = {k: v for k, v in ia.miscinfo().items() if k != "memavail"}  # the machine's now
        out[product] = (ia.getchunk(), ia.restoringbeam(), misc)
        ia.close()
    return out


def _assert_same_run(prefix: str, result: dict, undisturbed) -> None:
    want, want_result = undisturbed
    got = _products(prefix)
    for product, (pixels, beams, misc) in want.items():
        assert np.array_equal(got[product][0], pixels), product
        assert got[product][1] == beams, product
        assert got[product][2] == misc, product
    for key in ("iterdone", "nmajordone", "stopcode", "summaryminor", "summarymajor"):
        assert repr(result[key]) == repr(want_result[key]), key
    assert not [n for n in os.listdir(os.path.dirname(prefix)) if n.startswith(".")]
    assert f"{os.path.basename(prefix)}.image" in os.listdir(os.path.dirname(prefix))


@pytest.fixture(scope="module")
def undisturbed(ms_lsrk, tmp_path_factory, client):
    prefix = str(tmp_path_factory.mktemp("calm") / "calm")
    result = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN)
    assert result["nmajordone"] >= 4  # enough cycles to stop inside
    return _products(prefix), result


def _ledger(prefix: str) -> list[dict]:
    with open(prefix + ".pclean-work/ledger.jsonl") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("kind,step,nth", [
    ("ChunkDone", "make_psf", 2),  # in the first stretch: the chunks start again
    ("ChunkDone", "minor_cycle", 5),  # one chunk's minor cycle done, the others' not
    ("ChunkDone", "major_cycle", 8),
    ("StretchEnded", "minor_cycle", 2),  # between stretches
    ("ChunkDone", "restore", 1),  # in the last stretch
])
def test_an_interrupted_run_continues_bit_identical(ms_lsrk, tmp_path, client, undisturbed,
                                                    monkeypatch, capsys, kind, step, nth):
    prefix = str(tmp_path / "cut")
    with monkeypatch.context() as m:
        stop_at(m, kind, step, nth)
        with pytest.raises(KeyboardInterrupt):
            pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN)
    assert sorted(os.listdir(tmp_path)) == ["cut.pclean-work"]  # no product yet
    capsys.readouterr()
    # keep_chunks only says what to keep afterwards (the ledger, read below): the same call
    result = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, keep_chunks=True, **RUN)
    said = capsys.readouterr().err
    assert "pclean: continuing the interrupted run in " + prefix + ".pclean-work" in said
    _assert_same_run(prefix, result, undisturbed)
    resumed = [e for e in _ledger(prefix) if e["event"] == "Resumed"]
    assert len(resumed) == 1


CLARK = dict(RUN, deconvolver="clark", cycleniter=8, mask="circle[[24pix,24pix],8pix]",
             pbcor=True)


def test_clark_with_a_mask_continues_with_bit_identical_images(ms_lsrk, tmp_path, client,
                                                                monkeypatch):
    """Clark with a user mask and pbcor, stopped in a minor cycle one chunk had finished. The
    images are bit-identical; CASA quirk: clark's peak residual at the end of the cycle a chunk
    does again with fresh tools may differ in float32's last bit (measured 0.37248808 against
    0.37248805 in one of 48 minor-cycle summary entries: its residual update's FFTs, not
    reproducible across processes), so the minor-cycle summary is compared to 1e-6."""
    calm, prefix = str(tmp_path / "calm"), str(tmp_path / "cut")
    want_result = pclean(vis=ms_lsrk, imagename=calm, cluster=client, **CLARK)
    with monkeypatch.context() as m:
        stop_at(m, "ChunkDone", "minor_cycle", 5)
        with pytest.raises(KeyboardInterrupt):
            pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **CLARK)
    result = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **CLARK)
    want, got = _products(calm), _products(prefix)
    for product, (pixels, beams, misc) in want.items():
        assert np.array_equal(got[product][0], pixels), product
        assert got[product][1:] == (beams, misc), product
    for key in ("iterdone", "nmajordone", "stopcode", "summarymajor"):
        assert repr(result[key]) == repr(want_result[key]), key
    rows = {0: want_result["summaryminor"][0]}
    for chan, stokes in rows[0].items():
        for pol, record in stokes.items():
            for row, values in record.items():
                np.testing.assert_allclose(result["summaryminor"][0][chan][pol][row], values,
                                           rtol=1e-6, err_msg=f"{chan} {pol} {row}")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_same_command_continues_after_a_signal(ms_lsrk, tmp_path, undisturbed, sig, code):
    """Ctrl-C, or what scancel or a walltime send, mid-run: exit 130 or 143 with the work
    directory kept; the same command again continues it (exit 0), bit-identical."""
    prefix = str(tmp_path / "cli")
    argv = [sys.executable, "-m", "pclean.cli", "run", "--vis", ms_lsrk, "--imagename", prefix,
            "--nworkers", "2", "--progress", "false"]
    for key, value in RUN.items():
        argv += [f"--{key}", str(value)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=str(tmp_path))
    try:
        ledger = prefix + ".pclean-work/ledger.jsonl"
        waits.until(lambda: os.path.exists(ledger) and open(ledger).read().count(
            '"minor_cycle"') >= 4, None, 180, interval=0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err[-2000:]
    assert "continues when the same command is given again" in err
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "continuing the interrupted run" in again.stderr
    result = json.loads(again.stdout)
    want, want_result = undisturbed
    got = _products(prefix)
    for product, (pixels, beams, _misc) in want.items():
        assert np.array_equal(got[product][0], pixels), product
        assert got[product][1] == beams, product
    for key in ("iterdone", "nmajordone", "stopDescription"):
        assert result[key] == want_result[key], key


def test_a_run_stopped_by_a_full_disk_continues_once_there_is_space(ms_lsrk, tmp_path,
                                                                    undisturbed, mounted):
    """The work directory's file system fills as the second minor cycle starts: the run ends
    naming it, keeping what can be resumed; space freed, the same call continues, and the
    cube is bit-identical to an undisturbed run's."""
    import threading

    disk = mounted("size=32m")
    workdir = os.path.join(disk, "work")
    ledger = os.path.join(workdir, "ledger.jsonl")
    filler = os.path.join(disk, "filler")

    def fill():
        waits.until(lambda: os.path.exists(ledger) and open(ledger).read().count(
            '"StretchStarted", "steps": ["minor_cycle"]') >= 2, None, 120, interval=0.02)
        fill_disk(filler)

    thread = threading.Thread(target=fill, daemon=True)
    thread.start()
    prefix = str(tmp_path / "cut")
    with pytest.raises(OSError) as info:
        pclean(vis=ms_lsrk, imagename=prefix, workdir=workdir, nworkers=2, **RUN)
    thread.join(timeout=5)
    assert info.value.errno == 28 and disk in str(info.value), info.value
    os.remove(filler)
    result = pclean(vis=ms_lsrk, imagename=prefix, workdir=workdir, nworkers=2, **RUN)
    _assert_same_run(prefix, result, undisturbed)


def test_a_chunk_killed_while_making_its_gridded_model_continues(ms_lsrk, tmp_path, client,
                                                                  undisturbed, monkeypatch):
    """A chunk with halo channels stopped in a major cycle, its gridded sub-cube's model left
    as a worker killed while creating it leaves it (no table.dat): the same call continues,
    bit-identical (that model is made again; it was what failed a rebuilt SLURM chunk)."""
    prefix = str(tmp_path / "cut")
    with monkeypatch.context() as m:
        stop_at(m, "ChunkDone", "major_cycle", 5)  # in the second major cycle's stretch
        with pytest.raises(KeyboardInterrupt):
            pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN)
    grid_model = os.path.join(prefix + ".pclean-work", "chunk-0001", "chunk-0001-grid.model")
    assert os.path.isdir(grid_model)
    os.remove(os.path.join(grid_model, "table.dat"))
    result = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN)
    _assert_same_run(prefix, result, undisturbed)


@pytest.fixture
def interrupted(ms_lsrk, tmp_path, client, monkeypatch):
    """A run stopped in its second minor cycle: its prefix."""
    prefix = str(tmp_path / "cut")
    with monkeypatch.context() as m:
        stop_at(m, "ChunkDone", "minor_cycle", 4)
        with pytest.raises(KeyboardInterrupt):
            pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN)
    return prefix


def test_another_call_against_the_work_directory_is_refused_naming_what_differs(
        ms_lsrk, interrupted):
    """Refused before any worker starts (the cluster is an address nothing listens on), the
    checkpoints untouched."""
    log = interrupted + ".pclean-work/stretches.jsonl"
    before = open(log).read()
    with pytest.raises(ParameterError, match=r"another call \(niter=300 then, 301 now; "
                                             r"threshold='0mJy' then, '1mJy' now\)"):
        pclean(vis=ms_lsrk, imagename=interrupted, cluster=NOWHERE,
               **dict(RUN, niter=301, threshold="1mJy"))
    # the data changed since: a file of the MS rewritten (its time restored after)
    table = os.path.join(ms_lsrk, "table.dat")
    st = os.stat(table)
    try:
        os.utime(table, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        with pytest.raises(ParameterError, match=f"the MeasurementSet {ms_lsrk} has changed"):
            pclean(vis=ms_lsrk, imagename=interrupted, cluster=NOWHERE, **RUN)
    finally:
        os.utime(table, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert open(log).read() == before


def test_a_directory_an_earlier_runs_workers_still_hold_is_waited_for_then_refused(
        ms_lsrk, interrupted, monkeypatch):
    """A worker of the stopped run still alive (its coordinator killed outright): the same call
    waits for it (LOCK_WAIT_S), then says the directory is in use, before any worker starts."""
    fd = resume.hold_shared(interrupted + ".pclean-work")  # as a chunk actor holds it
    monkeypatch.setattr(resume, "LOCK_WAIT_S", 1.0)
    t0 = time.monotonic()
    try:
        with pytest.raises(ParameterError, match="is in use by another pclean run or its "
                                                 "workers"):
            pclean(vis=ms_lsrk, imagename=interrupted, cluster=NOWHERE, **RUN)
    finally:
        os.close(fd)
    assert 1.0 <= time.monotonic() - t0 < 10


@pytest.mark.parametrize("killed", [False, True])
def test_a_failed_gather_is_done_again_alone(ms_lsrk, tmp_path, client, undisturbed,
                                             monkeypatch, capsys, killed):
    """The gather fails half-way (an I/O error; or the coordinator is killed there, leaving
    its temporaries in the user's directory): the same call gathers again without starting a
    chunk, bit-identical."""
    from pclean.gather import execute, staging

    prefix = str(tmp_path / "cut")
    original = execute.on_workers

    def fail_half_way(client, workers, calls):
        original(client, workers, calls[: len(calls) // 2])
        raise OSError(5, "Input/output error (injected)")

    with monkeypatch.context() as m:
        m.setattr(execute, "on_workers", fail_half_way)
        if killed:  # nothing is undone
            m.setattr(staging.Staging, "abort", lambda self: None)
        with pytest.raises(OSError, match="injected"):
            pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN)
    hidden = [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert bool(hidden) == killed

    def no_chunk(self):
        raise AssertionError("a chunk was started to resume a gather")

    monkeypatch.setattr(chunkset.DaskChunkSet, "_start", no_chunk)
    capsys.readouterr()
    result = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN)
    assert "imaging complete" in capsys.readouterr().err
    _assert_same_run(prefix, result, undisturbed)


def test_a_run_stopped_before_its_chunks_were_planned_continues(ms_lsrk, tmp_path, client,
                                                                undisturbed, monkeypatch):
    """Stopped as its cluster started (the plan kept, no chunks yet): the same call plans its
    chunks and images, reusing the cube-wide values."""
    from pclean.params import cubewide
    from pclean.run import cluster as cluster_module

    prefix = str(tmp_path / "cut")

    def stop(*args, **kwargs):
        raise KeyboardInterrupt("stopped by the test")

    with monkeypatch.context() as m:
        m.setattr(cluster_module, "worker_addresses", stop)
        with pytest.raises(KeyboardInterrupt):
            pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN)
    assert os.path.exists(prefix + ".pclean-work/plan.pickle")

    def computed_again(*args, **kwargs):
        raise AssertionError("cube-wide values computed again")

    monkeypatch.setattr(cubewide, "compute", computed_again)
    result = pclean(vis=ms_lsrk, imagename=prefix, cluster=client, **RUN)
    _assert_same_run(prefix, result, undisturbed)


def test_a_directory_pclean_did_not_make_is_refused_untouched(ms_lsrk, tmp_path, client):
    """A workdir that is not a pclean run's is refused as it is; one a run left while it
    was still planning (its lock, nothing planned) is planned again."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(ParameterError, match="is not an interrupted pclean run"):
        pclean(vis=ms_lsrk, imagename=str(tmp_path / "a"), workdir=str(mine), cluster=NOWHERE,
               **RUN)
    assert sorted(os.listdir(mine)) == ["notes.txt"]
    planning = tmp_path / "b.pclean-work"
    planning.mkdir()
    (planning / "lock").write_text("")
    (planning / "density").mkdir()  # half-made cube-wide values
    result = pclean(vis=ms_lsrk, imagename=str(tmp_path / "b"), cluster=client,
                    **dict(RUN, niter=0))
    assert result["pclean"]["nchunks"] == 3 and not planning.exists()
