"""What the plan knows about CASA's cube deconvolvers."""
from __future__ import annotations

import numpy as np

# CASA quirk: with these deconvolvers serial tclean's results depend on its number of OpenMP
# threads (measured, serial at 1 and 2 threads on the same data: clark residual 3.4e-6 of peak
# apart, mem model 6.3e-6; hogbom and multiscale bitwise equal), through the major cycles (a
# chunk's major cycles at 1 thread and everything else at 2 left 1.7e-5 of a deep residual's peak;
# its minor cycles at 1 thread, nothing). Chunks run their cycles with the threads serial tclean
# would have here, and are then bitwise equal to it.
THREAD_SENSITIVE = ("clark", "clarkstokes", "mem")


# Deconvolvers that do nothing in a channel entered with its peak below the cycle threshold
# (measured, fuzz seed 1132: hogbom equal with nsigma; multiscale and clark not; see
# refusals.check_grid), so the n-sigma threshold a chunk carries between channels cannot change
# their cube.
NSIGMA_SAFE = ("hogbom",)


def minor_block(imsize) -> int:
    """Channels per minor-cycle block of a cube deconvolver (SynthesisDeconvolver::
    numblockchans: max(10, 8e6 / pixels per plane)); the minor-cycle summary numbers channels
    and counts iterations per block."""
    nx, ny = (list(np.atleast_1d(imsize)) * 2)[:2]
    return int(max(10, 8e6 / (int(nx) * int(ny))))
