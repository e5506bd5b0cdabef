"""The steps of tclean's sequence a chunk performs, and what each returns, by name.

The chunk actor (``actor.ChunkImager``) implements :class:`ChunkSteps`; the cycle loop
(``pclean.run.loop``) sends stretches of :class:`Step` s to every chunk at once and reads the
results by key. Records are per field ({field: value}), as casatasks keeps one normalizer and
one deconvolver per field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Step:
    """One call of a :class:`ChunkSteps` method; its result is returned under ``key``."""

    name: str
    args: tuple = ()
    key: str = ""

    @property
    def result_key(self) -> str:
        return self.key or self.name

    def call(self) -> tuple:
        return (self.name, *self.args)


class PerChunk(list):
    """A step argument with one value per chunk, in chunk order."""


def step(name: str, *args, key: str = "") -> Step:
    if name not in STEP_NAMES:
        raise ValueError(f"{name!r} is not a chunk step ({', '.join(STEP_NAMES)})")
    return Step(name, tuple(args), key)


class ChunkSteps(Protocol):
    """What a chunk does, in tclean's order. Every method works on the chunk's own channels."""

    def make_psf(self) -> dict:
        """The psf (and with the standard gridder the pb): {"beams": {field: [beam per own
        channel]}, "valid": {field: [fitted?]}, "memreq_gb_per_chan": float, "report": {}}."""

    def read_psf(self) -> dict:
        """A continued clean's psf (the earlier call's): what ``make_psf`` returns, every beam
        as that call left it (fitted and filled)."""

    def make_pb(self) -> None: ...

    def major_cycle(self, controls: dict) -> None:
        """Predict the model, grid the residual (``controls``: lastcycle, usemask)."""

    def init_minor(self) -> dict:
        """{field: initminorcycle record} (peak residual, psf sidelobe, mask sum, rms, ...)."""

    def setup_mask(self) -> dict:
        """{field: whether the mask changed}."""

    def minor_cycle(self, controls: dict) -> dict:
        """{field: executeminorcycle record} under the cube-wide ``controls``."""

    def set_psf_beams(self, beams: dict) -> None:
        """{field: the cube's fill for its own channels, or None (its own is right)}."""

    def restore(self, beams: dict, pbcor: bool, common_planes: dict | None = None) -> None:
        """{field: a cube-wide restoring beam, or None}; then pbcor if asked."""

    def finish(self) -> None: ...

    def status(self) -> dict:
        """pid, peak memory, busy seconds per step, and cube-wide values' reports."""

    def close(self) -> None: ...


STEP_NAMES = tuple(n for n in ChunkSteps.__dict__ if not n.startswith("_"))
