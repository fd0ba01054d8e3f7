"""The two ways kernels are compiled.

Every kernel is ``@njit(cache=True, nogil=True)``: compiled once to the on-disk cache,
and free of the GIL so that threads search in parallel. A kernel that allocates nothing
is a :data:`leaf` kernel as well: it is compiled without Numba's reference counting.
Numba otherwise increments and decrements an atomic reference count for every array a
function receives (per call, for each array of a ``NamedTuple`` argument too); in the
per-document loop of the search that was measured at about a third of the time per
document. A leaf kernel must not allocate arrays (no ``np.empty``, no ``argsort``) and
must not return arrays; views (slices) are fine.
"""

from __future__ import annotations

from numba import njit

kernel = njit(cache=True, nogil=True)
leaf = njit(cache=True, nogil=True, _nrt=False)
