"""CASA's known-harmless offline warnings kept off the terminal (they stay in the CASA log).

casacore echoes every WARN and SEVERE message to stderr from C++. On an offline machine whose
casadata tables are over a year old, every process that converts a time prints three SEVERE
lines "Leap second table TAI_UTC seems out-of-date ..." (measured: the demo printed them
three times: the simulation, serial tclean, the coordinator), though no leap second has been
added since 2017, and the simulator warns "componentlist closed". ``filtered_stderr`` passes
stderr (of this process and the processes it starts) through a thread that drops exactly
those lines and their continuation lines; everything else reaches the terminal unchanged.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

HARMLESS = (re.compile(r"\tSEVERE\t.*MeasTable::dUTC\(Double\)"),
            re.compile(r"\tWARN\t.*componentlist::close\tcomponentlist closed"))


def harmless(line: str) -> bool:
    return any(p.search(line) for p in HARMLESS)


@contextlib.contextmanager
def filtered_stderr():
    """While inside, file descriptor 2 goes through the filter to the original stderr."""
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as src, os.fdopen(os.dup(original), "wb") as dst:
            for line in src:
                if not harmless(line.decode(errors="replace")):
                    dst.write(line)
                    dst.flush()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last writer in this process
        os.close(original)
        thread.join(timeout=5)
