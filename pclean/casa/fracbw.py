"""Full-cube fracBW for briggsbwtaper in channel-parallel imaging (see patches/README.md).

CASA's briggsbwtaper tapers the weights by the fractional bandwidth of the cube being imaged,
2(fmax-fmin)/(fmax+fmin), and computes it from the image it is given. A worker imaging a
sub-cube therefore gets the wrong value (and a 1-channel chunk gets 0 and an exception). Two ways
to hand CASA the full-cube value:

* a casatools rebuilt with ``patches/casatools-setweighting-fracbw.patch``: ``setweighting``
  accepts ``fracbw`` and the caller passes it directly;
* stock casatools: the C shim ``pclean/casa/_fracbw_shim*.so`` (built from ``patches/fracbw_shim.c``)
  interposes CASA's ``BriggsCubeWeightor`` constructor and substitutes the value given to
  :func:`set_value`. It only works if it is loaded (RTLD_GLOBAL) before casatools in the process,
  which :func:`pclean.casa.env.configure` arranges by calling :func:`preload`; its substitution
  counter proves after ``makepsf`` that it took effect (:func:`check_applied`).

Interface used by the rest of pclean:
  preload()                 load the shim with RTLD_GLOBAL; called before casatools is imported
  require(setweighting)     raise a clear error if briggsbwtaper cannot be made exact here
  set_value(v)              the full-cube fracBW the shim substitutes (0 = pass CASA's through)
  substitutions() -> int    how many BriggsCubeWeightor constructions the shim has rewritten
  check_applied(before, value, setweighting) -> int
                            after makepsf: verify the value reached CASA, else raise
  last_casa_value() -> float  the fracBW CASA itself computed at the last construction
"""
from __future__ import annotations

import ctypes
import glob
import importlib.machinery
import inspect
import math
import os
import sys
import threading

CASA_SYNTHESIS_LIB = "libcasacpp_synthesis.so.6"
# casa::refim::BriggsCubeWeightor::BriggsCubeWeightor(casacore::String const&,
#     casacore::Quantum<double> const&, double, double const&, int, bool)
CTOR_SYMBOL = "_ZN4casa5refim18BriggsCubeWeightorC1ERKN8casacore6StringERKNS2_7QuantumIdEEdRKdib"

_BUILD_HINT = ("build it with a C compiler: `python setup.py build_ext --inplace` in the pclean "
               "source tree (needs gcc), or reinstall pclean with gcc available")

_lock = threading.Lock()
_state = {
    "attempted": False,   # preload() has run in this process
    "lib": None,          # the loaded ctypes.CDLL
    "path": None,         # its file
    "too_late": False,    # loaded after CASA's synthesis library: no interposition
    "reason": None,       # why the shim is unusable (not built, failed to load, too late)
}


# ---------------------------------------------------------------------------------------------
# loading

