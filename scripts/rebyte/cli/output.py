"""Everything the CLI shows: results on stdout, progress and messages on stderr.

Results go to stdout as JSON (JSON Lines for `batch` and `watch --json`), or with -q
as plain lines; progress, notes, warnings and errors go to stderr, one line each.
"""

from __future__ import annotations

import json
import os
import re  # already loaded by argparse: free at start-up
import sys

PROG = "rebyte_cli.py"  # the name errors start with


def _invocation() -> str:
    """The command line that runs this CLI, as the user (or agent) ran it, for advice and
    --help examples: `python3 /their/skill/scripts/rebyte_cli.py` is runnable from any folder."""
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) != PROG:
        return f"python3 scripts/{PROG}"
    if not re.fullmatch(r"[\w@%+=:,./-]+", script):
        script = "'" + script.replace("'", "'\"'\"'") + "'"
    return f"python3 {script}"


RUN = _invocation()


def _json_for_stdout(document, **options) -> str:
    """JSON as readable as stdout can show: non-ASCII characters as themselves where it
    can encode them, else escaped (still the same JSON), so that no result is lost."""
    text = json.dumps(document, ensure_ascii=False, **options)
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        text = json.dumps(document, ensure_ascii=True, **options)
    return text


class Output:
    """Where results, progress and messages go; the only code here that writes."""

    def __init__(self, *, quiet: bool, progress: bool) -> None:
        self.quiet = quiet
        self.progress_enabled = progress and not quiet
        self.tty = sys.stderr.isatty()
        self.color = self.tty and not os.environ.get("NO_COLOR")
        self._live = None

    def result(self, document, plain_lines=()) -> None:
        """One JSON document on stdout, or with -q the plain lines."""
        if self.quiet:
            for line in plain_lines:
                if line is not None:
                    print(line, flush=True)
        else:
            self.json_line(document)

    def json_line(self, document) -> None:
        print(_json_for_stdout(document, separators=(",", ":")), flush=True)

    def note(self, message: str) -> None:
        """A message for the person or agent watching stderr."""
        if not self.quiet:
            self._stderr(message)

    def error(self, message: str) -> None:
        self._stderr(f"{PROG}: error: {one_line(message)}")

    def warn(self, message: str) -> None:
        """A caution that even -q shows: the command goes on."""
        self._stderr(f"{PROG}: warning: {one_line(message)}")

    def progress(self, message: str) -> None:
        if self.progress_enabled:
            self._stderr(message)

    def live(self, render) -> LiveLine:
        """A line redrawn in place on a terminal; plain lines on change elsewhere."""
        self._live = LiveLine(self, render)
        return self._live

    def paint(self, text: str, color: str) -> str:
        codes = {"green": "32", "red": "31", "yellow": "33", "dim": "2", "bold": "1"}
        return f"\x1b[{codes[color]}m{text}\x1b[0m" if self.color else text

    def _stderr(self, message: str) -> None:
        live = self._live
        if live is not None:
            live.clear()
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


class LiveLine:
    """A status line: redrawn every half second on a terminal, printed on change elsewhere."""

    def __init__(self, output: Output, render) -> None:
        import threading
        import time

        self._output = output
        self._render = render
        self._time = time
        self._lock = threading.Lock()
        self._shown = False
        self._last_plain = None
        self._stop = threading.Event()
        self.started = time.monotonic()
        if output.progress_enabled and output.tty:
            threading.Thread(target=self._tick, daemon=True).start()

    def elapsed(self) -> str:
        seconds = int(self._time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def update(self) -> None:
        if not self._output.progress_enabled:
            return
        with self._lock:
            text = self._render(self)
            if self._output.tty:
                sys.stderr.write("\r\x1b[K" + text)
                self._shown = True
            elif text != self._last_plain:
                sys.stderr.write(text + "\n")
            self._last_plain = text
            sys.stderr.flush()

    def clear(self) -> None:
        with self._lock:
            if self._shown:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
                self._shown = False

    def close(self) -> None:
        self._stop.set()
        self.clear()
        if self._output._live is self:
            self._output._live = None

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self.update()


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def tab_line(*values) -> str:
    """One plain line of tab-separated values, each on one line with no tab inside."""
    return "\t".join(one_line("" if value is None else str(value)) for value in values)


def short_id(task_id: str) -> str:
    return task_id if len(task_id) <= 13 else task_id[:8] + "…"


def format_size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


# ------------------------------------------------------------------------ progress


class TransferBar:
    """Bytes moved per file, uploads and downloads alike (`verb`: "uploading", "downloading"):
    a bar with the rate redrawn in place on a terminal, a line per file elsewhere."""

    WIDTH = 24

    def __init__(self, out: Output, verb: str) -> None:
        import time

        self._time = time
        self._out, self._verb = out, verb
        self._name, self._done, self._total = None, 0, None
        self._started = self._drawn_at = 0.0
        self._line = None

    def start(self, name: str, total) -> None:
        """Say a file's transfer has begun, before its first bytes move (else the first
        update says so)."""
        if name != self._name:
            self._start(name, total)

    def update(self, name: str, done: int, total) -> None:
        self.start(name, total)
        self._done, self._total = done, total
        now = self._time.monotonic()
        if self._line is not None and (now - self._drawn_at >= 0.1 or done == total):
            self._drawn_at = now
            self._line.update()

    def carry(self, name: str, total, transfer):
        """Run `transfer(progress=...)` for one file with its bar shown, closed however it
        ends (before the caller says it is done)."""
        self.start(name, total)
        try:
            return transfer(progress=lambda done, size: self.update(name, done, size))
        finally:
            self.close()

    def close(self) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None

    def _start(self, name: str, total) -> None:
        self.close()
        self._name, self._started = name, self._time.monotonic()
        self._done, self._total = 0, total
        if self._out.progress_enabled and self._out.tty:
            self._line = self._out.live(self._render)
        else:
            size = f" ({format_size(total)})" if total is not None else ""
            self._out.progress(f"{self._verb} {name}{size}")

    def _render(self, line) -> str:
        elapsed = max(self._time.monotonic() - self._started, 1e-6)
        rate = f"  {format_size(self._done / elapsed)}/s"
        if not self._total:
            return f"{self._verb} {self._name} {format_size(self._done)}{rate}"
        filled = int(min(self._done / self._total, 1.0) * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        return (
            f"{self._verb} {self._name} [{bar}] {format_size(self._done)} / "
            f"{format_size(self._total)}{rate}"
        )
