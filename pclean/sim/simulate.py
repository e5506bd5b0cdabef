"""Simulated spectral-cube MeasurementSets, built offline with casatools.simulator.

Used by the tests, the demo and the benchmarks: nothing is downloaded. The sky is a few point
sources with different spectral indices plus a spectral line source, so every channel differs.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from pclean import casa


def add_point_source(cl, direction: str, iquv, freq_hz: float, index: float) -> None:
    """Add to componentlist ``cl`` a point source of Stokes ``iquv`` (Jy at ``freq_hz``, LSRK)
    whose I, Q, U and V all scale as (nu / freq_hz) ** index: constant fractional polarization,
    no rotation measure.

    The spectrum is set with ``setstokesspectrum`` and all four of its indices, never with
    ``addcomponent(spectrumtype="spectral index")`` alone: that stores a one-element Stokes
    index vector, and casacore's ``SpectralIndex::sampleStokes`` (used by ``sm.predict`` over
    several channels) reads elements 1-3 of it anyway (casatools 6.7.0.31), past the end of its
    heap block. Those bytes are whatever the process's heap held there: zeros in a young process,
    leftovers of earlier CASA work (a tclean, another simulation) later, so Q and U came out
    rotated by a garbage "rotation measure" and scaled by a garbage index (even NaN) in some rows
    and not others, and the data depended on what had run before in the process.
    """
    flux = [float(v) for v in iquv]
    cl.addcomponent(dir=direction, flux=flux, fluxunit="Jy", freq=f"{freq_hz!r}Hz",
                    shape="point", spectrumtype="spectral index", index=float(index))
    which = cl.length() - 1
    cl.setstokesspectrum(which=which, type="spectral index",
                         index=[float(index), 0.0, 0.0, 0.0], reffreq=f"{freq_hz!r}Hz",
                         frame="LSRK")
    stokes_index = list(cl.getcomponent(which)["spectrum"].get("stokesindex", []))
    if stokes_index != [float(index), 0.0, 0.0, 0.0]:
        raise RuntimeError(f"componentlist kept Stokes spectral indices {stokes_index}, "
                           f"not [{index}, 0, 0, 0]")


@dataclass
class SimSpec:
    nchan: int = 32
    freq_start_hz: float = 1.0e9
    chan_width_hz: float = 12.5e6
    frame: str = "LSRK"  # the frame the spectral window is labelled in (LSRK, TOPO, BARY)
    config: str = "vla.d.cfg"  # antenna list under casadata's alma/simmos
    hours: float = 1.0
    integration_s: float = 120.0
    noise_jy: float = 0.02
    direction: tuple = ("J2000", "19h59m28.5s", "+40d44m01.5s")
    # (offset ra arcsec, offset dec arcsec, flux Jy at freq_start, spectral index)
    sources: list = field(default_factory=lambda: [
        (0.0, 0.0, 1.0, -0.7),
        (-45.0, 30.0, 0.6, 0.5),
        (60.0, -50.0, 0.4, -1.5),
    ])
    seed: int = 1234

    @property
    def fracbw(self) -> float:
        fmin = self.freq_start_hz
        fmax = self.freq_start_hz + (self.nchan - 1) * self.chan_width_hz
        return 2 * (fmax - fmin) / (fmax + fmin)


def simulate(msname: str, spec: SimSpec | None = None, overwrite: bool = False) -> str:
    """Write a simulated MS to ``msname`` and return its path."""
    spec = spec or SimSpec()
    if os.path.exists(msname):
        if not overwrite:
            raise FileExistsError(f"{msname} exists; pass overwrite=True to replace it")
        shutil.rmtree(msname)
    ct = casa.tools()
    from casatasks.private.simutil import simutil  # reads the antenna list files

    import casadata

    cfg = os.path.join(casadata.datapath, "alma", "simmos", spec.config)
    x, y, z, diam, names, _pads, telescope, _posobs = simutil().readantenna(cfg)

    me = ct.measures()
    qa = ct.quanta()
    sm = ct.simulator()
    cl = ct.componentlist()
    clname = msname.rstrip("/") + ".cl"
    try:
        sm.open(msname)
        sm.setconfig(telescopename=telescope, x=x, y=y, z=z, dishdiameter=diam.tolist(),
                     mount=["alt-az"], antname=names, coordsystem="global",
                     referencelocation=me.observatory(telescope))
        sm.setspwindow(spwname="spw0", freq=f"{spec.freq_start_hz}Hz",
                       deltafreq=f"{spec.chan_width_hz}Hz",
                       freqresolution=f"{abs(spec.chan_width_hz)}Hz", refcode=spec.frame,
                       nchannels=spec.nchan, stokes="XX YY")
        sm.setfeed(mode="perfect X Y")
        frame, ra, dec = spec.direction
        sm.setfield(sourcename="src", sourcedirection=me.direction(frame, ra, dec))
        sm.setlimits(shadowlimit=0.001, elevationlimit="8.0deg")
        sm.setauto(autocorrwt=0.0)
        sm.settimes(integrationtime=f"{spec.integration_s}s", usehourangle=True,
                    referencetime=me.epoch("UTC", "2024/06/01/00:00:00"))
        half = spec.hours / 2
        sm.observe(sourcename="src", spwname="spw0", starttime=f"{-half}h", stoptime=f"{half}h")

        if os.path.exists(clname):
            shutil.rmtree(clname)
        ref_ra = qa.convert(qa.quantity(ra), "deg")["value"]
        ref_dec = qa.convert(qa.quantity(dec), "deg")["value"]
        import math

        for dra, ddec, flux, index in spec.sources:
            sra = ref_ra + dra / 3600.0 / math.cos(math.radians(ref_dec))
            sdec = ref_dec + ddec / 3600.0
            add_point_source(cl, f"{frame} {sra}deg {sdec}deg", [flux, 0.0, 0.0, 0.0],
                             spec.freq_start_hz, index)
        predict(sm, cl, clname, spec.noise_jy, spec.seed)
    finally:
        sm.close()
        cl.done()
        shutil.rmtree(clname, ignore_errors=True)
    return msname


def predict(sm, cl, clname: str, noise_jy: float, seed: int) -> None:
    """Save the component list ``cl`` as ``clname``, predict it into ``sm``'s MS and, when
    ``noise_jy`` > 0, add that much Gaussian noise per visibility from ``seed``."""
    cl.rename(clname)
    cl.close()
    sm.predict(complist=clname)
    if noise_jy > 0:
        sm.setseed(int(seed))
        sm.setnoise(mode="simplenoise", simplenoise=f"{float(noise_jy)!r}Jy")
        sm.corrupt()
