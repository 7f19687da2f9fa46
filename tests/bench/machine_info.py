"""The machine a benchmark ran on, printed with its results (docs/benchmarks.md keeps both)."""

import os
import platform


def machine() -> str:
    """CPU model, cores and Python version, for the results table."""
    model = platform.processor() or "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"
