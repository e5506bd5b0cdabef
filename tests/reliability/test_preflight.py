"""What a run needs is checked before any worker starts (``params.resources``): disk, writable
directories, worker counts, SLURM's sbatch, quantities; and the serial fallback overwrites
nothing. Every call here points at an address nothing listens on: a check that let the call
through would fail differently (or hang)."""
from __future__ import annotations

import os
import time

import pytest

from conftest import call_nowhere
from pclean import ParameterError, pclean

call = call_nowhere


@pytest.mark.parametrize("kw, message", [
    (dict(threshold="abc"), "threshold: 'abc' is not a flux density"),
    (dict(threshold="3arcsec"), "threshold: '3arcsec' is not a flux density"),
    (dict(restoringbeam="abc"), "restoringbeam: 'abc' is not angles"),
    (dict(restoringbeam=["1arcsec", "1arcsec", "1Jy"]), "restoringbeam: '1Jy'"),
    (dict(restfreq="abc"), "restfreq: 'abc' is not frequencies"),
    (dict(cell="abc"), "cell: 'abc' is not a positive angle"),
    (dict(worker_memory="lots"), "worker_memory must be a size"),
    (dict(cluster=None, nworkers=1000), "nworkers: 1000 workers for the embedded cluster"),
    (dict(cluster_timeout=-1), "cluster_timeout must be a positive number"),
])
def test_every_quantity_and_resource_is_checked_by_name(ms_lsrk, tmp_path, kw, message):
    with pytest.raises(ParameterError, match=message):
        call(ms_lsrk, tmp_path, **kw)
    assert not os.path.exists(str(tmp_path / "out.pclean-work"))


def test_valid_quantities_pass(ms_lsrk, tmp_path):
    """The forms tclean takes pass the checks (the call then fails only at the address)."""
    with pytest.raises(OSError):
        call(ms_lsrk, tmp_path, threshold="0.1mJy", restoringbeam=["2arcsec", "1arcsec", "5deg"],
             restfreq=["1.42GHz"], worker_memory="2GiB", cluster_timeout=2)


def test_slurm_without_sbatch_is_refused_up_front(ms_lsrk, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: no sbatch
    t0 = time.monotonic()
    with pytest.raises(ParameterError, match="sbatch is not on PATH"):
        call(ms_lsrk, tmp_path, cluster="slurm", nworkers=1)
    assert time.monotonic() - t0 < 30


def test_a_cube_larger_than_the_free_disk_is_refused_with_both_figures(ms_lsrk, tmp_path,
                                                                        mounted):
    small = mounted("size=16m")
    with pytest.raises(ParameterError, match=r"workdir and imagename: this cube needs at least "
                                             r"[0-9.]+ GiB .* [0-9.]+ GiB are free"):
        call(ms_lsrk, tmp_path, imagename=os.path.join(small, "big"), imsize=2000, niter=10)
    assert os.listdir(small) == []
    # the work directory alone on the small file system: named alone
    with pytest.raises(ParameterError, match=r"workdir: this cube needs"):
        call(ms_lsrk, tmp_path, workdir=os.path.join(small, "work"), imsize=2000, niter=10)


def test_a_read_only_directory_is_refused_up_front(ms_lsrk, tmp_path, mounted):
    readonly = mounted("ro,size=1m")
    with pytest.raises(ParameterError, match=f"imagename: directory {readonly} is not writable"):
        call(ms_lsrk, tmp_path, imagename=os.path.join(readonly, "out"))
    with pytest.raises(ParameterError, match=f"workdir: directory {readonly} is not writable"):
        call(ms_lsrk, tmp_path, workdir=os.path.join(readonly, "work"))


def test_the_serial_fallback_overwrites_nothing(ms_lsrk, tmp_path):
    """specmode='mfs' runs serial tclean: an existing image of that name is refused, and left
    byte-identical."""
    existing = tmp_path / "out.image"
    existing.mkdir()
    (existing / "table.dat").write_bytes(b"user's image")
    with pytest.raises(ParameterError, match="out.image"):
        call(ms_lsrk, tmp_path, specmode="mfs", cluster=None)
    assert (existing / "table.dat").read_bytes() == b"user's image"
    assert sorted(os.listdir(tmp_path)) == ["out.image"]


def test_a_call_that_is_not_a_cube_says_so_on_the_terminal(ms_lsrk, tmp_path):
    """Forgetting specmode='cube' (tclean's default is 'mfs') runs serial tclean: a warning
    says so and why, not only a line in the CASA log."""
    from pclean.api import SerialFallback

    with pytest.warns(SerialFallback, match="specmode='mfs' is not a cube .* serial tclean"):
        pclean(vis=ms_lsrk, imagename=str(tmp_path / "mfs"), imsize=32, cell="12arcsec",
               niter=0)
    assert os.path.isdir(str(tmp_path / "mfs.psf"))
