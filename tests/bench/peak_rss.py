"""Run a command and write its peak resident memory (KiB) to a file when it ends.

    python tests/bench/peak_rss.py OUT_FILE COMMAND [ARGS...]

Why a launcher rather than reading the child's rusage in the benchmark itself: Linux
gives a process that replaces its image (execve) the high-water mark of the address
space it had before, and a child started by subprocess (vfork or posix_spawn) had its
parent's. So `ru_maxrss` of a child of the benchmark can show the benchmark's own
memory. This launcher is a small process (the interpreter and subprocess, about 10 MiB):
the command's `ru_maxrss`, from os.wait4(), is its own peak unless that is under the
launcher's. The command's output goes where the launcher's goes; its exit status is
the launcher's.
"""

from __future__ import annotations

import os
import subprocess
import sys


def peak_kib(maxrss: int) -> int:
    return maxrss // 1024 if sys.platform == "darwin" else maxrss  # bytes on macOS, KiB elsewhere


def main() -> int:
    out_file, *command = sys.argv[1:]
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    with open(out_file, "w", encoding="ascii") as out:
        out.write(f"{peak_kib(usage.ru_maxrss)}\n")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
