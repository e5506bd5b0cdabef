/*
 * fracbw_shim.c -- give CASA's briggsbwtaper weighting the fractional bandwidth of the WHOLE cube.
 *
 * The CASA quirk worked around
 * ----------------------------
 * weighting='briggsbwtaper' (rmode "bwtaper", CAS-13021) tapers the Briggs weights by the
 * fractional bandwidth of the cube, fracBW = 2 (fmax - fmin) / (fmax + fmin).
 * SynthesisImagerVi2::weight() takes fracBW as a trailing argument (default 0.0) and, when it is
 * 0.0, computes it from the spectral axis of the image it was given.  The Python binding
 * synthesisimager.setweighting() of stock casatools never passes it, so CASA always computes it
 * from the image being made.  When pclean images a cube as independent channel chunks, that
 * image is a sub-cube:
 *   - a 1-channel chunk gets fracBW = 0 and BriggsCubeWeightor throws
 *     "BriggsCubeWeightor fractional bandwith is not a valid value, 0.0.";
 *   - a multi-channel chunk silently gets too small a fracBW, i.e. a wrong taper.
 *
 * What this library does
 * ----------------------
 * SynthesisImagerVi2::weight() constructs the weightor with
 *     casa::refim::BriggsCubeWeightor::BriggsCubeWeightor(
 *         const casacore::String& rmode, const casacore::Quantity& noise, casacore::Double robust,
 *         const casacore::Double& fracBW, casacore::Int npixels, casacore::Bool multiField)
 * and (in casatools 6.7.0.31, x86-64 Linux) calls it through the PLT of libcasacpp_synthesis.so.6.
 * This file defines that very symbol.  Loaded with RTLD_GLOBAL *before* casatools is imported (or
 * with LD_PRELOAD), the dynamic linker binds libcasacpp_synthesis' call to this function, which
 * replaces fracBW by the value set with pclean_fracbw_set() and forwards to the real constructor
 * (looked up in libcasacpp_synthesis.so.6 itself at the first call).  Loaded after casatools'
 * extension modules (Python opens them with RTLD_NOW, which binds the PLT at once) it has no
 * effect; pclean checks the substitution counter after makepsf so that this cannot go unnoticed.
 *
 * No CASA headers are needed: under the x86-64 SysV ABI a C++ constructor is a function taking
 * `this` first and references as pointers:
 *     void ctor(void *self, const void *rmode, const void *noise, double robust,
 *               const double *fracbw, int npixels, _Bool multifield);
 *
 * pclean_fracbw_set(v): v > 0 substitutes v in every later construction; v <= 0 (the default)
 * passes CASA's own value through unchanged.  Only rmode "bwtaper" reads fracBW, so substituting
 * it for other Briggs modes is harmless (pclean only sets it for briggsbwtaper anyway).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define CASA_SYNTHESIS_LIB "libcasacpp_synthesis.so.6"
/* casa::refim::BriggsCubeWeightor::BriggsCubeWeightor(casacore::String const&,
 *     casacore::Quantum<double> const&, double, double const&, int, bool)   -- complete-object (C1) */
#define BRIGGS_CTOR_SYMBOL \
    "_ZN4casa5refim18BriggsCubeWeightorC1ERKN8casacore6StringERKNS2_7QuantumIdEEdRKdib"

typedef void (*briggs_ctor_fn)(void *self, const void *rmode, const void *noise, double robust,
                               const double *fracbw, int npixels, _Bool multifield);

static _Atomic(briggs_ctor_fn) real_ctor = NULL;
static _Atomic double fracbw_value = 0.0;      /* 0: pass CASA's value through */
static _Atomic double last_casa_value = 0.0;   /* what CASA passed at the last call */
static atomic_long n_calls = 0;
static atomic_long n_substitutions = 0;
static atomic_int casa_loaded_before_shim = -1; /* -1 unknown, 0 no, 1 yes */

void pclean_briggs_ctor(void *self, const void *rmode, const void *noise, double robust,
                        const double *fracbw, int npixels, _Bool multifield)
    __asm__(BRIGGS_CTOR_SYMBOL);

