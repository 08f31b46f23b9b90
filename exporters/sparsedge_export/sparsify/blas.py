"""Single-threaded BLAS for the many small solves of recovery.

OpenBLAS threads each call; for thousands of ~100x100 solves on a busy machine
the thread hand-off costs 10-20x the arithmetic. numpy's OpenBLAS exposes
``*openblas_set_num_threads*``; found through the loaded library list (no extra
dependency). If it is not found, nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
from typing import Iterator

__all__ = ["single_threaded_blas"]


def _openblas_controls():
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    getter.restype = ctypes.c_int
                    return setter, getter
    return None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    import numpy  # noqa: F401  (loads the BLAS library)

    controls = _openblas_controls()
    if controls is None:
        yield
        return
    setter, getter = controls
    previous = getter()
    setter(1)
    try:
        yield
    finally:
        setter(previous)
