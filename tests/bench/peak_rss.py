"""Run a Python script as __main__ and write its peak resident memory (KiB) to a file at exit.

    python tests/tests/bench/peak_rss.py OUT_FILE SCRIPT [ARGS...]

Why measure from inside the process rather than from the parent:
`os.wait4()` or `getrusage(RUSAGE_CHILDREN)` report `ru_maxrss`, and Linux carries the
high-water mark of the address space a process had before exec() into it. A child started
with vfork()/posix_spawn() (what subprocess does) had the parent's address space, so its
ru_maxrss can show the benchmark's own memory. VmHWM in /proc/self/status belongs to the
address space made by exec(), so it is the script's own peak (plus this launcher, under
1 MiB). Where /proc is missing, ru_maxrss of RUSAGE_SELF is the fallback.
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys


def peak_kib() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere


def main() -> None:
    out_file, script, *args = sys.argv[1:]

    def record() -> None:
        with open(out_file, "w", encoding="ascii") as out:
            out.write(f"{peak_kib()}\n")

    atexit.register(record)
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python SCRIPT` would set it
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
