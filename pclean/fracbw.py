"""Full-cube fracBW for briggsbwtaper on stock casatools (interface stub; see patches/README.md).

Interface used by the rest of pclean:
  preload()                 load the shim with RTLD_GLOBAL; called before casatools is imported
  require()                 raise a clear error if briggsbwtaper cannot be made exact here
  set_value(v)              the full-cube fracBW the shim substitutes (0 = pass CASA's through)
  substitutions() -> int    how many BriggsCubeWeightor constructions the shim has rewritten
  check_applied(before, value, setweighting) -> int
                            after makepsf: verify the value reached CASA, else raise
"""


def preload():
    pass


def require():
    raise RuntimeError("briggsbwtaper: the fracBW shim is not built yet")


def set_value(value):
    raise RuntimeError("briggsbwtaper: the fracBW shim is not built yet")


def substitutions():
    return 0


def check_applied(before, value, setweighting):
    raise RuntimeError("briggsbwtaper: the fracBW shim is not built yet")
