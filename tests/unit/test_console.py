"""CASA's known-harmless offline warnings are kept off the terminal; nothing else is."""
from __future__ import annotations

import subprocess
import sys

LEAP = ("2026-12-01 18:00:55\tSEVERE\tMeasTable::dUTC(Double) (file /source/casa6/casatools/"
        "casacore/measures/Measures/MeasTable.cc, line 4290)\tLeap second table TAI_UTC seems "
        "out-of-date.")
CONTINUED = LEAP.replace(")\tLeap second", ")+\tUntil the table is updated")
REAL = "2026-12-01 18:00:55\tSEVERE\tSynthesisImager::makePSF\tsomething real went wrong"


def test_only_the_known_lines_are_dropped_from_this_process_and_its_children():
    script = (
        "import subprocess, sys\n"
        "from pclean.casa import console\n"
        "with console.filtered_stderr():\n"
        f"    print({LEAP!r}, file=sys.stderr, flush=True)\n"
        f"    print({REAL!r}, file=sys.stderr, flush=True)\n"
        "    subprocess.run([sys.executable, '-c', 'import sys; print(%r, file=sys.stderr); "
        "print(%r, file=sys.stderr)' % (" + repr(CONTINUED) + ", 'child says hello')])\n"
        "print('after', file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [REAL, "child says hello", "after"]
