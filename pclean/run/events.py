"""What a run reports as it goes: events from the chunk set, and the observers that use them.

The chunk set (``chunkset``) emits an event when a stretch of steps starts and ends, how many
iterations each minor cycle did, and each chunk's busy time at the end; observers are any
objects with ``notify(event)``: the timings in pclean's return dict, a progress line in the CASA
log, and the run's ledger in the work directory are three.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class StretchStarted:
    steps: tuple[str, ...]
    t: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StretchEnded:
    steps: tuple[str, ...]
    wall_s: float
    t: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Iterations:
    """One minor cycle over the cube: iterations done in it, and in all cycles so far."""

    cycle: int
    iterdone: int
    total: int
    peakresidual: float
    t: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Busy:
    """Seconds each chunk spent in each step (from the chunks' status at the end)."""

    per_chunk: tuple[dict, ...]
    t: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ChunkDone:
    """A chunk's part of the stretch in progress has come back (``done`` of ``of`` so far)."""

    chunk: int
    done: int
    of: int
    t: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ChunkRebuilt:
    """A chunk lost with its worker, started again on ``on`` from its images after the
    stretches it had completed (``after``), then given the one in progress again."""

    chunk: int
    lost: str
    on: str
    after: int  # stretches its images had seen
    t: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Resumed:
    """A run continued from its checkpoints: ``stretches`` replayed, ``minor_cycles`` in them."""

    stretches: int
    minor_cycles: int
    t: float = field(default_factory=time.time)


class Timings:
    """Wall time by kind of stretch (psf, major, minor, restore, ...) and in all."""

    def __init__(self):
        self.seconds = {}

    def notify(self, event) -> None:
        if isinstance(event, StretchEnded):
            name = kind(event.steps)
            self.seconds[name] = self.seconds.get(name, 0.0) + event.wall_s


def kind(steps: tuple[str, ...]) -> str:
    for name, kind in (("make_psf", "psf"), ("minor_cycle", "minor"), ("major_cycle", "major"),
                       ("restore", "restore"), ("finish", "finish")):
        if name in steps:
            return kind
    return steps[0] if steps else "none"


class ProgressLog:
    """A line in the CASA log per minor cycle, as tclean logs its progress."""

    def __init__(self, post):
        self.post = post

    def notify(self, event) -> None:
        if isinstance(event, Iterations):
            self.post(f"pclean: minor cycle {event.cycle}: {event.iterdone} iterations "
                      f"({event.total} in all), peak residual {event.peakresidual:.6g}")


class Ledger:
    """Every event, one JSON line each, in the work directory (``WorkDir.ledger``): what a
    rebuild or a resume would start from, and a record of a failed run."""

    def __init__(self, path: str):
        self.path = path

    def notify(self, event) -> None:
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps({"event": type(event).__name__, **asdict(event)},
                                   default=str) + "\n")
        except OSError as exc:  # a full or lost file system: say which file
            raise OSError(exc.errno, f"writing the run's ledger {self.path}: "
                                     f"{exc.strerror}") from exc
