"""The same call again continues an interrupted run; another call against its work directory is
refused with what differs.

A run keeps its plan (``<workdir>/plan.pickle``, with the call it was made for) and checkpoints
every completed stretch (``run.checkpoint``). A call whose work directory exists is the same
call when its parameters (all but those that only say where and how to run: ``RUN_ONLY``),
every MeasurementSet's files (sizes and modification times) and the pclean and casatools
versions are the ones recorded: it then takes the recorded plan (nothing cube-wide is computed
again, and the chunks are the recorded ones, whatever the workers now are) and continues after
the last checkpointed stretch. A work directory without a plan is the remains of a run that
stopped while planning: nothing in it is anyone's work, and it is planned again.

While a run works in its directory, its coordinator holds ``<workdir>/lock`` (an advisory
``flock``; every chunk actor holds it shared): a second call against the same directory waits
for the first run's workers to end (``LOCK_WAIT_S``), then is refused.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import pickle
import shutil
import time

from pclean.jsonable import jsonable
from pclean.params.errors import ParameterError

# parameters that say where and how to run, not what to make: a resume may change them
RUN_ONLY = ("nworkers", "cluster", "cluster_options", "worker_memory", "cluster_timeout",
            "progress", "dashboard", "performance_report", "keep_chunks", "fitsout")
# the longest a worker of a run whose coordinator died lives on (its death_timeout, SLURM's
# 60 s) and a margin: how long a new call waits for the directory's lock
LOCK_WAIT_S = 90.0

_held: dict[str, int] = {}  # work directory -> the lock's file descriptor


def ms_fingerprint(ms: str) -> str:
    """A MeasurementSet's identity: every file's path, size and modification time (not the
    table lock files, which every reader rewrites)."""
    h = hashlib.sha256()
    for top, dirs, files in os.walk(ms):
        dirs.sort()
        for name in sorted(files):
            if name == "table.lock":
                continue
            path = os.path.join(top, name)
            st = os.stat(path)
            h.update(f"{os.path.relpath(path, ms)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def versions() -> dict:
    from importlib.metadata import version

    return {"pclean": version("pclean"), "casatools": version("casatools")}


def call_of(p: dict) -> dict:
    """What makes a call the same call: its parameters, its data and the software."""
    vis = p["vis"] if isinstance(p["vis"], (list, tuple)) else [p["vis"]]
    return {"params": jsonable({k: v for k, v in sorted(p.items()) if k not in RUN_ONLY}),
            "ms": {os.path.abspath(str(v)): ms_fingerprint(str(v)) for v in vis},
            "versions": versions()}


def differences(old: dict, new: dict) -> list[str]:
    out = []
    for part in ("params", "versions"):
        for key in sorted(set(old[part]) | set(new[part])):
            a, b = old[part].get(key), new[part].get(key)
            if a != b:
                out.append(f"{key}={a!r} then, {b!r} now")
    for ms in sorted(set(old["ms"]) | set(new["ms"])):
        if old["ms"].get(ms) != new["ms"].get(ms):
            out.append(f"the MeasurementSet {ms} has changed" if ms in old["ms"] and
                       ms in new["ms"] else f"vis: {ms} was not in both calls")
    return out


def save(plan) -> None:
    """Keep ``plan`` (with or without its chunks) for the same call to continue from."""
    params = {k: v for k, v in plan.params.items() if k not in RUN_ONLY}
    body = {"call": call_of(plan.params), "plan": dataclasses.replace(plan, params=params)}
    path = plan.workdir.plan
    with open(path + ".tmp", "wb") as f:
        pickle.dump(body, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def load(workdir, p: dict):
    """The plan of the interrupted run in ``workdir`` if ``p`` is its call (its params, with
    this call's ``RUN_ONLY`` ones), else a ParameterError saying what differs; None if the
    directory holds no plan (a run that stopped while planning)."""
    if not os.path.exists(workdir.plan):
        return None
    with open(workdir.plan, "rb") as f:
        body = pickle.load(f)
    diff = differences(body["call"], call_of(p))
    if diff:
        raise ParameterError(
            f"workdir: {workdir.root} holds an interrupted run of another call ("
            + "; ".join(diff) + "). Make the same call to continue it, or remove the "
            "directory (or set workdir) to image afresh")
    return dataclasses.replace(body["plan"], params=p, resumed=True)


def is_run(workdir) -> bool:
    """Whether ``workdir`` is a pclean run's (and so may be continued or planned again)."""
    return os.path.exists(workdir.plan) or (os.path.exists(workdir.lock)
                                            and not os.path.exists(workdir.manifest))


def acquire(root: str) -> None:
    """Hold ``<root>/lock`` for this run, waiting (``LOCK_WAIT_S``) for an earlier run's
    processes to let it go."""
    if root in _held:  # this run holds it already (planning again in an emptied directory)
        return
    path = os.path.join(root, "lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT_S
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ParameterError(
                        f"workdir: {root} is in use by another pclean run or its workers "
                        f"(its lock was held for {LOCK_WAIT_S:.0f} s); wait for it to end, or "
                        "set workdir") from None
                time.sleep(0.5)
            except OSError:  # a file system without flock: no guard, as before
                break
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # the chunk actors hold it shared
        except OSError:
            pass
    except BaseException:
        os.close(fd)
        raise
    _held[root] = fd


def release(root: str) -> None:
    fd = _held.pop(root, None)
    if fd is not None:
        os.close(fd)


def hold_shared(root: str, wait_s: float = 30.0) -> int | None:
    """A chunk actor's hold on its run's lock (None where the file system has no flock)."""
    fd = os.open(os.path.join(root, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RuntimeError(
                    f"the work directory {root} is held by another pclean run") from None
            time.sleep(0.2)
        except OSError:
            os.close(fd)
            return None


def start_afresh(workdir) -> None:
    """An interrupted run's directory that holds no plan (it stopped while planning): its
    contents are planned again."""
    for name in os.listdir(workdir.root):
        if name != "lock":
            path = os.path.join(workdir.root, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
