"""The embedded cluster as a user meets it: quiet, and out of the way of their own Dask."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from pclean import pclean
pclean(vis=sys.argv[1], imagename=sys.argv[2], specmode="cube", imsize=32, cell="12arcsec",
       niter=20, nworkers=2)
print("finished")
"""


def test_a_run_is_as_quiet_as_tclean(ms_lsrk, tmp_path):
    """Dask logs about 60 INFO lines per run (and a harmless CommClosedError traceback at
    shutdown); a tclean user sees none of them. CASA's messages go where tclean's go: to
    casaconfig's log file (casa-<time>.log in the working directory), not the terminal."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PCLEAN_CASA_LOGFILE"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, ms_lsrk, str(tmp_path / "q")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("finished")
    lines = (out.stdout + out.stderr).splitlines()
    noisy = [line for line in lines
             if "distributed." in line or "Traceback" in line or "\tINFO\t" in line]
    assert not noisy, noisy
    logs = list(tmp_path.glob("casa-*.log"))
    assert len(logs) == 1, logs
    text = logs[0].read_text()
    assert "SynthesisImagerVi2::defineImage" in text  # casatools' C++ messages
    assert "pclean timings" in text  # and pclean's own


def test_dask_logs_come_back_when_asked_for(ms_lsrk, tmp_path):
    import os

    env = dict(os.environ, DASK_LOGGING__DISTRIBUTED="info")
    out = subprocess.run([sys.executable, "-c", SCRIPT, ms_lsrk, str(tmp_path / "v")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "distributed.scheduler - INFO" in out.stderr
    assert "distributed.worker - INFO" in out.stderr
