"""Shared test fixtures: simulated MSs, one 2-worker Dask cluster, serial tclean references.

Every parity test runs serial tclean the way a user calls it and pclean with 2 worker processes,
and compares every channel of every product numerically (``assert_cube_equal``).
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

if os.environ.get("PCLEAN_TESTS_WITHOUT_CASA"):
    # tests/unit/test_layout.py: prove the unit tests need no CASA (an import of either fails)
    import sys

    sys.modules["casatools"] = None
    sys.modules["casatasks"] = None

# CASA's log for the test process goes to a temporary file, not the repository
os.environ.setdefault("PCLEAN_CASA_LOGFILE",
                      os.path.join(tempfile.gettempdir(), f"pclean-tests-{os.getpid()}.log"))

from pclean.sim.simulate import SimSpec, simulate  # noqa: E402

IMAGING = dict(specmode="cube", imsize=64, cell="12arcsec", pblimit=0.2)


@pytest.fixture(scope="session", autouse=True)
def _work_in_a_temporary_directory(tmp_path_factory):
    """Serial tclean writes scratch tables (IMAGING_WEIGHT_*, TempLattice*) into the current
    directory: not into the repository."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(before)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def ms_lsrk(data_dir):
    # 12 channels of 12.5 MHz from 1.0 GHz: fracBW 0.13
    return simulate(str(data_dir / "lsrk.ms"), SimSpec(nchan=12, frame="LSRK"))


@pytest.fixture(scope="session")
def ms_topo(data_dir):
    return simulate(str(data_dir / "topo.ms"), SimSpec(nchan=12, frame="TOPO"))


@pytest.fixture(scope="session")
def ms_alma(data_dir):
    # a compact ALMA configuration at 100 GHz, sources inside its 60" primary beam
    spec = SimSpec(nchan=10, freq_start_hz=100e9, chan_width_hz=4e6, config="alma.cycle10.1.cfg",
                   direction=("J2000", "12h00m00s", "-23d00m00s"), hours=0.5,
                   integration_s=60.0, sources=[(0.0, 0.0, 1.0, 0.0), (6.0, -4.0, 0.5, 1.0),
                                                (-8.0, 3.0, 0.3, -1.0)])
    return simulate(str(data_dir / "alma.ms"), spec)


@pytest.fixture(scope="session")
def client():
    from pclean.run import cluster

    with cluster.connect(None, nworkers=2) as c:
        yield c


# an address nothing listens on: a call validation let through would fail differently there
# (or hang), so tests calling with it also prove no worker or cluster is contacted
NOWHERE = "tcp://127.0.0.1:9"


def call_nowhere(ms, tmp_path, **kw):
    """pclean on a small cube of ``ms`` at NOWHERE, ``kw`` overriding."""
    from pclean import pclean

    params = dict(vis=ms, imagename=str(tmp_path / "out"), specmode="cube", imsize=32,
                  cell="12arcsec", cluster=NOWHERE)
    params.update(kw)
    return pclean(**params)


@pytest.fixture
def mounted(tmp_path):
    """mounted(options) -> a fresh tmpfs directory (skips where mounting is not permitted)."""
    made = []

    def mount(options: str) -> str:
        path = tmp_path / f"fs{len(made)}"
        path.mkdir()
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
        made.append(path)
        return str(path)

    yield mount
    for path in made:
        subprocess.run(["umount", str(path)], capture_output=True)


def fill_disk(path) -> None:
    """Write zeros to ``path`` until its file system is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 2**20)
                f.flush()
        except OSError:
            pass


_serial_cache = {}


@pytest.fixture(scope="session")
def serial(tmp_path_factory):
    """serial(vis, **params) -> (prefix, summary) of a serial tclean run in a fresh process
    (cached per parameter set)."""

    def run(vis, **params):
        key = (repr(vis), repr(sorted(params.items())))
        if key not in _serial_cache:
            prefix = str(tmp_path_factory.mktemp("tclean") / "ref")
            _serial_cache[key] = (prefix, run_serial(vis, prefix, params))
        return _serial_cache[key]

    return run




from oracle import run_serial  # noqa: E402  (after the CASA environment above is set)


def stop_at(monkeypatch, kind: str, step: str, nth: int) -> None:
    """Ctrl-C (a KeyboardInterrupt on the coordinator) at the ``nth`` event ``kind`` of the
    stretches with ``step``: a ChunkDone is a chunk's part of a stretch, the others' still
    running."""
    from pclean.run import events

    seen = {"in": False, "n": 0}
    original = events.ProgressLog.notify

    def notify(self, event):
        if isinstance(event, events.StretchStarted):
            seen["in"] = step in event.steps
        if seen["in"] and type(event).__name__ == kind:
            seen["n"] += 1
            if seen["n"] == nth:
                raise KeyboardInterrupt("stopped by the test")
        return original(self, event)

    monkeypatch.setattr(events.ProgressLog, "notify", notify)
