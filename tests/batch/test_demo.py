"""``pclean demo`` as a new user sees it: the terminal output (no screenshot needed)."""
from __future__ import annotations

import os
import re
import subprocess
import sys


def test_the_demo_shows_its_point_on_this_machine(tmp_path):
    """The default demo: its directory printed, no SEVERE line, equal to serial tclean, a
    speed-up above 1 against serial tclean at CASA's default threading, a short summary and
    the comparison figure."""
    out = subprocess.run([sys.executable, "-m", "pclean.cli", "demo", "--workdir",
                          str(tmp_path)], capture_output=True, text=True, timeout=900,
                         cwd=str(tmp_path))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "SEVERE" not in text, text
    assert str(tmp_path) in out.stdout
    assert "equal to serial tclean within 1e-05 of each product's peak: yes" in out.stdout
    speedup = float(re.search(r"speed-up ([0-9.]+)x", out.stdout).group(1))
    assert speedup > 1.0, out.stdout
    assert len(out.stdout.splitlines()) <= 12, out.stdout  # a summary, not a table of zeros
    png = re.search(r"comparison: (\S+\.png)", out.stdout).group(1)
    assert os.path.getsize(png) > 0
