"""The run's checkpoints: every completed stretch's calls and results, per chunk, in the work
directory (``<workdir>/stretches.jsonl``, one line per stretch, written when the stretch is in).

They are what a resumed run starts from (``resume``): the coordinator's side of tclean's loop
(the iteration control, the psf beams) is replayed from the recorded results without calling
the chunks, and each chunk's actor starts again from its images as they were after the last
recorded stretch (``chunk_state``; ``workers.undo`` rolls back what a stretch in progress had
changed). A lost chunk is rebuilt the same way (``chunkset``).

Values are written typed (numpy arrays and scalars, tuples, non-finite floats), so a replayed
record is the one CASA returned, bit for bit: a float's repr reads back exactly.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

LOG_NAME = "stretches.jsonl"


def encode(obj):
    """``obj`` as plain JSON values that ``decode`` turns back into equal, same-typed ones."""
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"d": {k: encode(v) for k, v in obj.items()}}
        return {"kd": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"t": [encode(v) for v in obj]}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"nd": [obj.dtype.str, list(obj.shape), [encode(v) for v in obj.ravel().tolist()]]}
    if isinstance(obj, np.generic):
        return {"np": [obj.dtype.str, encode(obj.item())]}
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"f": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}: {obj!r}")


def decode(obj):
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    (tag, value), = obj.items()
    if tag == "d":
        return {k: decode(v) for k, v in value.items()}
    if tag == "kd":
        return {decode(k): decode(v) for k, v in value}
    if tag == "t":
        return tuple(decode(v) for v in value)
    if tag == "nd":
        dtype, shape, flat = value
        return np.array([decode(v) for v in flat], dtype=np.dtype(dtype)).reshape(shape)
    if tag == "np":
        return np.dtype(value[0]).type(decode(value[1]))
    if tag == "f":
        return float(value)
    raise ValueError(f"not a checkpoint value: {obj!r}")


def same_calls(a, b) -> bool:
    """Whether two stretches' calls are the same (compared as they are written)."""
    return json.dumps(encode(a), sort_keys=True) == json.dumps(encode(b), sort_keys=True)


class StretchLog:
    """Appends each completed stretch: {"calls": [chunk k's calls], "results": [chunk k's
    results]}. Flushed and synced, so a line that is there survives the machine."""

    def __init__(self, path: str):
        self.path = path

    def append(self, calls: list, results: list) -> None:
        line = json.dumps({"calls": encode(calls), "results": encode(results)})
        try:
            with open(self.path, "a") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise OSError(exc.errno, f"writing the run's checkpoint {self.path}: "
                                     f"{exc.strerror}") from exc

    def read(self) -> list[tuple[list, list]]:
        """Every completed stretch (calls, results); a last line cut short by a crash is not
        one."""
        out = []
        if not os.path.exists(self.path):
            return out
        with open(self.path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                rec = json.loads(line)
                out.append((decode(rec["calls"]), decode(rec["results"])))
        return out

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` stretches (a resume that starts after them rewrites the rest)."""
        lines = []
        if os.path.exists(self.path):
            with open(self.path) as f:
                lines = [ln for ln in f if ln.endswith("\n")][:n]
        with open(self.path + ".tmp", "w") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(self.path + ".tmp", self.path)


def chunk_state(calls: list[list[tuple]], psf_result: dict | None) -> dict:
    """What a new actor for a chunk needs to continue after the stretches ``calls`` (each a
    list of ``(method, *args)``): how many stretches its images have seen, how many minor
    cycles (the version of its halo planes), whether the deconvolvers must be set up again
    (the last stretch ended in ``init_minor``: the minor cycle that follows reads the state it
    leaves), whether it made its psf (a continued clean reads the earlier call's), and what
    its psf step reported."""
    names = [[c[0] for c in stretch] for stretch in calls]
    return {"stretches": len(names),
            "minor_done": sum(n.count("minor_cycle") for n in names),
            "reinit": bool(names) and names[-1][-1] == "init_minor",
            "psf_made": any("make_psf" in n for n in names),
            "report": dict((psf_result or {}).get("report", {}))}
