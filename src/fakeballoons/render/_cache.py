"""Numba's on-disk cache, told that the render kernels depend on every source file of this package.

Numba keys a cached function by its own source file only, but the CPU kernels inline device
functions from several files here (noise_device.py, general.py, shapes.py, fields.py): editing one
of those would leave stale machine code in use. This locator stamps every function of the package
with the hash of all of them. Imported first by the package, before any ``cache=True`` function is
defined. (With NUMBA_CACHE_DIR set, numba's own locator is used and the caveat applies.)
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@functools.cache
def _stamp() -> bytes:
    digest = hashlib.sha256()
    for path in sorted(_HERE.glob("*.py")) + [_HERE.parent / "noise.py"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


def _install() -> None:
    try:
        from numba.core import caching

        class PackageLocator(caching.InTreeCacheLocator):
            def get_source_stamp(self):
                return _stamp()

            @classmethod
            def from_function(cls, py_func, py_file):
                if Path(py_file).resolve().parent != _HERE:
                    return None
                return super().from_function(py_func, py_file)

        locators = caching.CacheImpl._locator_classes
        if not any(c.__name__ == "PackageLocator" for c in locators):
            locators.insert(1, PackageLocator)  # after NUMBA_CACHE_DIR's, before the in-tree one
    except (ImportError, AttributeError):  # another numba: its default (per-file) invalidation applies
        pass


_install()
