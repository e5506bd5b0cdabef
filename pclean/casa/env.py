"""Make casatools importable offline, the same way in the coordinator and in every worker.

Every pclean module gets casatools through :func:`tools` (``pclean.casa.tools``) (never ``import casatools`` at module
level), so that three things happen *before* the first import in each process:

* casaconfig is pointed at the measures data of the ``casadata`` package through a site config
  file (``CASASITECONFIG``), with auto-updates off: casatools otherwise tries to download
  measures at import and fails on machines with no internet. A user's own site config
  (``CASASITECONFIG``, ``/opt/casa/casasiteconfig.py``, an importable ``casasiteconfig``) is left
  alone, and ``~/.casa/config.py`` still overrides ours because casaconfig reads it last.
* the fracBW shim for ``briggsbwtaper`` is loaded (it only interposes if loaded before
  casatools' libraries; see ``patches/README.md``).
* in workers: OpenMP is pinned to one thread and the CASA log goes to a file of the worker's own
  (casatools otherwise opens ``casa-<timestamp>.log`` in the working directory, and processes
  started in the same second write into the same file).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from pathlib import Path

SITE_CONFIG_TEXT = """\
# Written by pclean: casatools offline, measures from the casadata package.
import os as _os
import casadata as _casadata
measurespath = _casadata.datapath
measures_auto_update = False
data_auto_update = False
if _os.environ.get("PCLEAN_CASA_LOGFILE"):
    logfile = _os.environ["PCLEAN_CASA_LOGFILE"]
"""

_STANDARD_SITE_CONFIGS = ("/opt/casa/casasiteconfig.py", "/home/casa/casasiteconfig.py")


def cache_dir() -> Path:
    root = os.environ.get("PCLEAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pclean")
    path = Path(root).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_site_config() -> str | None:
    """The site config casaconfig would use without us, or None."""
    if os.environ.get("CASASITECONFIG"):
        return os.environ["CASASITECONFIG"]
    for candidate in _STANDARD_SITE_CONFIGS:
        if os.path.isfile(candidate):
            return candidate
    if importlib.util.find_spec("casasiteconfig") is not None:
        return "casasiteconfig"
    return None


def _write_site_config() -> str:
    path = cache_dir() / "casasiteconfig.py"
    if not path.exists() or path.read_text() != SITE_CONFIG_TEXT:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(SITE_CONFIG_TEXT)
        tmp.replace(path)  # atomic: several workers may start at once
    return str(path)


def configure(logfile: str | None = None) -> None:
    """Arrange the environment for casatools; a no-op once casatools is imported."""
    if "casatools" in sys.modules:
        return
    if user_site_config() is None:
        os.environ["CASASITECONFIG"] = _write_site_config()
    if logfile:
        os.environ["PCLEAN_CASA_LOGFILE"] = str(logfile)
    from pclean.casa import fracbw

    fracbw.preload()


def tools():
    """The casatools module, configured, with CASA's log going where tclean's goes."""
    configure()
    import casatools

    casalog()
    return casatools


def _gomp():
    """The OpenMP runtime casatools' libraries use (bundled with the wheel), or None."""
    import ctypes
    import glob

    casatools = tools()
    libs = glob.glob(os.path.join(os.path.dirname(casatools.__file__), "__casac__", "lib",
                                  "libgomp.so*"))
    try:
        return ctypes.CDLL(libs[0] if libs else "libgomp.so.1")
    except OSError:
        return None


def omp_threads() -> int:
    """How many OpenMP threads CASA's code uses in this process (serial tclean's default here
    is what the user's environment gives: OMP_NUM_THREADS, else every core)."""
    gomp = _gomp()
    return int(gomp.omp_get_max_threads()) if gomp is not None else 1


@contextlib.contextmanager
def omp_threads_set(n: int | None):
    """Run CASA's code in this thread with ``n`` OpenMP threads (None: as it is), then as
    before."""
    gomp = _gomp() if n else None
    if gomp is None:
        yield
        return
    before = int(gomp.omp_get_max_threads())
    gomp.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        gomp.omp_set_num_threads(before)


def init_worker(logfile: str) -> None:
    """Called first thing in a worker process, before anything touches casatools."""
    os.environ["OMP_NUM_THREADS"] = "1"
    Path(logfile).parent.mkdir(parents=True, exist_ok=True)
    already = "casatools" in sys.modules
    configure(logfile)
    tools()
    if already or user_site_config() != str(cache_dir() / "casasiteconfig.py"):
        # our site config did not choose the log file: redirect the global sink now
        sink = casalog()
        sink.setlogfile(str(logfile))
        sink.setglobal(True)


_sink = None


def casalog():
    """The process's global CASA log sink, set up as ``import casatasks`` sets it up (and
    casatasks' own where it is imported): on casaconfig's ``logfile`` (``casa-<time>.log`` in
    the working directory unless configured) and made global, so that messages from casatools'
    C++ code go to that file too. Without it they go to the terminal: pclean does not import
    casatasks, which is what otherwise does this."""
    global _sink
    tasks = sys.modules.get("casatasks")
    if getattr(tasks, "casalog", None) is not None:
        # casatasks' own once it is imported: the sink made before it must not be used after
        # (see pclean.casa.helpers.imager_helpers)
        _sink = tasks.casalog
    elif _sink is None:
        configure()
        import casatools
        from casaconfig import config

        _sink = casatools.logsink(getattr(config, "logfile", None) or "")
        _sink.setglobal(True)
    return _sink


def log(message: str, priority: str = "INFO") -> None:
    casalog().post(message, priority, "pclean")
