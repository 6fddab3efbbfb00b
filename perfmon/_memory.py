"""The process's peak resident memory, from the standard library where the platform has it.

On Linux, ``VmHWM`` from ``/proc/self/status``: the high-water mark of this process's own
memory. ``ru_maxrss`` is the fallback elsewhere; on Linux it is not used because it is kept
across ``exec``, so a generator started by a large parent (a test runner, a worker) would
report the parent's peak.
"""

from __future__ import annotations

import sys

try:
    import resource
except ImportError:  # Windows: no getrusage
    resource = None  # type: ignore[assignment]

_STATUS = "/proc/self/status"
# ru_maxrss is in kibibytes on Linux and the BSDs, in bytes on macOS.
_RU_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def peak_rss_bytes() -> int | None:
    """The highest resident memory of this process so far, in bytes; None if unknown."""
    if sys.platform.startswith("linux"):
        return _vm_hwm_bytes()
    if resource is None:
        return None
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (OSError, ValueError):
        return None
    return int(peak) * _RU_MAXRSS_UNIT if peak > 0 else None


def _vm_hwm_bytes() -> int | None:
    try:
        with open(_STATUS, encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # "VmHWM:   23528 kB"
    except (OSError, ValueError, IndexError):
        return None
    return None