/* Runs when this library is loaded: was CASA's synthesis library already in the process?  If so
 * its PLT may already be bound to the real constructor and interposition cannot work. */
__attribute__((constructor)) static void pclean_fracbw_on_load(void)
{
    void *h = dlopen(CASA_SYNTHESIS_LIB, RTLD_NOLOAD | RTLD_LAZY);
    atomic_store(&casa_loaded_before_shim, h != NULL);
    if (h != NULL)
        dlclose(h); /* drops the reference NOLOAD took; the library stays loaded */
}

static briggs_ctor_fn resolve_real_ctor(void)
{
    briggs_ctor_fn fn = atomic_load_explicit(&real_ctor, memory_order_acquire);
    if (fn != NULL)
        return fn;
    /* We are being called from libcasacpp_synthesis, so it is loaded: NOLOAD just gets a handle.
     * dlsym on that handle searches the library itself first, i.e. finds CASA's definition. */
    void *handle = dlopen(CASA_SYNTHESIS_LIB, RTLD_NOLOAD | RTLD_LAZY);
    void *sym = handle ? dlsym(handle, BRIGGS_CTOR_SYMBOL) : NULL;
    if (sym == NULL) /* e.g. a differently named library: the next definition after ours */
        sym = dlsym(RTLD_NEXT, BRIGGS_CTOR_SYMBOL);
    if (sym == NULL || sym == (void *)&pclean_briggs_ctor) {
        const char *err = dlerror();
        fprintf(stderr,
                "pclean fracbw shim: FATAL: cannot find the real constructor %s in %s (%s). "
                "This casatools build does not match the shim (built for casatools 6.7 on x86-64 "
                "Linux); rebuild casatools with patches/casatools-setweighting-fracbw.patch or "
                "do not use weighting='briggsbwtaper' with parallel cube imaging.\n",
                BRIGGS_CTOR_SYMBOL, CASA_SYNTHESIS_LIB,
                handle == NULL ? "library not loaded" : (err ? err : "symbol missing"));
        fflush(stderr);
        abort();
    }
    fn = (briggs_ctor_fn)sym;
    /* several threads may race here; they all store the same pointer */
    atomic_store_explicit(&real_ctor, fn, memory_order_release);
    return fn;
}

void pclean_briggs_ctor(void *self, const void *rmode, const void *noise, double robust,
                        const double *fracbw, int npixels, _Bool multifield)
{
    briggs_ctor_fn real = resolve_real_ctor();
    double casa_value = fracbw ? *fracbw : 0.0;
    double wanted = atomic_load(&fracbw_value);
    atomic_store(&last_casa_value, casa_value);
    atomic_fetch_add(&n_calls, 1);
    if (wanted > 0.0) {
        /* the real constructor takes fracBW by const reference: point it at our own copy */
        double substituted = wanted;
        atomic_fetch_add(&n_substitutions, 1);
        real(self, rmode, noise, robust, &substituted, npixels, multifield);
    } else {
        real(self, rmode, noise, robust, fracbw, npixels, multifield);
    }
}

/* ---- control interface (used from Python through ctypes) ---- */

void pclean_fracbw_set(double v)
{
    atomic_store(&fracbw_value, v > 0.0 ? v : 0.0);
}

double pclean_fracbw_get(void)
{
    return atomic_load(&fracbw_value);
}

long pclean_fracbw_substitutions(void)
{
    return atomic_load(&n_substitutions);
}

long pclean_fracbw_calls(void)
{
    return atomic_load(&n_calls);
}

double pclean_fracbw_last_casa_value(void)
{
    return atomic_load(&last_casa_value);
}

/* 1 if libcasacpp_synthesis.so.6 was already loaded when this library was loaded (too late to
 * interpose), 0 if not, -1 if unknown. */
int pclean_fracbw_loaded_after_casa(void)
{
    return atomic_load(&casa_loaded_before_shim);
}
