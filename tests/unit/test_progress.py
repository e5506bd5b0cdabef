"""The progress display is fed by the run's events alone (no CASA, no terminal needed)."""
from __future__ import annotations

import io

from pclean.run import events, progress


def _feed(observer):
    observer.notify(progress.Phase("cluster start"))
    observer.notify(progress.Phase("chunks starting", 3))
    observer.notify(events.StretchStarted(("make_psf", "make_pb", "major_cycle")))
    observer.notify(events.StretchStarted(("init_minor", "minor_cycle")))
    observer.notify(events.Iterations(1, 40, 40, 0.5))
    observer.notify(events.StretchStarted(("major_cycle", "setup_mask")))
    observer.notify(events.ChunkDone(0, 1, 3))
    observer.notify(events.ChunkRebuilt(1, "tcp://a", "tcp://b", 3))
    observer.notify(events.StretchStarted(("restore",)))


def test_the_state_follows_phases_cycles_and_iterations():
    state = progress.State(niter=100)
    assert state.update(progress.Phase("cluster start")) and state.phase == "cluster start"
    state.update(progress.Phase("chunks starting", 3, 4))
    state.update(events.StretchStarted(("make_psf", "make_pb", "major_cycle")))
    assert state.phase == "psf"
    state.update(events.StretchStarted(("init_minor", "minor_cycle")))
    assert state.phase == "minor cycle 1"
    state.update(events.Iterations(1, 40, 40, 0.5))
    state.update(events.StretchStarted(("major_cycle", "setup_mask")))
    assert state.phase == "major cycle 2"
    assert not state.update(events.StretchEnded(("major_cycle",), 1.0))  # nothing to redraw
    assert "major cycle 2 | chunks 0/3 done | 40 iterations (niter 100 a channel) | peak residual 0.5" in (
        state.line())
    state.update(events.ChunkDone(1, 2, 3))
    line = state.line()
    assert "major cycle 2 | chunks 2/3 done | 40 iterations (niter 100 a channel) | peak residual 0.5" in line
    assert "s left" in line  # an estimate once iterations are under way


def test_a_terminal_gets_a_live_display_drawn_by_rich():
    from rich.console import Console

    out, logged = io.StringIO(), []
    shown = progress.observer(None, 100, logged.append,
                              console=Console(file=out, force_terminal=True, width=200))
    assert isinstance(shown.observers[0], progress.LiveDisplay)
    _feed(shown)
    assert "pclean: major cycle 2" in " ".join(logged)  # the same events in the CASA log
    shown.close()
    text = out.getvalue()
    for expected in ("cluster start", "psf", "minor cycle 1", "major cycle 2", "chunks 1/3 done",
                     "40 iterations (niter 100 a channel)", "1 chunk(s) rebuilt", "restore"):
        assert expected in text, expected
    assert "\x1b[" in text  # redrawn in place with terminal control codes


def test_elsewhere_a_line_per_phase_and_major_cycle_goes_to_the_log():
    lines = []
    shown = progress.observer(None, 100, lines.append)  # pytest's stderr is not a terminal
    assert isinstance(shown, progress.MajorCycleLog)
    _feed(shown)
    phases = [line.split(" | ")[0] for line in lines]
    assert phases == ["pclean: cluster start", "pclean: chunks starting", "pclean: psf",
                      "pclean: minor cycle 1", "pclean: major cycle 2", "pclean: restore"]
    assert progress.observer(False, 100, lines.append) is None
