"""Progress from a real run: the live display on a terminal, log lines elsewhere."""
from __future__ import annotations

import io

from conftest import IMAGING
from pclean import pclean
from pclean.run import progress


def test_a_run_on_a_terminal_shows_every_phase_live(ms_lsrk, client, tmp_path, monkeypatch):
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    original = progress.observer
    monkeypatch.setattr(progress, "observer",
                        lambda prog, niter, post: original(prog, niter, post, console=console))
    pclean(vis=ms_lsrk, imagename=str(tmp_path / "live"), cluster=client, niter=60,
           cycleniter=20, chanchunk=6, **IMAGING)
    text = out.getvalue()
    for expected in ("cluster start", "2 chunks", "psf", "minor cycle 1", "major cycle 2",
                     "iterations (niter 60 a channel)", "peak residual", "restore", "gather", "done"):
        assert expected in text, expected


def test_a_run_elsewhere_logs_a_line_per_major_cycle(ms_lsrk, client, tmp_path, monkeypatch):
    from pclean import casa

    lines = []
    original = casa.log
    monkeypatch.setattr(casa, "log", lambda msg, *a, **k: (lines.append(msg),
                                                            original(msg, *a, **k)))
    result = pclean(vis=ms_lsrk, imagename=str(tmp_path / "quiet"), cluster=client, niter=60,
                    cycleniter=20, chanchunk=6, **IMAGING)
    majors = [line for line in lines if line.startswith("pclean: major cycle")]
    assert len(majors) == result["nmajordone"] - 1  # the first is the psf stretch's
    assert any(line.startswith("pclean: gather") for line in lines)
    # off: no progress line at all
    lines.clear()
    pclean(vis=ms_lsrk, imagename=str(tmp_path / "off"), cluster=client, niter=60,
           cycleniter=20, chanchunk=6, progress=False, **IMAGING)
    assert not [line for line in lines if line.startswith("pclean: major cycle")]
