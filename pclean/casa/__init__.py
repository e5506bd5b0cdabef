"""casatools, offline and configured the same way in every process (``env``); what pclean
takes from casatasks without importing it (``helpers``); the fracBW shim loader (``fracbw``).

Every pclean module gets casatools through :func:`tools`, never ``import casatools``."""
from pclean.casa.env import (cache_dir, casalog, configure, init_worker, log, omp_threads,
                             omp_threads_set, tools, user_site_config)

__all__ = ["cache_dir", "casalog", "configure", "init_worker", "log", "omp_threads",
           "omp_threads_set", "tools", "user_site_config"]
