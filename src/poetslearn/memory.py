"""The process's memory: its peak, for the report, and handing freed memory back to the system.

Nothing here is Unix-only at import time: `resource` exists on Unix only, `malloc_trim` in glibc
only, and Windows answers through its own API; each is looked up when it is asked for.
"""

from __future__ import annotations

import ctypes
import sys

MIB = 1024 * 1024


def peak_memory_mb(platform: str = sys.platform) -> float | None:
    """The process's peak resident memory in MiB, or None where the system cannot say."""
    if platform == "win32":
        return _windows_peak_mb()
    if platform.startswith("linux"):
        high_water = _linux_high_water_mb()
        if high_water is not None:
            return high_water
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes; Linux and the BSDs report KiB.
    return peak / MIB if platform == "darwin" else peak / 1024


def _linux_high_water_mb() -> float | None:
    """VmHWM, the peak of this program's own memory. Linux carries ru_maxrss over an exec, so a
    process started by a large one (a benchmark's driver, a test run) would report its parent's
    peak as its own; VmHWM starts anew with the program."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _windows_peak_mb() -> float | None:
    """PeakWorkingSetSize from GetProcessMemoryInfo (psapi), the Windows analogue of ru_maxrss."""

    class Counters(ctypes.Structure):
        _fields_ = [("cb", ctypes.c_ulong), ("PageFaultCount", ctypes.c_ulong)] + [
            (name, ctypes.c_size_t)
            for name in (
                "PeakWorkingSetSize",
                "WorkingSetSize",
                "QuotaPeakPagedPoolUsage",
                "QuotaPagedPoolUsage",
                "QuotaPeakNonPagedPoolUsage",
                "QuotaNonPagedPoolUsage",
                "PagefileUsage",
                "PeakPagefileUsage",
            )
        ]

    try:
        windll = ctypes.WinDLL  # type: ignore[attr-defined]
        psapi, kernel32 = windll("psapi"), windll("kernel32")
    except (AttributeError, OSError):
        return None
    counters = Counters()
    counters.cb = ctypes.sizeof(counters)
    kernel32.GetCurrentProcess.restype = ctypes.c_void_p
    ok = psapi.GetProcessMemoryInfo(
        ctypes.c_void_p(kernel32.GetCurrentProcess()), ctypes.byref(counters), counters.cb
    )
    return counters.PeakWorkingSetSize / MIB if ok else None


def describe_peak_memory() -> str:
    peak = peak_memory_mb()
    return "peak memory unknown" if peak is None else f"peak memory {peak:,.0f} MB"


def return_freed_memory() -> None:
    """Hands memory that has been freed back to the system, where the C library kept it.

    glibc keeps freed blocks for reuse. Building an engine frees hundreds of MB of conversion
    buffers (440 MB for Inception V3's ONNX model) and running one leaves its arena behind; kept,
    they would count towards the run's peak memory until it ends.
    """
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to hand back
        return
    trim(0)
