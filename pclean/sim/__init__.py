"""Simulated MeasurementSets, made offline with casatools.simulator (tests, demo, fuzzer).

    simulate  the demo's and the parity tests' simple cube MS
    spec      a varied dataset described (DataSpec); build writes it; draw draws one at random
    data      spec, build and draw in one namespace
"""
