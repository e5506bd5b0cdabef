"""Progress you can watch: an observer of the run's events (``events``), never a poller.

On a terminal (stderr a TTY) a live display drawn by ``rich``: the phase (planning, cluster
start, psf, major cycle k, minor cycle k, restore, gather), how many chunks of the stretch in
progress are back, iterations done (tclean's niter bounds each channel), the peak residual,
chunks rebuilt, elapsed time and, once iterations are under way, a bound on the time left. Anywhere else it stays quiet and writes one line per major
cycle to the CASA log instead (tclean's own progress lines are per minor cycle:
``events.ProgressLog``). ``progress=False`` turns the display off.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from pclean.run import events


@dataclass(frozen=True)
class Phase:
    """A phase outside the cycle loop (planning, cluster start, gather, done)."""

    name: str
    nchunks: int | None = None  # known once the chunks are planned (after cluster start)
    nchan: int | None = None
    t: float = field(default_factory=time.time)


_PHASES = {"psf": "psf", "major": "major cycle", "minor": "minor cycle", "restore": "restore",
           "finish": "finishing"}


class State:
    """What the display shows, from the events alone (unit-tested without a terminal)."""

    def __init__(self, niter: int, nchunks: int = 0, nchan: int = 1):
        # tclean's niter bounds each channel of a cube: the budget is niter x nchan
        self.niter, self.nchunks, self.nchan = int(niter), int(nchunks), int(nchan)
        self.phase, self.major, self.minor = "planning", 0, 0
        self.iterations, self.peak, self.rebuilt = 0, None, 0
        self.chunks_done = None  # chunks back from the stretch in progress
        self.t0 = time.time()
        self.first_iter_t = None

    def update(self, event) -> bool:
        """Fold in ``event``; whether the display changed."""
        if isinstance(event, Phase):
            self.phase = event.name
            if event.nchunks is not None:
                self.nchunks = event.nchunks
            if event.nchan is not None:
                self.nchan = event.nchan
        elif isinstance(event, events.ChunkDone):
            self.chunks_done = event.done
        elif isinstance(event, events.StretchStarted):
            self.chunks_done = 0
            kind = events.kind(event.steps)
            if kind == "major":
                self.major += 1
                self.phase = f"major cycle {self.major}"
            elif kind == "minor":
                self.phase = f"minor cycle {self.minor + 1}"
            elif kind in _PHASES:
                self.phase = _PHASES[kind]
                if kind == "psf" and "major_cycle" in event.steps:
                    self.major += 1  # tclean counts the first major cycle (the residual)
            else:
                return False
        elif isinstance(event, events.Iterations):
            self.minor, self.iterations, self.peak = event.cycle, event.total, event.peakresidual
            if self.first_iter_t is None:
                self.first_iter_t = event.t
        elif isinstance(event, events.ChunkRebuilt):
            self.rebuilt += 1
        else:
            return False
        return True

    def remaining_s(self) -> float | None:
        """Time left if every channel used its niter, at the iteration rate so far (a bound:
        a threshold or convergence usually stops much sooner)."""
        budget = self.niter * self.nchan
        if self.phase in ("restore", "finishing", "gather", "done"):
            return None  # the deconvolution is over
        if not self.iterations or self.first_iter_t is None or budget <= self.iterations:
            return None
        rate = self.iterations / max(time.time() - self.first_iter_t, 1e-3)
        return (budget - self.iterations) / rate

    def line(self) -> str:
        parts = [self.phase]
        if self.nchunks:
            parts.append(f"{self.nchunks} chunks" if self.chunks_done is None else
                         f"chunks {self.chunks_done}/{self.nchunks} done")
        if self.niter:
            parts.append(f"{self.iterations} iterations (niter {self.niter} a channel)")
        if self.peak is not None:
            parts.append(f"peak residual {self.peak:.4g}")
        if self.rebuilt:
            parts.append(f"{self.rebuilt} chunk(s) rebuilt")
        parts.append(f"elapsed {time.time() - self.t0:.0f} s")
        left = self.remaining_s()
        if left is not None:
            parts.append(f"at most {left:.0f} s left at this rate")
        return " | ".join(parts)


class LiveDisplay:
    """The terminal display (rich's ``Live``), redrawn on every event that changes it."""

    def __init__(self, state: State, console=None):
        from rich.console import Console
        from rich.live import Live

        self.state = state
        self.console = console or Console(stderr=True)
        self.live = Live(self._text(), console=self.console, auto_refresh=False,
                         transient=False)
        self.live.start()

    def _text(self):
        from rich.text import Text

        return Text(self.state.line())  # plain text: no markup or number highlighting

    def notify(self, event) -> None:
        if self.state.update(event):
            self.live.update(self._text(), refresh=True)

    def close(self) -> None:
        self.live.update(self._text(), refresh=True)
        self.live.stop()


class MajorCycleLog:
    """Not a terminal: one line per major cycle (and phase) in the CASA log."""

    def __init__(self, state: State, post):
        self.state, self.post = state, post

    def notify(self, event) -> None:
        before = self.state.phase
        if self.state.update(event) and self.state.phase != before and not isinstance(
                event, events.Iterations):
            self.post(f"pclean: {self.state.line()}")

    def close(self) -> None:
        pass


def observer(progress, niter: int, post, console=None):
    """The progress observer for ``progress``: None, a live display on a terminal and the log
    lines elsewhere; True, the live display; False, none."""
    if progress is False:
        return None
    if progress or console is not None or sys.stderr.isatty():
        # the display, and the same events as lines in the CASA log
        return Both(LiveDisplay(State(niter), console), MajorCycleLog(State(niter), post))
    return MajorCycleLog(State(niter), post)


class Both:
    def __init__(self, *observers):
        self.observers = observers

    def notify(self, event) -> None:
        for obs in self.observers:
            obs.notify(event)

    def close(self) -> None:
        for obs in self.observers:
            obs.close()