def shim_path() -> str | None:
    """The built shim next to this file, or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = os.path.join(here, "_fracbw_shim" + suffix)
        if os.path.isfile(candidate):
            return candidate
    found = sorted(glob.glob(os.path.join(here, "_fracbw_shim*.so")))
    return found[0] if found else None


def _casa_synthesis_loaded() -> bool:
    try:
        ctypes.CDLL(CASA_SYNTHESIS_LIB, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        return True
    except OSError:
        return False


def preload() -> None:
    """Load the shim with RTLD_GLOBAL, once per process. Never raises (see :func:`require`)."""
    with _lock:
        if _state["attempted"]:
            return
        _state["attempted"] = True
        try:
            casatools_first = "casatools" in sys.modules or _casa_synthesis_loaded()
            path = shim_path()
            if path is None:
                _state["reason"] = ("the fracBW shim pclean/casa/_fracbw_shim*.so is not built; "
                                    + _BUILD_HINT)
                return
            lib = ctypes.CDLL(path, mode=os.RTLD_GLOBAL | os.RTLD_NOW)
            lib.pclean_fracbw_set.argtypes = [ctypes.c_double]
            lib.pclean_fracbw_set.restype = None
            lib.pclean_fracbw_get.restype = ctypes.c_double
            lib.pclean_fracbw_substitutions.restype = ctypes.c_long
            lib.pclean_fracbw_calls.restype = ctypes.c_long
            lib.pclean_fracbw_last_casa_value.restype = ctypes.c_double
            lib.pclean_fracbw_loaded_after_casa.restype = ctypes.c_int
            _state["lib"], _state["path"] = lib, path
            # The shim records at its own load time whether CASA's library was already there;
            # that is exact (and right for LD_PRELOAD, where the shim predates this call).
            late = lib.pclean_fracbw_loaded_after_casa()
            too_late = bool(late) if late in (0, 1) else casatools_first
            if too_late:
                _state["too_late"] = True
                _state["reason"] = (
                    "the fracBW shim was loaded after casatools in this process (pid "
                    f"{os.getpid()}), so CASA's calls are already bound to the real "
                    "BriggsCubeWeightor; import casatools only through pclean.casa.tools() "
                    f"(which loads the shim first) or start the process with LD_PRELOAD={path}")
        except Exception as exc:  # never raise from here: require() reports it
            _state["reason"] = f"loading the fracBW shim failed: {exc!r}"


def loaded() -> bool:
    return _state["lib"] is not None


def loaded_too_late() -> bool:
    return bool(_state["too_late"])


# ---------------------------------------------------------------------------------------------
# a casatools rebuilt with patches/casatools-setweighting-fracbw.patch

def accepts_fracbw(func) -> bool:
    try:
        return "fracbw" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# checks

def _ctor_symbol_present() -> tuple[bool, str]:
    """Whether CASA's synthesis library (loaded with casatools) exports the constructor the
    shim interposes."""
    try:
        lib = ctypes.CDLL(CASA_SYNTHESIS_LIB, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return False, f"{CASA_SYNTHESIS_LIB} is not loaded with this casatools"
    try:
        getattr(lib, CTOR_SYMBOL)  # dlsym on CASA's own handle: finds CASA's definition
        return True, CASA_SYNTHESIS_LIB
    except AttributeError:
        return False, f"{CASA_SYNTHESIS_LIB} does not export {CTOR_SYMBOL}"


def require(setweighting) -> None:
    """Raise RuntimeError unless briggsbwtaper can get the full-cube fracBW in this process;
    ``setweighting``: casatools' ``synthesisimager.setweighting`` (imported through
    :func:`pclean.casa.tools`, which loads the shim first)."""
    if accepts_fracbw(setweighting):
        return  # rebuilt casatools: fracbw goes to setweighting directly, no shim needed
    head = ("weighting='briggsbwtaper' with a parallel cube needs the full-cube fractional "
            "bandwidth, and stock casatools' setweighting has no fracbw argument: ")
    if _state["lib"] is None:
        raise RuntimeError(head + (_state["reason"] or "the fracBW shim is not loaded") +
                           ". Alternatives: casatools rebuilt with "
                           "patches/casatools-setweighting-fracbw.patch, or weighting='briggs'.")
    if _state["too_late"]:
        raise RuntimeError(head + _state["reason"])
    ok, where = _ctor_symbol_present()
    if not ok:
        raise RuntimeError(head + f"the shim cannot interpose this casatools: {where} (the shim "
                           "targets casatools 6.7 on x86-64 Linux); rebuild casatools with "
                           "patches/casatools-setweighting-fracbw.patch or use weighting='briggs'")


# ---------------------------------------------------------------------------------------------
# use

def set_value(value: float) -> None:
    """Set the fracBW the shim substitutes from now on in this process (0 = CASA's own value)."""
    preload()
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"fracBW must be finite and >= 0, got {value!r}")
    if _state["lib"] is None:
        raise RuntimeError("briggsbwtaper: cannot set the full-cube fracBW: " +
                           (_state["reason"] or "the fracBW shim is not loaded"))
    _state["lib"].pclean_fracbw_set(value)


def substitutions() -> int:
    """BriggsCubeWeightor constructions in which the shim substituted fracBW (0 if not loaded)."""
    lib = _state["lib"]
    return int(lib.pclean_fracbw_substitutions()) if lib is not None else 0


def calls() -> int:
    """All BriggsCubeWeightor constructions the shim saw (0 if not loaded)."""
    lib = _state["lib"]
    return int(lib.pclean_fracbw_calls()) if lib is not None else 0


def last_casa_value() -> float:
    """The fracBW CASA itself passed at the last construction the shim saw (0.0 if none)."""
    lib = _state["lib"]
    return float(lib.pclean_fracbw_last_casa_value()) if lib is not None else 0.0


def check_applied(before: int, value: float, setweighting) -> int:
    """After makepsf in a worker: make sure CASA used the full-cube fracBW.

    ``before`` is :func:`substitutions` taken before setweighting/makepsf, ``setweighting`` the
    bound ``synthesisimager.setweighting`` used. Returns the new substitution count (0 when the
    binding takes ``fracbw`` itself).
    """
    if accepts_fracbw(setweighting):
        return 0
    after = substitutions()
    if after <= before:
        detail = [f"fracBW wanted {float(value)!r}", f"substitutions {before} -> {after}",
                  f"constructor calls seen {calls()}"]
        if _state["lib"] is None:
            detail.append(_state["reason"] or "shim not loaded")
        elif _state["too_late"]:
            detail.append("shim loaded after casatools in this process")
        if calls():
            detail.append(f"CASA's own value at the last call {last_casa_value()!r}")
        raise RuntimeError(
            "briggsbwtaper: the full-cube fracBW did not reach CASA in this worker (shim loaded "
            "after casatools?) (" + "; ".join(detail) + "). Import casatools only via "
            "pclean.casa.tools(), or use a casatools rebuilt with "
            "patches/casatools-setweighting-fracbw.patch.")
    return after
