"""The commands behind rebyte_cli.py: arguments in, client calls, results out.

Results go to stdout as JSON (JSON Lines for `batch` and `watch --json`);
progress and messages go to stderr. Every HTTP detail lives in
rebyte_client.py beside this file. rebyte_cli.py is a small launcher, so that
this module's bytecode is cached between runs and start-up stays quick.
"""

from __future__ import annotations

import argparse
import json
import os
import re  # already loaded by argparse: free at start-up
import sys

SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
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

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_API = 5
EXIT_NETWORK = 6
EXIT_WAIT_TIMEOUT = 7
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug here, not a problem of the user's

REPEAT_WARNING_SECONDS = 300.0  # a repeated create within this of an unanswered one is warned of
MAX_PARALLEL_WAITS = 32  # tasks waited on at once; each mostly sleeps or listens
STATUS_FETCHES = 8  # task statuses `list` fetches at once (list entries carry none)
TASK_STATUSES = ("running", "completed", "failed", "canceled")

EPILOG = """\
exit codes:
  0    success (when waiting: the task completed)
  1    a waited task failed or was canceled, or a computer failed to provision
  2    bad usage or bad local input (nothing was sent), or a file to download exists
  3    missing or rejected API key, or an unsafe base URL
  4    not found (a task, computer, webhook or artifact)
  5    the API rejected the request (other 4xx, after retries), or an unsafe artifact name
  6    network or server failure after retries, or a create that may or may not have happened
  7    a wait timed out with the task still running
  70   an internal error of this CLI (a bug): run again with -v and report it
  130  interrupted (Ctrl-C; SIGTERM 143, SIGHUP 129); created tasks and computers keep running

environment:
  REBYTE_API_KEY   your API key (get one at https://app.rebyte.ai/settings/api-keys)
  REBYTE_BASE_URL  API base URL (default https://api.rebyte.ai/v1)
  NO_COLOR         no colors in progress output

stdout is JSON (one document; JSON Lines for batch and watch --json), or with -q
one plain line per result. Progress and errors go to stderr.
"""


class UsageError(Exception):
    """Bad arguments or local input, found before anything was sent (exit 2)."""


class TaskOutcome(Exception):
    """Ends a command with an exit code after its output was printed."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------ parsing


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point at --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = RUN + self.prog[len(PROG) :]  # self.prog: "rebyte_cli.py SUBCOMMAND"
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see `{command} --help`)\n")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help at the terminal's width, found as shutil.get_terminal_size() does but without
    importing shutil (and with it bz2, lzma, zlib and fnmatch): --help starts faster."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None, **kwargs):
        if width is None:
            try:
                columns = int(os.environ["COLUMNS"])
            except (KeyError, ValueError):
                columns = 0
            if columns <= 0:
                try:
                    columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
                except (AttributeError, ValueError, OSError):
                    columns = 0
            width = (columns or 80) - 2
        super().__init__(prog, indent_increment, max_help_position, width, **kwargs)


class _VersionAction(argparse.Action):
    """--version, importing the client (for its version) only when asked."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{PROG} {load_client_module().__version__}")
        parser.exit(EXIT_OK)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS:g} seconds (30 days)")
    return value


MAX_SECONDS = 30 * 24 * 3600.0  # the client's MAX_TIMEOUT_SECONDS


def _whole(low: int, high: int = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}: {text!r}")
        return value

    return parse


_TASK_URL = re.compile(r"https?://[^/?#]+/run/([^/?#]+)/?")


def _task_ref(text: str) -> str:
    """A task id, or the id inside a task's live URL (https://.../run/ID) as create prints it."""
    found = _TASK_URL.fullmatch(text.strip())
    return found.group(1) if found else text


def _add_global_options(parser: argparse.ArgumentParser, *, on_command: bool, timeout=True):
    """Global options are accepted before and after the command name.

    On a command or a group they default to SUPPRESS, so an option given
    before the command (`--base-url X computer list`, `computer --base-url X
    list`) is not overwritten by the unset copy of a level below it: argparse
    copies a sub-parser's defaults over its parent's values (how it merges
    them has changed between Python versions; SUPPRESS sets nothing in any).
    """
    unset = argparse.SUPPRESS if on_command else None
    flag_unset = argparse.SUPPRESS if on_command else False
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--base-url",
        default=unset,
        metavar="URL",
        help="API base URL (default: $REBYTE_BASE_URL or https://api.rebyte.ai/v1)",
    )
    if timeout:
        group.add_argument(
            "--timeout",
            type=_seconds,
            default=unset,
            metavar="SECONDS",
            help="time allowed for each API call, retries included",
        )
    group.add_argument(
        "--max-retries", type=_whole(0, 10), default=unset, metavar="N", help="retries (default 2)"
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", default=flag_unset, help="one plain line per result"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=flag_unset,
        help="log requests on stderr (key redacted)",
    )
    group.add_argument(
        "--no-progress", action="store_true", default=flag_unset, help="no progress on stderr"
    )


_GLOBAL_VALUE_OPTIONS = ("--base-url", "--timeout", "--max-retries")


def _add_prompt_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", "-p", help="what the agent should do")
    source.add_argument(
        "--prompt-file", metavar="PATH", help="read the prompt from a file (- for stdin)"
    )
    parser.add_argument(
        "--skills",
        nargs="+",
        action="extend",
        metavar="SKILL",
        help="skill slugs, e.g. deep-research pdf (also comma-separated)",
    )
    parser.add_argument(
        "--file",
        dest="files",
        action="append",
        metavar="PATH",
        help="upload this file and attach it (repeatable); it appears at /code/<name>",
    )
    parser.add_argument(
        "--file-ref",
        dest="file_refs",
        action="append",
        metavar="ID:FILENAME",
        help="attach a file uploaded earlier with `upload` (repeatable)",
    )


def _add_wait_options(parser: argparse.ArgumentParser, *, flags=("wait", "watch")) -> None:
    if "wait" in flags:
        parser.add_argument("--wait", action="store_true", help="wait until it finishes")
    if "watch" in flags:
        parser.add_argument(
            "--watch", action="store_true", help="show the agent's events until it finishes"
        )
    if flags:
        _add_wait_timeout(parser, "--wait-timeout")
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="first pause between polls; it grows to 10 s (default 2)",
    )


def _add_wait_timeout(parser: argparse.ArgumentParser, *names: str, verb: str = "wait") -> None:
    parser.add_argument(
        *names,
        dest="wait_timeout",
        type=_seconds,
        default=3600.0,
        metavar="SECONDS",
        help=f"how long to {verb} (default 3600)",
    )


def _create_arguments(create: argparse.ArgumentParser) -> None:
    _add_prompt_options(create)
    create.add_argument("--executor", help="opencode, claude, gemini or codex")
    create.add_argument("--model", help="model tier, e.g. lite")
    create.add_argument("--github-url", metavar="REPO", help="owner/repo or a github.com URL")
    create.add_argument("--branch", metavar="NAME", help="branch of the repo (default main)")
    where = create.add_mutually_exclusive_group()
    where.add_argument(
        "--workspace",
        "--workspace-id",
        "--computer",
        dest="workspace",
        metavar="ID",
        help="run in an existing workspace or Agent Computer (skips provisioning)",
    )
    where.add_argument(
        "--new-computer",
        action="store_true",
        help="create an Agent Computer, wait until it is ready, then run the task in it",
    )
    create.add_argument("--public", action="store_true", help="share it publicly once created")
    create.add_argument("--dry-run", action="store_true", help="print the request; send nothing")
    _add_wait_options(create)
    _add_download_option(create)


def _add_download_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--download",
        metavar="DIR",
        help="with --wait or --watch: download the task's artifacts into DIR once it ends",
    )


def _one_task_argument(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("task_id", metavar="TASK_ID", type=_task_ref)


def _many_tasks_argument(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("task_ids", nargs="+", metavar="TASK_ID", type=_task_ref)


def _list_arguments(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("--limit", type=_whole(1, 100), default=50, help="1 to 100 (default 50)")
    listing.add_argument("--offset", type=_whole(0), default=0, help="skip this many (default 0)")
    listing.add_argument("--all", action="store_true", help="every task, page by page")
    listing.add_argument(
        "--status",
        choices=TASK_STATUSES,
        help="only tasks with this status (with --all: among every task)",
    )
    listing.add_argument(
        "--no-status",
        action="store_true",
        help="no statuses: one request per page of up to 100 tasks; with statuses, each task"
        " whose entry has none (the API's list gives none) costs one more GET, 8 at once",
    )


def _follow_up_arguments(follow: argparse.ArgumentParser) -> None:
    _one_task_argument(follow)
    _add_prompt_options(follow)
    _add_wait_options(follow)
    _add_download_option(follow)
    add_workspace_option(follow, "with --download: ")


def add_workspace_option(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument(
        "--workspace",
        metavar="WORKSPACE_ID",
        help=f"{prefix}the task's workspace (its create answer's workspaceId), for a task "
        "this machine did not create: the API shows it nowhere else",
    )


def _wait_arguments(wait: argparse.ArgumentParser) -> None:
    _many_tasks_argument(wait)
    wait.add_argument("--prompt-id", help="wait for this prompt (one task only)")
    _add_wait_timeout(wait, "--timeout", "--wait-timeout")
    _add_wait_options(wait, flags=())


def _watch_arguments(watch: argparse.ArgumentParser) -> None:
    _one_task_argument(watch)
    watch.add_argument("--prompt-id", help="watch this prompt (default: the latest)")
    watch.add_argument("--json", action="store_true", help="events as JSON Lines on stdout")
    _add_wait_timeout(watch, "--wait-timeout", verb="watch")


def _result_arguments(result: argparse.ArgumentParser) -> None:
    _one_task_argument(result)
    result.add_argument("--prompt-id", help="the answer to this prompt (default: the latest)")


def _share_arguments(share: argparse.ArgumentParser) -> None:
    _one_task_argument(share)
    share.add_argument("--visibility", choices=("public", "shared", "private"), default="public")


def _upload_arguments(upload: argparse.ArgumentParser) -> None:
    upload.add_argument("paths", nargs="+", metavar="PATH")


def _batch_arguments(batch: argparse.ArgumentParser) -> None:
    batch.add_argument("spec_file", metavar="FILE", help="task specs (- for stdin)")
    batch.add_argument(
        "--concurrency", type=_whole(1, 32), default=4, help="creates at once (default 4)"
    )
    _add_wait_options(batch, flags=("wait",))


# ------------------------------------------------------------------ the command table


class Command:
    """One command, declared once: its path, help, examples, options and handler.

    `arguments(parser)` adds its own options; `handler(args, out, run)` runs it.
    `timeout=False` for a command whose own --timeout is not the global one;
    `destroys=True` gives it --yes (see `confirm`); `quiet` says what -q prints.
    """

    __slots__ = (
        "path", "help", "arguments", "handler", "examples", "timeout", "destroys", "quiet"
    )  # fmt: skip

    def __init__(self, path, help, arguments, handler, examples, timeout, destroys, quiet) -> None:
        self.path, self.help, self.arguments, self.handler = path, help, arguments, handler
        self.examples, self.timeout, self.destroys = examples, timeout, destroys
        self.quiet = quiet

    def epilog(self) -> str:
        quiet = f"with -q: {self.quiet}\n\n" if self.quiet else ""
        return quiet + "examples:\n" + "".join(f"  {line}\n" for line in self.examples)


COMMANDS = {}  # path (("create",) or ("computer", "create")) -> Command, in --help order
GROUPS = {}  # group word -> (one-line help, the module that declares its commands, or None)


def command(
    path, help, arguments, handler, *, examples, timeout=True, destroys=False, quiet=None
) -> Command:
    """Declare a command: a top-level one here, a group's in its own module."""
    path = tuple(path)
    if len(path) not in (1, 2) or (len(path) == 2 and path[0] not in GROUPS):
        raise ValueError(f"no group for command {path!r}: declare it with group() first")
    if len(path) == 1 and path[0] in GROUPS:
        raise ValueError(f"{path[0]!r} cannot be both a command and a group")
    if not examples:
        raise ValueError(f"command {path!r} needs an example for its --help")
    row = Command(path, help, arguments, handler, tuple(examples), timeout, destroys, quiet)
    COMMANDS[path] = row
    return row


def group(name: str, help: str, module=None) -> None:
    """Declare a group of commands (`computer create`); `module` (a name in scripts/) declares
    its rows and is imported only when a command line names the group."""
    if (name,) in COMMANDS:
        raise ValueError(f"{name!r} cannot be both a command and a group")
    GROUPS[name] = (help, module)


def load_group(name: str) -> None:
    """Import the module that declares a group's commands, once."""
    module = GROUPS[name][1]
    if module and module not in sys.modules:
        if SCRIPTS_DIR not in sys.path:
            sys.path.insert(0, SCRIPTS_DIR)
        import importlib

        importlib.import_module(module)


def command_path(argv) -> tuple:
    """The words of argv that name the command (and its group), global options skipped."""
    words, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--":
            break
        elif token.startswith("-"):  # --base-url X (or an abbreviation) takes the next word
            skip = "=" not in token and any(o.startswith(token) for o in _GLOBAL_VALUE_OPTIONS)
        else:
            words.append(token)
            if words[0] not in GROUPS or len(words) == 2:
                break
    return tuple(words)


def build_parser(path=None) -> argparse.ArgumentParser:
    """The parser; with a command `path`, only that command gets its options.

    The others keep their name and help, which is all that `--help` and an
    unknown command need: building every option of every command on each run
    would slow start-up for nothing. Without a path, every declared command
    gets its options (a group's module is imported only by `main`).
    """
    parser = _Parser(
        prog=PROG,
        description=(
            "Spawn cloud coding-agent tasks on Rebyte, watch them, "
            "and get their answers and files back."
        ),
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    _add_global_options(parser, on_command=False)
    commands = _add_commands(parser, "command")
    for row in COMMANDS.values():
        if len(row.path) == 1:
            _add_command(commands, row, path is None or path == row.path)
    for name, (help_text, _) in GROUPS.items():
        sub = commands.add_parser(
            name, help=help_text, description=help_text, formatter_class=_HelpFormatter
        )
        if path is None or path[:1] == (name,):
            _add_global_options(sub, on_command=True)
            verbs = _add_commands(sub, "verb")
            for row in COMMANDS.values():
                if row.path[0] == name and len(row.path) == 2:
                    _add_command(verbs, row, path is None or path == row.path)
    return parser


def _add_commands(parser: argparse.ArgumentParser, dest: str):
    commands = parser.add_subparsers(dest=dest, metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    return commands


def _add_command(commands, row: Command, with_options: bool) -> None:
    sub = commands.add_parser(
        row.path[-1],
        help=row.help,
        description=row.help,
        epilog=row.epilog(),
        formatter_class=_HelpFormatter,
    )
    if with_options:
        _add_global_options(sub, on_command=True, timeout=row.timeout)
        row.arguments(sub)
        if row.destroys:
            sub.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def chosen_command(args) -> Command:
    if args.command in GROUPS:
        return COMMANDS[(args.command, args.verb)]
    return COMMANDS[(args.command,)]


# ------------------------------------------------------------------------- output


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
        self._stderr(f"{PROG}: error: {_one_line(message)}")

    def warn(self, message: str) -> None:
        """A caution that even -q shows: the command goes on."""
        self._stderr(f"{PROG}: warning: {_one_line(message)}")

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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _tab_line(*values) -> str:
    """One plain line of tab-separated values, each on one line with no tab inside."""
    return "\t".join(_one_line("" if value is None else str(value)) for value in values)


def _short_id(task_id: str) -> str:
    return task_id if len(task_id) <= 13 else task_id[:8] + "…"


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


# ---------------------------------------------------------------------- the run


class Run:
    """What the command has done so far, so Ctrl-C can say what exists."""

    def __init__(self) -> None:
        import threading

        self.tasks = []  # (id, url) of tasks created or followed by this run
        self.creates_in_flight = 0
        self.followups_in_flight = 0
        self.computers = []  # ids of Agent Computers this run created: they outlive it
        self.computer_creates_in_flight = 0
        self._lock = threading.Lock()

    def sending(self, what: str) -> _InFlight:
        """Count a create or follow-up as in flight while it is sent (`with run.sending(...)`)."""
        return _InFlight(self, f"{what}s_in_flight")

    def remember_computer(self, computer_id: str) -> None:
        if computer_id and computer_id not in self.computers:
            self.computers.append(computer_id)

    def remember(self, task: dict) -> None:
        task_id, url = task.get("id"), task.get("url")
        if not task_id:
            return
        for index, (known_id, known_url) in enumerate(self.tasks):
            if known_id == task_id:
                if url and not known_url:  # learned its URL since (e.g. a wait's first poll)
                    self.tasks[index] = (task_id, url)
                return
        self.tasks.append((task_id, url))


class _InFlight:
    """Counts a request while it is sent. Ctrl-C leaves it counted: the server may still act."""

    def __init__(self, run: Run, counter: str) -> None:
        self._run, self._counter = run, counter

    def _add(self, step: int) -> None:
        with self._run._lock:
            setattr(self._run, self._counter, getattr(self._run, self._counter) + step)

    def __enter__(self) -> None:
        self._add(1)

    def __exit__(self, kind, error, trace) -> None:
        if kind is None or not issubclass(kind, KeyboardInterrupt):  # SIGTERM/SIGHUP too
            self._add(-1)


def load_client_module():
    """Import rebyte_client from beside this file (so the CLI runs from any directory)."""
    if SCRIPTS_DIR not in sys.path:
        sys.path.insert(0, SCRIPTS_DIR)
    import rebyte_client

    return rebyte_client


def make_client(args, *, concurrency: int = 0):
    """The client for the global options; `concurrency`: requests this command sends at once."""
    rc = load_client_module()
    if args.verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
        logger = logging.getLogger("rebyte")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    timeout = getattr(args, "timeout", None)
    return rc.RebyteClient(
        base_url=args.base_url,
        read_timeout=timeout,
        create_timeout=timeout,
        total_timeout=timeout,
        max_retries=args.max_retries,
        # A connection per concurrent request: a full pool would drop some, with a warning.
        pool_size=max(16, concurrency, MAX_PARALLEL_WAITS),
    )


def prompt_bytes_cap() -> int:
    """The most bytes a prompt can take: MAX_PROMPT_CHARS characters of up to 4 bytes."""
    return load_client_module().MAX_PROMPT_CHARS * 4


MAX_BATCH_FILE_BYTES = 16 * 1024 * 1024
MAX_TEXT_FILE_BYTES = 1024 * 1024  # any other text read from a file or stdin


def read_prompt(args) -> str:
    """The prompt from --prompt or --prompt-file (- for stdin), as text."""
    if args.prompt is not None:
        return args.prompt
    return read_text(args.prompt_file, "prompt file", prompt_bytes_cap())


def read_text(path: str, what: str, limit: int = MAX_TEXT_FILE_BYTES) -> str:
    """A UTF-8 text file, or stdin for `-`, of at most `limit` bytes (so /dev/zero or an
    endless pipe ends at once); each way it can fail is a one-line UsageError."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
        if len(data) > limit:
            shown = "stdin" if path == "-" else path
            raise UsageError(f"{what} is larger than {limit:,} bytes: {shown}")
    except FileNotFoundError:
        raise UsageError(f"no such {what}: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{what} is a directory: {path}") from None
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} is not UTF-8 text: {path}") from None


def split_skills(values):
    if not values:
        return None
    return [skill.strip() for value in values for skill in value.split(",") if skill.strip()]


def parse_file_refs(values) -> list:
    refs = []
    for value in values or ():
        file_id, sep, filename = value.partition(":")
        if not sep or not file_id.strip() or not filename.strip():
            raise UsageError(f"--file-ref takes ID:FILENAME as printed by `upload`, got {value!r}")
        # The name as printed, spaces kept: the API wants the exact name POST /v1/files gave.
        refs.append({"id": file_id.strip(), "filename": filename})
    return refs


def check_upload_paths(rc, paths) -> None:
    """Refuse every bad path before the first byte is uploaded."""
    for path in paths or ():
        rc.check_upload_path(path)


def upload_all(client, out: Output, paths) -> list:
    refs = []
    for path in paths or ():
        name = os.path.basename(path)
        size = os.path.getsize(path)
        bar = UploadBar(out, name, size)
        try:
            ref = client.files.upload(path, progress=bar.update)
        finally:
            bar.close()
        out.progress(f"uploaded {name} ({_size(size)}) as {ref['filename']}")
        refs.append({**ref, "path": path})
    return refs


def attach_files(client, out: Output, paths, refs) -> list:
    """Upload the paths; return every file reference to attach, the given ones first."""
    uploaded = upload_all(client, out, paths)
    return refs + [{"id": ref["id"], "filename": ref["filename"]} for ref in uploaded]


class UploadBar:
    """A byte bar with rate on a terminal; nothing per chunk elsewhere."""

    WIDTH = 24

    def __init__(self, out: Output, name: str, total: int) -> None:
        import time

        self._time = time
        self._out = out
        self._name = name
        self._total = total
        self._sent = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._line = out.live(self._render) if out.progress_enabled and out.tty else None
        if self._line is None:
            out.progress(f"uploading {name} ({_size(total)})")

    def update(self, sent: int, total: int) -> None:
        self._sent = sent
        now = self._time.monotonic()
        if self._line is not None and (now - self._drawn_at >= 0.1 or sent >= total):
            self._drawn_at = now
            self._line.update()

    def close(self) -> None:
        if self._line is not None:
            self._line.close()

    def _render(self, line) -> str:
        fraction = self._sent / self._total if self._total else 1.0
        filled = int(fraction * self.WIDTH)
        elapsed = max(self._time.monotonic() - self._started, 1e-6)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        return (
            f"uploading {self._name} [{bar}] {_size(self._sent)} / {_size(self._total)}"
            f"  {_size(self._sent / elapsed)}/s"
        )


# ---------------------------------------------------------------- waiting helpers


def _prompt_counts(task: dict):
    prompts = [p for p in task.get("prompts") or [] if isinstance(p, dict)]
    done = sum(1 for p in prompts if p.get("status") in ("succeeded", "failed", "canceled"))
    return done, len(prompts)


def _status_word(out: Output, status) -> str:
    color = {"completed": "green", "succeeded": "green", "failed": "red", "canceled": "yellow"}
    return out.paint(str(status), color.get(status, "bold"))


class WaitDisplay:
    """Shows what a wait sees: one live line for all tasks, or plain lines per change."""

    def __init__(self, out: Output, task_ids) -> None:
        self._out = out
        self._states = {task_id: None for task_id in task_ids}
        self._said = {}  # task id -> its last plain progress line
        self._line = out.live(self._render) if out.tty else None

    def seen(self, task: dict) -> None:
        self._states[task.get("id")] = task
        if self._line is not None:
            self._line.update()
        else:
            done, total = _prompt_counts(task)
            text = f"task {task.get('id')}: {task.get('status')} ({done}/{total} prompts done)"
            if self._said.get(task.get("id")) != text:  # a line per change, not per poll
                self._said[task.get("id")] = text
                self._out.progress(text)

    def close(self) -> None:
        if self._line is not None:
            self._line.close()

    def _render(self, line) -> str:
        tasks = [t for t in self._states.values() if t]
        if len(self._states) == 1 and tasks:
            task = tasks[0]
            done, total = _prompt_counts(task)
            return (
                f"{line.elapsed()}  task {_short_id(task.get('id', ''))} "
                f"{_status_word(self._out, task.get('status'))}  prompts {done}/{total}"
            )
        counts = {}
        for task in tasks:
            counts[task.get("status")] = counts.get(task.get("status"), 0) + 1
        summary = ", ".join(f"{n} {_status_word(self._out, s)}" for s, n in sorted(counts.items()))
        return f"{line.elapsed()}  {len(self._states)} tasks: {summary or 'starting'}"


def outcome_code(task: dict, prompt_id=None) -> int:
    """0 when the task (or that prompt) succeeded, 1 when it failed or was canceled."""
    if prompt_id:
        for prompt in task.get("prompts") or []:
            if isinstance(prompt, dict) and prompt.get("id") == prompt_id:
                return EXIT_OK if prompt.get("status") == "succeeded" else EXIT_TASK_FAILED
    return EXIT_OK if task.get("status") == "completed" else EXIT_TASK_FAILED


def answer_once(task: dict) -> dict:
    """The task with the agent's answer once, as `result`: the server's `finalResult` goes."""
    shown = dict(task)
    final = shown.pop("finalResult", None)
    if shown.get("result") is None and isinstance(final, str):
        shown["result"] = final
    return shown


def _without_answer(task: dict) -> dict:
    """The task without `finalResult`: it answers the latest prompt, maybe not the one waited on."""
    return {key: value for key, value in task.items() if key != "finalResult"}


def with_result(client, task: dict, prompt_id=None, settle=None) -> dict:
    """The task, plus `result` (the agent's answer) when the server has one.

    A prompt that succeeded with no answer anywhere in the API gets `"result": null`
    and `"resultAvailable": false`: the answer is only on the task's page, which is
    not the same as an empty answer (`"result": ""`). `settle`: the most seconds to
    spend waiting for an answer that lags its status (the client's default if None).
    """
    rc = load_client_module()
    options = {} if settle is None else {"settle": settle}
    try:
        answer = client.tasks.result(task["id"], prompt_id=prompt_id, **options)
    except rc.RebyteError:  # the answer is a bonus: failing to fetch it does not fail the task
        return _without_answer(task)
    task = _without_answer(task)  # its finalResult may answer an earlier prompt than prompt_id
    if answer is not None:
        return {**task, "result": answer}
    if outcome_code(task, prompt_id) == EXIT_OK:
        return {**task, "result": None, "resultAvailable": False}
    return task


def say_if_unavailable(out: Output, document: dict) -> None:
    """One stderr line where a finished task's answer cannot be had through the API."""
    if document.get("resultAvailable") is False:
        out.note(
            f"task {document.get('id')}: its answer is not available through the API; "
            f"read it on the task's page: {document.get('url')}"
        )


def wait_many(
    client, out: Output, run: Run, task_ids, *, prompt_id, timeout, interval, on_done=None
):
    """Wait for each task concurrently; return [(task_id, task or None, error or None)].

    `on_done(index, task_id, task, error)` is called as each task ends, in the order they end.
    """
    rc = load_client_module()
    display = WaitDisplay(out, task_ids)

    def seen(task: dict) -> None:
        run.remember(task)  # so that Ctrl-C can print the URL of a task given by id
        display.seen(task)

    import time

    deadline = time.monotonic() + timeout  # one deadline for all, however many wait at once

    def wait_one(task_id):
        try:
            task = client.tasks.wait(
                task_id,
                prompt_id=prompt_id,
                timeout=max(deadline - time.monotonic(), 0.001),
                poll_interval=interval,
                on_status=seen,
                use_events=True,  # one long request instead of a poll every few seconds
            )
        except rc.WaitTimeoutError as error:  # said with the time the user gave, not what was left
            status = (error.last_task or {}).get("status", "unknown")
            raise rc.WaitTimeoutError(
                f"timed out after {timeout:g}s waiting for task {task_id} (last status: {status})",
                task_id=task_id,
                prompt_id=prompt_id,
                last_task=error.last_task,
                last_error=error.last_error,
            ) from None
        run.remember(task)
        settle = min(client.result_settle, max(deadline - time.monotonic(), 0.0))
        return with_result(client, task, prompt_id, settle=settle)

    finished = [None] * len(task_ids)

    def settled(index: int, task, error) -> None:
        if task is None and isinstance(error, rc.WaitTimeoutError) and error.last_task:
            task = {**_without_answer(error.last_task), "timedOut": True}
        finished[index] = (task_ids[index], task, error)
        if on_done is not None:
            on_done(index, *finished[index])

    try:
        run_concurrently(wait_one, task_ids, concurrency=MAX_PARALLEL_WAITS, on_done=settled)
    finally:
        display.close()
    return finished


def run_concurrently(func, items, *, concurrency: int, on_done=None):
    """Run func over items in daemon threads; return [(result, error)] in order.

    Daemon threads and a polling join keep Ctrl-C responsive: the main
    thread never blocks in an uninterruptible wait.
    """
    import queue
    import threading

    items = list(items)
    results = [(None, None)] * len(items)
    todo = queue.Queue()
    for index, item in enumerate(items):
        todo.put((index, item))
    finished = queue.Queue()

    def worker():
        while True:
            try:
                index, item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = (func(item), None)
            except Exception as error:  # reported per item; the others go on
                outcome = (None, error)
            finished.put((index, outcome))

    for _ in range(max(1, min(concurrency, len(items)))):
        threading.Thread(target=worker, daemon=True).start()
    for _ in items:
        while True:
            try:
                index, outcome = finished.get(timeout=0.2)
                break
            except queue.Empty:
                continue
        results[index] = outcome
        if on_done is not None:
            on_done(index, *outcome)
    return results


def watch_events(
    client, out: Output, task_id: str, *, timeout: float, prompt_id=None, as_json=False
) -> dict:
    """Print the agent's events until the prompt ends; return the final task with its result.

    The `done` line of `--json` comes last, once the answer is known (it carries
    `result`, and `resultAvailable: false` where the API has none). When the time
    runs out, the task as it stands is printed before the timeout is raised.
    """
    rc = load_client_module()
    done = None
    events = client.tasks.events(task_id, prompt_id=prompt_id, timeout=timeout)
    try:
        for event in events:
            if event.get("eventType") == "done":
                done = event
            else:
                show_event(out, event, task_id, as_json)
    except rc.WaitTimeoutError as error:
        return report_wait_failure(out, None if as_json else client.tasks.get(task_id), error)
    task = agree_with_done(client.tasks.get(task_id), done, prompt_id)
    final = with_result(client, task, prompt_id)
    if done and done.get("finalResult") and not final.get("result"):
        final.pop("resultAvailable", None)
        final["result"] = done["finalResult"]
    if as_json:
        line = {**_without_answer(done or {"eventType": "done"}), "status": final.get("status")}
        line["result"] = final.get("result")
        if final.get("resultAvailable") is False:
            line["resultAvailable"] = False
        out.json_line(line)
    return final


def agree_with_done(task: dict, done, prompt_id=None) -> dict:
    """The task as the stream's `done` says it ended, when the read that follows still
    lags behind (says running): the done event is the news, the read only catches up.
    The done's status may be a task word (completed) or a prompt word (succeeded)."""
    rc = load_client_module()
    status = rc.task_status_of((done or {}).get("status"))
    if status not in ("completed", "failed", "canceled"):
        return task
    if prompt_id:
        prompt_status = {"completed": "succeeded"}.get(status, status)
        prompts = [
            {**p, "status": prompt_status}
            if isinstance(p, dict)
            and p.get("id") == prompt_id
            and p.get("status") not in ("succeeded", "failed", "canceled")
            else p
            for p in task.get("prompts") or []
        ]
        return {**task, "prompts": prompts}
    if task.get("status") in ("completed", "failed", "canceled"):
        return task
    return {**task, "status": status}


def show_event(out: Output, event: dict, task_id: str, as_json: bool) -> None:
    if as_json:
        out.json_line(event)
        return
    text = format_event(out, event, task_id)
    if text:
        out.note(text)


def _payload_text(payload) -> str:
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        for key in ("text", "message", "content", "question", "output", "result", "summary"):
            if isinstance(payload.get(key), str):
                return payload[key]
    return json.dumps(payload, ensure_ascii=False) if payload is not None else ""


def _clip(text: str, limit: int = 300) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_event(out: Output, event: dict, task_id: str) -> str:
    """One readable line for an agent event."""
    kind = event.get("eventType")
    payload = event.get("payload")
    if kind == "init":
        return out.paint("● agent started", "dim")
    if kind == "thinking":
        return out.paint(f"… {_clip(_payload_text(payload))}", "dim")
    if kind == "tool_use":
        tool = payload.get("tool") or payload.get("name") if isinstance(payload, dict) else None
        given = payload.get("input") if isinstance(payload, dict) else payload
        shown = (
            _payload_text(given)
            if not isinstance(given, dict)
            else " ".join(str(v) for v in given.values())
        )
        return f"→ {tool or 'tool'}: {_clip(shown, 200)}"
    if kind == "tool_result":
        shown = _clip(_payload_text(payload), 200)
        return out.paint(f"← {shown}", "dim") if shown else ""
    if kind == "text":
        return _payload_text(payload)
    if kind == "result":
        if isinstance(payload, dict) and payload.get("isError"):
            reason = payload.get("error") or payload.get("message") or "no reason given"
            return out.paint("✘ failed: ", "red") + _clip(str(reason), 2000)
        return out.paint("✔ result: ", "green") + _clip(_payload_text(payload), 2000)
    if kind == "polling":
        return out.paint("(the server has no event stream for this task: polling it)", "dim")
    if kind == "status":
        prompts = event.get("prompts") or []
        done = sum(1 for status in prompts if status in ("succeeded", "failed", "canceled"))
        return out.paint(f"status: {event.get('status')} ({done}/{len(prompts)} prompts)", "dim")
    if kind == "ask_user_question":
        question = _payload_text(payload)
        return (
            out.paint("? the agent asks: ", "yellow")
            + _one_line(question)
            + f'\n  answer with: {RUN} follow-up {task_id} --prompt "..."'
        )
    return f"[{kind}] {_clip(_payload_text(payload))}"


# ----------------------------------------------------------------------- commands


def plan_task(rc, prompt: str, *, paths, refs, **options) -> dict:
    """Check a task whole before anything is uploaded or created; return its plan.

    `options` are create_task's keywords. The plan's `body` is the request as it
    will be sent, with each file still to upload standing in for its reference.
    """
    check_upload_paths(rc, paths)
    planned = refs + [
        {"id": f"<upload of {path}>", "filename": os.path.basename(path)} for path in paths
    ]
    body = rc.Tasks.body(prompt, files=planned or None, **options)
    return {"prompt": prompt, "paths": list(paths), "refs": refs, "options": options, "body": body}


def create_planned(client, out: Output, run: Run, plan: dict) -> dict:
    """Upload the plan's files, then create its task (counted as in flight while it is sent).

    The create is written to the local record before it is sent and completed when
    its answer comes, so that neither its id nor its workspace can be lost.
    """
    from rebyte import record  # here: `--help` and the other commands need none of it

    files = attach_files(client, out, plan["paths"], plan["refs"])
    workspace = plan["options"].get("workspace_id")
    if workspace:
        out.progress(f"creating the task in workspace {workspace}")
    else:
        out.progress("creating the task (provisioning its VM can take a while)")
    host = api_host(client)
    fingerprint = record.prompt_fingerprint(plan["prompt"])
    warn_if_repeated(out, host, fingerprint["promptHash"])
    options = plan["options"]
    with run.sending("create"):
        task = send_recorded(
            lambda: client.tasks.create(plan["prompt"], files=files or None, **options),
            "task",
            host,
            **fingerprint,
            batch=plan.get("name"),
            workspaceId=workspace,
            executor=options.get("executor"),
            model=options.get("model"),
        )
    run.remember(task)
    return task


def send_recorded(send, kind: str, host: str, **fields) -> dict:
    """Run a create with its pending line written first, then completed by its answer (or
    marked failed when it certainly made nothing; an unknown outcome stays pending)."""
    from rebyte import record

    rc = load_client_module()
    ref = record.begin(kind, host, **fields)
    try:
        made = send()
    except rc.RebyteError as error:
        if certainly_not_sent(rc, error):
            record.failed(ref, kind)
        raise
    record.created(ref, kind, made)
    return made


def workspace_for(client, target: str, given=None) -> str:
    """The workspace of a task (or a workspace id itself): `given` (--workspace, or the
    create answer the command holds), else the local record, else the task view; a task
    whose workspace none of them knows is a WorkspaceUnknownError (see explain)."""
    from rebyte import record

    rc = load_client_module()
    if given:
        return rc.check_id(given, "workspace id")
    return client.tasks.workspace_of(target, known=record.workspace_of(target))


def api_host(client) -> str:
    import urllib.parse

    return urllib.parse.urlsplit(client.base_url).hostname or ""


def certainly_not_sent(rc, error: BaseException) -> bool:
    """Did this error leave the server with nothing made? (Unknown outcomes did not.)"""
    if isinstance(error, rc.OutcomeUnknownError):
        return False
    if isinstance(error, rc.APIConnectionError):
        return not error.maybe_sent
    return isinstance(error, (rc.InputError, rc.ConfigurationError, rc.APIError))


def warn_if_repeated(out: Output, host: str, prompt_hash: str) -> None:
    """Say so before a create that repeats one from this machine whose answer never came."""
    from rebyte import record

    earlier = record.unanswered_like(host, prompt_hash, REPEAT_WARNING_SECONDS)
    if earlier:
        out.warn(
            f"the same prompt was sent from here at {earlier[0].get('at')} and no "
            f"answer came back: it may have created a task. See `{RUN} recent` (sending anyway)"
        )


def cmd_create(args, out: Output, run: Run) -> int:
    rc = load_client_module()
    wait_options = waiting(args)  # its checks come before anything is sent
    plan = plan_task(
        rc,
        read_prompt(args),
        paths=args.files or (),
        refs=parse_file_refs(args.file_refs),
        executor=args.executor,
        model=args.model,
        skills=split_skills(args.skills),
        github_url=args.github_url,
        branch_name=args.branch,
        workspace_id=NEW_COMPUTER if args.new_computer else args.workspace,
    )
    client = make_client(args)
    if args.dry_run:
        request = client.describe_request("POST", "/tasks", plan["body"])
        document = {"dryRun": True, "uploads": plan["paths"], "request": request}
        if args.new_computer:
            document["computerRequest"] = client.describe_request("POST", "/agent-computers", {})
        out.result(document)
        return EXIT_OK
    if args.new_computer:
        # Named after its task, so that `computer list` says what it was made for.
        computer = create_computer(client, out, run, name=" ".join(plan["prompt"].split())[:60])
        wait_for_computer(
            client, out, computer["id"], timeout=COMPUTER_WAIT_TIMEOUT, interval=args.interval
        )
        plan = {**plan, "options": {**plan["options"], "workspace_id": computer["id"]}}
    task = create_planned(client, out, run, plan)
    out.note(f"task {task['id']} is running: {task.get('url')}")
    if args.public:
        shared = client.tasks.set_visibility(task["id"], "public")
        task = {**task, "visibility": shared.get("visibility"), "shareUrl": shared.get("shareUrl")}
        out.note(f"shared publicly: {shared.get('shareUrl')}")
    asked = {key: value for key, value in (("executor", args.executor), ("model", args.model))}
    asked = {key: value for key, value in asked.items() if value}
    return finish_with_wait(
        client, out, run, task, prompt_id=None, asked=asked or None, **wait_options
    )


NEW_COMPUTER = "<new computer>"  # the workspace of `create --new-computer`, before it exists
COMPUTER_WAIT_TIMEOUT = 600.0


def create_computer(client, out: Output, run: Run, *, name=None, icon=None) -> dict:
    """Create an Agent Computer and say its id on stderr at once, even with -q: it
    outlives this command, so an interrupted run must leave nothing unknown."""
    with run.sending("computer_create"):
        computer = send_recorded(
            lambda: client.computers.create(name=name, icon=icon),
            "computer",
            api_host(client),
            name=name,
        )
    run.remember_computer(computer["id"])
    out._stderr(
        f"computer {computer['id']} created ({computer.get('status')}); it keeps existing "
        f"until deleted: {RUN} computer delete {computer['id']} --yes"
    )
    return computer


def wait_for_computer(client, out: Output, computer_id: str, *, timeout, interval=2.0) -> dict:
    """Wait until the computer is ready (ProvisionError if it ends in error)."""

    def seen(computer: dict) -> None:
        out.progress(f"computer {computer_id}: {computer.get('status')}")

    return client.computers.wait(
        computer_id, timeout=timeout, poll_interval=interval, on_status=seen
    )


def waiting(args) -> dict:
    """How `create` and `follow-up` were asked to wait, as finish_with_wait's keywords."""
    if args.download is not None:
        if not (args.wait or args.watch):
            raise UsageError("--download needs --wait or --watch (the files come when it ends)")
        if os.path.exists(args.download) and not os.path.isdir(args.download):
            raise UsageError(f"--download {args.download} is not a folder")
    return {
        "wait": args.wait,
        "watch": args.watch,
        "timeout": args.wait_timeout,
        "interval": args.interval,
        "download": args.download,
    }


def finish_with_wait(
    client,
    out: Output,
    run: Run,
    task: dict,
    *,
    prompt_id,
    wait,
    watch,
    timeout,
    interval,
    download=None,
    workspace_id=None,
    asked=None,
) -> int:
    """Print the task, after waiting or watching when asked; return the exit code.

    With `download`, the workspace's artifacts are fetched into that folder once the
    task ends, and their local paths join the result as "artifacts". The workspace is
    `workspace_id`, else the create answer's (`task`), else as workspace_for finds it.
    `asked`: the executor and model the user asked for, checked against what runs.
    """
    if not (wait or watch):
        task = _without_answer(task)
        if asked:
            task = {**task, **what_runs(client, out, task, asked)}
        out.result(task, [task.get("url")])
        return EXIT_OK
    if watch:
        final = watch_events(client, out, task["id"], timeout=timeout, prompt_id=prompt_id)
    else:
        [(task_id, final, error)] = wait_many(
            client,
            out,
            run,
            [task["id"]],
            prompt_id=prompt_id,
            timeout=timeout,
            interval=interval,
        )
        if error is not None:
            return report_wait_failure(out, final, error)
    merged = {**_without_answer(task), **final}
    if asked:
        merged.update(what_runs(client, out, merged, asked))
    fetched = EXIT_OK
    if download is not None:
        load_group("artifacts")
        from rebyte_cmd_artifacts import fetch_artifacts

        files, _, fetched = fetch_artifacts(
            client,
            out,
            merged["id"],
            None,
            download,
            workspace_id=workspace_id or task.get("workspaceId"),
            overwrite=False,
            replace_hint=f"use `{RUN} artifacts download {merged['id']} NAME --overwrite` "
            "to replace it, or another --download folder",
            existing_is_error=False,
        )
        merged["artifacts"] = files
    out.result(merged, [_answer_or_url(merged)])
    say_if_unavailable(out, merged)
    code = worst_exit([outcome_code(merged, prompt_id), fetched])
    if code != EXIT_OK:
        out.note(f"task {merged['id']} ended {merged.get('status')}: {merged.get('url')}")
    return code


def what_runs(client, out: Output, task: dict, asked: dict) -> dict:
    """The executor and model the task runs with, beside those asked for (`requested`).

    The service may ignore both, and only the task view says what runs: it is read
    once when `task` (a create answer) does not show it, and a difference is said on
    stderr.
    """
    rc = load_client_module()
    view = task
    if not all(key in task for key in asked):
        try:
            view = client.tasks.get(task["id"])
        except rc.RebyteError:  # only a check: the task exists and runs either way
            return {"requested": asked}
    runs = {key: view.get(key) for key in asked if isinstance(view.get(key), str)}
    differ = {key: value for key, value in runs.items() if value != asked[key]}
    if differ:
        said = ", ".join(f"{key} {asked[key]}" for key in differ)
        shown = ", ".join(f"{key} {value}" for key, value in differ.items())
        out.note(f"task {task.get('id')}: asked for {said}, but it runs with {shown}")
    return {**runs, "requested": asked}


def _answer_or_url(task: dict):
    """What -q prints for a waited task: the answer, or its URL when there is none."""
    answer = task.get("result")
    return answer if isinstance(answer, str) and answer.strip() else task.get("url")


def report_wait_failure(out: Output, last_task, error) -> int:
    """Print what is known of a task whose wait ended without an outcome, and re-raise.

    With -q nothing goes to stdout: `ANSWER=$(... --wait -q)` must not take the URL
    for an answer. The error on stderr names the URL instead (see explain).
    """
    if last_task is not None:
        last_task = _without_answer(last_task)
        if getattr(error, "last_task", False) is None:  # a timeout that saw no task
            error.last_task = last_task
        if not out.quiet:
            out.result(last_task)
    raise error


def cmd_get(args, out: Output, run: Run) -> int:
    task = answer_once(make_client(args).tasks.get(args.task_id))
    out.result(task, [task.get("url")])
    return EXIT_OK


def cmd_list(args, out: Output, run: Run) -> int:
    if args.no_status and args.status:
        raise UsageError("--status needs the statuses: drop --no-status")
    client = make_client(args, concurrency=STATUS_FETCHES)
    if args.all:
        tasks = list(client.tasks.iter())
        page = {"data": tasks, "total": len(tasks)}
    else:
        page = client.tasks.list(limit=args.limit, offset=args.offset)
    tasks = [task for task in page["data"] if isinstance(task, dict)]
    if not args.no_status:
        tasks = with_statuses(client, tasks)
        if args.status:
            tasks = [task for task in tasks if task.get("status") == args.status]
    page = {**page, "data": tasks}
    if args.all:
        page["total"] = len(tasks)
    plain = [_tab_line(t.get("id"), t.get("status") or "-", t.get("title")) for t in tasks]
    out.result(page, plain)
    return EXIT_OK


def with_statuses(client, tasks: list) -> list:
    """Each task with its `status`: the entry's own, else one GET per task, a few at once.

    A task deleted between the listing and its GET is left out: it no longer exists.
    """
    rc = load_client_module()
    missing = [
        i
        for i, task in enumerate(tasks)
        if not isinstance(task.get("status"), str) and isinstance(task.get("id"), str)
    ]

    def status_of(index: int):
        try:
            status = client.tasks.get(tasks[index]["id"]).get("status")
        except rc.InputError:  # an id the server sent that no request path can hold
            return None
        return status if isinstance(status, str) else None

    outcomes = run_concurrently(status_of, missing, concurrency=STATUS_FETCHES)
    statuses, gone = {}, set()
    for index, (status, error) in zip(missing, outcomes):
        if isinstance(error, rc.NotFoundError):
            gone.add(index)
        elif error is not None:
            raise error
        elif status is not None:
            statuses[index] = status
    return [
        {**task, "status": statuses[i]} if i in statuses else task
        for i, task in enumerate(tasks)
        if i not in gone
    ]


def cmd_follow_up(args, out: Output, run: Run) -> int:
    rc = load_client_module()
    wait_options = waiting(args)  # its checks come before anything is sent
    task_id, prompt, paths = args.task_id, read_prompt(args), args.files
    skills = split_skills(args.skills)
    rc.check_task_id(task_id)
    rc.check_prompt(prompt)
    check_upload_paths(rc, paths)
    refs = parse_file_refs(args.file_refs)
    client = make_client(args)
    run.remember({"id": task_id})  # so that Ctrl-C names it, URL or not
    files = attach_files(client, out, paths, refs)
    with run.sending("followup"):
        answer = client.tasks.follow_up(task_id, prompt, skills=skills, files=files or None)
    prompt_id = answer["promptId"]
    task = client.tasks.get(task_id)
    run.remember(task)
    out.note(f"follow-up {prompt_id} sent to task {task_id}: {task.get('url')}")
    summary = {**task, "promptId": prompt_id}
    return finish_with_wait(
        client,
        out,
        run,
        summary,
        prompt_id=prompt_id,
        workspace_id=args.workspace,
        **wait_options,
    )


def cmd_wait(args, out: Output, run: Run) -> int:
    task_ids, prompt_id = args.task_ids, args.prompt_id
    if prompt_id and len(task_ids) > 1:
        raise UsageError("--prompt-id goes with a single TASK_ID")
    rc = load_client_module()
    for task_id in task_ids:
        rc.check_task_id(task_id)
    client = make_client(args)
    for task_id in task_ids:
        run.remember({"id": task_id})
    finished = wait_many(
        client,
        out,
        run,
        task_ids,
        prompt_id=prompt_id,
        timeout=args.wait_timeout,
        interval=args.interval,
    )
    documents = [task if task is not None else {"id": task_id} for task_id, task, _ in finished]
    errors = [error for _, _, error in finished if error is not None]
    if len(documents) == 1:
        document = documents[0]
        if errors:
            return report_wait_failure(out, finished[0][1], errors[0])
    else:
        for (task_id, _, error), doc in zip(finished, documents):
            if error is not None:
                doc["error"] = _one_line(str(error))
                out.error(f"task {task_id}: {error}")
        document = documents
    if len(documents) == 1:
        plain = [_answer_or_url(documents[0])]
    else:  # several answers, one line each: `id<TAB>status<TAB>answer or URL`
        plain = [_tab_line(d["id"], d.get("status"), _answer_or_url(d)) for d in documents]
    out.result(document, plain)
    for doc in documents:
        say_if_unavailable(out, doc)
    if errors:
        return worst_exit([exit_code_for(rc, e) for e in errors])
    return worst_exit([outcome_code(doc, prompt_id) for doc in documents])


def cmd_watch(args, out: Output, run: Run) -> int:
    task_id, prompt_id, as_json = args.task_id, args.prompt_id, args.json
    client = make_client(args)
    run.remember({"id": task_id})
    run.remember(client.tasks.get(task_id))  # its URL, for Ctrl-C; 404 before streaming
    final = watch_events(
        client,
        out,
        task_id,
        timeout=args.wait_timeout,
        prompt_id=prompt_id,
        as_json=as_json,
    )
    if not as_json:
        out.result(final, [_answer_or_url(final)])
    say_if_unavailable(out, final)
    return outcome_code(final, prompt_id)


def cmd_result(args, out: Output, run: Run) -> int:
    task_id, prompt_id = args.task_id, args.prompt_id
    client = make_client(args)
    task = client.tasks.get(task_id)
    status = task.get("status")
    if prompt_id:
        matches = [p for p in task.get("prompts") or [] if p.get("id") == prompt_id]
        if not matches:
            raise UsageError(f"task {task_id} has no prompt {prompt_id}")
        status = {"succeeded": "completed"}.get(matches[0].get("status"), matches[0].get("status"))
    if status in ("running", "pending"):
        out.result({"id": task["id"], "url": task.get("url"), "status": status, "result": None}, [])
        raise TaskOutcome(
            EXIT_WAIT_TIMEOUT,
            f"task {task_id} is still running; wait for it with: {RUN} wait {task_id}",
        )
    answer = client.tasks.result(task_id, prompt_id=prompt_id)
    document = {"id": task["id"], "url": task.get("url"), "status": status, "result": answer}
    if prompt_id:
        document["promptId"] = prompt_id
    if answer is None and status == "completed":
        document["resultAvailable"] = False
    out.result(document, [answer] if answer is not None else [])
    if status != "completed":
        raise TaskOutcome(EXIT_TASK_FAILED, f"task {task_id} {status}: {task.get('url')}")
    say_if_unavailable(out, document)
    return EXIT_OK


def cmd_cancel(args, out: Output, run: Run) -> int:
    client = make_client(args)
    answer = client.tasks.cancel(args.task_id)
    document = {"id": args.task_id, **answer}
    if not isinstance(document.get("status"), str):  # the answer's shape is undocumented
        document["status"] = client.tasks.get(args.task_id).get("status")
    out.result(document, [document.get("status")])
    return EXIT_OK


def cmd_share(args, out: Output, run: Run) -> int:
    answer = make_client(args).tasks.set_visibility(args.task_id, args.visibility)
    document = {"id": args.task_id, **answer}
    out.result(document, [answer.get("shareUrl") or answer.get("visibility")])
    return EXIT_OK


def cmd_upload(args, out: Output, run: Run) -> int:
    rc = load_client_module()
    check_upload_paths(rc, args.paths)
    refs = upload_all(make_client(args), out, args.paths)
    document = refs[0] if len(refs) == 1 else refs
    out.result(document, [f"{ref['id']}:{ref['filename']}" for ref in refs])
    return EXIT_OK


def confirm(question: str, *, yes: bool) -> None:
    """Go on only when the user said so: --yes, or `y` to a question on the terminal.

    Off a terminal, without --yes, refuse before anything is sent, as gh's
    `repo delete` does: an agent never runs interactively, so it must confirm
    with its user and then say --yes.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            "--yes required when not running interactively: confirm with the user, then pass --yes"
        )
    sys.stderr.write(f"{question}? [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise TaskOutcome(EXIT_USAGE, "not confirmed; nothing was sent")


def _recent_arguments(recent: argparse.ArgumentParser) -> None:
    recent.add_argument(
        "--limit", type=_whole(1, 1000), default=20, help="the newest N creates (default 20)"
    )
    recent.add_argument(
        "--offline",
        action="store_true",
        help="only the local record: do not ask the server about creates that got no answer",
    )


CANDIDATE_CLOCK_SKEW = 120.0  # seconds a server's createdAt may run ahead of ours


def cmd_recent(args, out: Output, run: Run) -> int:
    """What this machine created lately (the local record), and, for each create whose
    answer never came, the tasks the server shows created since: maybe its task."""
    from rebyte import record

    entries = record.creates()[: args.limit]
    client = None if args.offline else make_client(args)
    host = api_host(client) if client is not None else None
    pending = [
        e
        for e in entries
        if e.get("state") == "pending" and e.get("kind") == "task" and e.get("host") == host
    ]
    if pending:
        known = {e.get("id") for e in record.creates() if e.get("id")}
        page = client.tasks.list(limit=100)["data"]
        listed = [t for t in page if isinstance(t, dict) and t.get("id") not in known]
        for entry in pending:
            entry["candidates"] = candidates_for(entry, listed)
    plain = []
    for entry in entries:
        plain.append(
            _tab_line(
                entry.get("at"),
                entry.get("state"),
                entry.get("id") or "-",
                entry.get("url") or "-",
                entry.get("prompt") or entry.get("name") or "-",
            )
        )
        for task in entry.get("candidates") or ():
            plain.append(
                _tab_line(
                    task.get("createdAt"),
                    "maybe",
                    task.get("id"),
                    task.get("url") or "-",
                    task.get("title") or "-",
                )
            )
    if not record.enabled():
        out.note(f"the local record is off ({record.RECORD_ENV}): nothing new is written")
    out.result({"data": entries, "record": record.record_path()}, plain)
    return EXIT_OK


def candidates_for(entry: dict, tasks: list) -> list:
    """The listed tasks created since a create was sent: those whose title starts like its
    prompt first (`match: "title"`), then the others by time (`match: "time"`)."""
    from rebyte import record

    sent = record.parse_iso(entry.get("at"))
    if sent is None:
        return []
    start = _comparable(entry.get("prompt"))
    found = []
    for task in tasks:
        created = record.parse_iso(task.get("createdAt"))
        if created is None or created < sent - CANDIDATE_CLOCK_SKEW:
            continue
        title = _comparable(task.get("title"))
        alike = bool(start and title) and (start.startswith(title) or title.startswith(start))
        shown = {key: task.get(key) for key in ("id", "url", "title", "createdAt")}
        found.append({**shown, "match": "title" if alike else "time"})
    return sorted(found, key=lambda t: t["match"] != "title")


def _comparable(text) -> str:
    """A prompt's start or a title, as the two are compared: lower case, spaces folded,
    the first 24 characters (a title is often the prompt's first words)."""
    return " ".join(str(text or "").lower().split())[:24]


def cmd_delete(args, out: Output, run: Run) -> int:
    task_ids, yes = args.task_ids, args.yes
    rc = load_client_module()
    for task_id in task_ids:
        rc.check_task_id(task_id)
    what = f"task {task_ids[0]}" if len(task_ids) == 1 else f"{len(task_ids)} tasks"
    confirm(f"delete {what}", yes=yes)
    return delete_many(rc, out, task_ids, make_client(args).tasks.delete, "task")


def delete_many(rc, out: Output, ids, delete, noun: str) -> int:
    """`delete(id)` for each id, the others going on when one fails; print what was deleted.

    One id: its error is raised (one line, its exit code). Several: each failure is
    reported in its entry and on stderr, and the worst exit code is returned.
    """
    documents, errors = [], []
    for item_id in ids:
        try:
            delete(item_id)
            documents.append({"id": item_id, "deleted": True})
        except rc.RebyteError as error:
            if len(ids) == 1:
                raise
            errors.append(error)
            out.error(f"{noun} {item_id}: {explain(rc, error)}")
            documents.append({"id": item_id, "deleted": False, "error": _one_line(str(error))})
    out.result(
        documents[0] if len(documents) == 1 else documents,
        [doc["id"] for doc in documents if doc["deleted"]],
    )
    return worst_exit([exit_code_for(rc, e) for e in errors])


# ------------------------------------------------------------------------- batch

BATCH_FIELDS = {
    "prompt": "prompt",
    "prompt_file": "prompt_file",
    "promptFile": "prompt_file",
    "skills": "skills",
    "executor": "executor",
    "model": "model",
    "files": "files",
    "github_url": "github_url",
    "githubUrl": "github_url",
    "branch": "branch",
    "branch_name": "branch",
    "branchName": "branch",
    "workspace": "workspace",
    "workspace_id": "workspace",
    "workspaceId": "workspace",
    "public": "public",
    "name": "name",
}


def load_batch_specs(path: str) -> list:
    """Task specs from a JSON array, JSON Lines or YAML (when PyYAML is installed)."""
    specs = _parse_specs(read_text(path, "batch file", MAX_BATCH_FILE_BYTES), path)
    if isinstance(specs, dict):  # one object (a JSON Lines file of one line, say): one spec
        specs = [specs]
    if not isinstance(specs, list) or not specs:
        raise UsageError(f"batch file {path} holds no task specs (expected a list of objects)")
    return specs


def _parse_specs(text: str, path: str):
    stripped = text.strip()
    if not stripped:
        return []
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    lines = [line for line in stripped.splitlines() if line.strip()]
    try:
        return [json.loads(line) for line in lines]
    except ValueError:
        pass
    try:
        import yaml
    except ImportError:
        raise UsageError(
            f"batch file {path} is not valid JSON or JSON Lines (YAML needs PyYAML installed)"
        ) from None
    try:
        return yaml.load(stripped, Loader=_yaml_loader_without_aliases(yaml))  # noqa: S506
    except _AliasRefused as refused:
        raise UsageError(
            f"batch file {path}: YAML aliases are not allowed (line {refused.line}); "
            "write each value out"
        ) from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise UsageError(f"batch file {path} is not valid JSON, JSON Lines or YAML{at}") from None


class _AliasRefused(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _yaml_loader_without_aliases(yaml):
    """yaml.SafeLoader that refuses `*alias` while composing: an alias bomb of a few
    hundred bytes would otherwise stand for billions of values."""

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                raise _AliasRefused(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)

    return Loader


def normalize_spec(rc, index: int, spec, base_dir: str) -> dict:
    """Check one spec fully, so that a bad one stops the batch before anything is created."""
    where = f"task spec #{index + 1}"
    if not isinstance(spec, dict):
        raise UsageError(f"{where} is not an object")
    unknown = sorted(set(spec) - set(BATCH_FIELDS))
    if unknown:
        raise UsageError(f"{where}: unknown field {unknown[0]!r}")
    fields = {BATCH_FIELDS[key]: value for key, value in spec.items()}
    if "prompt_file" in fields and "prompt" not in fields:
        path = os.path.join(base_dir, str(fields.pop("prompt_file")))
        fields["prompt"] = read_text(path, "prompt file", prompt_bytes_cap())
    if "prompt" not in fields:
        raise UsageError(f"{where} has no prompt")
    skills = fields.get("skills")
    if isinstance(skills, str):
        fields["skills"] = split_skills([skills])
    paths, refs = [], []
    files = fields.get("files") or []
    if not isinstance(files, list):
        raise UsageError(f"{where}: files must be a list of paths or {{id, filename}} objects")
    for item in files:
        if isinstance(item, str):
            paths.append(item if os.path.isabs(item) else os.path.join(base_dir, item))
        else:
            refs.append(item)
    if not isinstance(fields.get("public", False), bool):
        raise UsageError(f"{where}: public must be true or false")
    try:
        plan = plan_task(
            rc,
            fields["prompt"],
            paths=paths,
            refs=refs,
            executor=fields.get("executor"),
            model=fields.get("model"),
            skills=fields.get("skills"),
            github_url=fields.get("github_url"),
            branch_name=fields.get("branch"),
            workspace_id=fields.get("workspace"),
        )
    except rc.InputError as error:
        raise UsageError(f"{where}: {error}") from None
    return {**plan, "public": fields.get("public", False), "name": fields.get("name")}


def cmd_batch(args, out: Output, run: Run) -> int:
    spec_file, concurrency, wait = args.spec_file, args.concurrency, args.wait
    timeout, interval = args.wait_timeout, args.interval
    rc = load_client_module()
    specs = load_batch_specs(spec_file)
    base_dir = os.getcwd() if spec_file == "-" else os.path.dirname(spec_file)
    specs = [normalize_spec(rc, i, spec, base_dir) for i, spec in enumerate(specs)]
    client = make_client(args, concurrency=concurrency)
    silent = Output(quiet=True, progress=False)  # the JSON lines speak for each task

    def create(index: int) -> dict:
        spec = specs[index]
        task = create_planned(client, silent, run, spec)
        if spec["public"]:
            try:
                shared = client.tasks.set_visibility(task["id"], "public")
                task = {**task, "shareUrl": shared.get("shareUrl")}
            except rc.RebyteError as error:
                task = {**task, "shareError": _one_line(str(error))}
        return task

    def say(index: int, stage: str, task=None, **fields) -> None:
        """One line for a spec: JSON with its index and name, or with -q
        `INDEX<TAB>NAME<TAB>ID<TAB>STATUS<TAB>URL` as it is created (with --wait the answer
        in place of the URL, as it ends; `INDEX<TAB>NAME<TAB>-<TAB>error<TAB>MESSAGE` for a
        spec that could not be created). NAME is `-` for a spec without one."""
        if out.quiet:
            name = specs[index].get("name") or "-"
            if task is None:
                print(_tab_line(index, name, "-", "error", fields.get("error")), flush=True)
            elif stage == "done":
                text = _answer_or_url(task)
                print(_tab_line(index, name, task.get("id"), task.get("status"), text), flush=True)
            elif not wait:
                text = task.get("url")
                print(_tab_line(index, name, task.get("id"), task.get("status"), text), flush=True)
            return
        line = {"index": index}
        if specs[index].get("name"):
            line["name"] = specs[index]["name"]
        line.update(stage=stage, **(task or {}), **fields)
        out.json_line(line)

    def reported(index: int, task, error) -> None:
        if task is not None:
            out.progress(f"created task {task['id']} ({index + 1}/{len(specs)}): {task.get('url')}")
            say(index, "created", _without_answer(task))
        else:
            out.error(f"task spec #{index + 1}: {error}")
            say(index, "error", error=_one_line(str(error)), exitCode=exit_code_for(rc, error))

    outcomes = run_concurrently(
        create, range(len(specs)), concurrency=concurrency, on_done=reported
    )
    codes = [exit_code_for(rc, error) for _, error in outcomes if error is not None]
    created = [(i, task) for i, (task, _) in enumerate(outcomes) if task is not None]
    if not (wait and created):
        return worst_exit(codes)

    def ended(position: int, task_id: str, task, error) -> None:
        """The done line: only what the created line could not say (no url, workspaceId...)."""
        index, made = created[position]
        task = task or {}
        shown = {"id": task_id, "status": task.get("status"), "result": task.get("result")}
        if task.get("resultAvailable") is False:
            shown["resultAvailable"] = False
            say_if_unavailable(out, {**made, **task})
        if out.quiet:
            shown["url"] = task.get("url") or made.get("url")  # printed when there is no answer
        if error is not None:
            shown["error"] = _one_line(str(error))
            codes.append(exit_code_for(rc, error))
        else:
            codes.append(outcome_code(task))
        say(index, "done", shown)

    wait_many(
        client,
        out,
        run,
        [task["id"] for _, task in created],
        prompt_id=None,
        timeout=timeout,
        interval=interval,
        on_done=ended,
    )
    return worst_exit(codes)


# ------------------------------------------------------------------------- errors


def exit_code_for(rc, error: BaseException) -> int:
    if isinstance(error, (UsageError, rc.InputError)):
        return EXIT_USAGE
    if isinstance(error, (rc.ConfigurationError, rc.AuthenticationError)):
        return EXIT_AUTH
    if isinstance(error, rc.NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, rc.WaitTimeoutError):
        return EXIT_WAIT_TIMEOUT
    if isinstance(error, (rc.ServerError, rc.MalformedResponseError)):
        return EXIT_NETWORK
    if isinstance(error, rc.APIError):
        return EXIT_API if error.status and 400 <= error.status < 500 else EXIT_NETWORK
    if isinstance(error, TaskOutcome):
        return error.code
    if isinstance(error, rc.ProvisionError):
        return EXIT_TASK_FAILED
    if isinstance(error, (rc.APIConnectionError, rc.OutcomeUnknownError)):
        return EXIT_NETWORK
    return EXIT_INTERNAL


def worst_exit(codes) -> int:
    """The exit code of several tasks that ended differently: errors over outcomes, 0 if none."""
    order = [EXIT_OK, EXIT_TASK_FAILED, EXIT_WAIT_TIMEOUT, EXIT_NOT_FOUND, EXIT_API, EXIT_NETWORK]
    order += [EXIT_USAGE, EXIT_AUTH]
    return max(codes, key=lambda c: order.index(c) if c in order else len(order), default=EXIT_OK)


def explain(rc, error: BaseException) -> str:
    """The one-line message for an error: what went wrong, then what to do."""
    text = str(error)
    if isinstance(error, rc.AuthenticationError):
        return (
            f"the API refused the key: {text}; check REBYTE_API_KEY (get a key at {rc.API_KEY_URL})"
        )
    if isinstance(error, rc.WorkspaceUnknownError):
        return (
            f"{text}; pass it with --workspace WORKSPACE_ID (tasks this machine created are "
            f"in `{RUN} recent`)"
        )
    if isinstance(error, rc.NotFoundError):
        advice = NOT_FOUND_ADVICE.get(getattr(error, "resource", None), NOT_FOUND_ADVICE[None])
        return f"{text}; {advice}"
    if isinstance(error, rc.WaitTimeoutError) and error.resource == "computer":
        return (
            f"{text}; the computer keeps provisioning: wait again with "
            f"`{RUN} computer wait {error.resource_id}`"
        )
    if isinstance(error, rc.WaitTimeoutError):
        url = (error.last_task or {}).get("url")
        at = f" ({url})" if isinstance(url, str) and url else ""
        return (
            f"{text}; the task is still running{at}: wait again with `{RUN} wait {error.task_id}`"
        )
    if isinstance(error, rc.ProvisionError):
        computer_id = (error.computer or {}).get("id", "ID")
        return f"{text}; delete it with `{RUN} computer delete {computer_id} --yes`"
    if isinstance(error, rc.RateLimitError):
        after = f" after {error.retry_after:g}s" if error.retry_after is not None else " later"
        return f"{text}; rate limited: try again{after}"
    if isinstance(error, rc.OutcomeUnknownError):
        advice = OUTCOME_UNKNOWN_ADVICE.get(getattr(error, "operation", None))
        if advice is None:
            return text
        return f"{error.message}; {advice.format(id=error.resource_id or 'ID')}"
    if isinstance(error, rc.APIConnectionError):
        return f"{text}; check the network and --base-url, then try again"
    if isinstance(error, rc.ServerError):
        return f"{text}; the server failed: try again later"
    return text


# The advice after a 404, by the kind of resource the request named (None: a collection route).
NOT_FOUND_ADVICE = {
    "task": f"the task may have been deleted: list tasks with `{RUN} list`",
    "computer": f"the computer may have been deleted: list computers with `{RUN} computer list`",
    "webhook": f"the webhook may have been deleted: list webhooks with `{RUN} webhook list`",
    "artifact": f"the artifact may have been deleted: list them with `{RUN} artifacts list ID`",
    "workspace": f"no task or workspace has that id: list tasks with `{RUN} list`",
    None: "the API has no such route: check --base-url / REBYTE_BASE_URL (it should end in /v1)",
}

# How to check whether a once-only call the server may have run did, by operation; {id}: its id.
OUTCOME_UNKNOWN_ADVICE = {
    "create_task": "the task may have been created: "
    f"check with `{RUN} recent` (or `{RUN} list --limit 5`) before creating it again",
    "follow_up": "the follow-up may have been sent: "
    f"check with `{RUN} get {{id}}` before sending it again",
    "create_computer": "the computer may have been created: "
    f"check with `{RUN} computer list --limit 5` before creating it again",
    "add_webhook": "the webhook may have been added: "
    f"check with `{RUN} webhook list` before adding it again",
    "upload_artifacts": "the files may have been uploaded: "
    f"check with `{RUN} artifacts list {{id}}` before uploading them again",
}


# ------------------------------------------------------------------ the commands

_RUN = RUN

group(
    "artifacts",
    "list, download, upload and delete a workspace's files",
    module="rebyte_cmd_artifacts",
)
group("computer", "Agent Computers: VMs that tasks run in", module="rebyte_cmd_computer")
group("webhook", "webhooks: task events sent to your https URL", module="rebyte_cmd_webhook")

command(
    ["create"],
    "create a task and print its live URL",
    _create_arguments,
    cmd_create,
    examples=[
        f'{_RUN} create --prompt "Summarize the README" --github-url owner/repo --wait -q',
        f'{_RUN} create --prompt "Chart the sales in the attached CSV" --file data.csv',
    ],
    quiet="the task's URL; with --wait or --watch, the agent's answer\n"
    "  (its URL when there is none; nothing when the wait times out)",
)
command(
    ["get"],
    "show a task with its status and prompts",
    _one_task_argument,
    cmd_get,
    examples=[f"{_RUN} get TASK_ID"],
    quiet="the task's URL",
)
command(
    ["list"],
    "list tasks, newest first",
    _list_arguments,
    cmd_list,
    examples=[f"{_RUN} list --limit 5", f"{_RUN} list --all --status completed -q"],
    quiet="one line per task: ID<TAB>STATUS<TAB>TITLE (STATUS is - with --no-status)",
)
command(
    ["follow-up"],
    "send another prompt to a task",
    _follow_up_arguments,
    cmd_follow_up,
    examples=[
        f'{_RUN} follow-up TASK_ID --prompt "Now add tests for it" --wait',
        f'{_RUN} follow-up TASK_ID --prompt "Write the report as PDF" --wait --download results',
    ],
    quiet="the task's URL; with --wait or --watch, the answer to this follow-up\n"
    "  (the URL when there is none; nothing when the wait times out)",
)
command(
    ["wait"],
    "wait for tasks to finish",
    _wait_arguments,
    cmd_wait,
    examples=[f"{_RUN} wait TASK_ID TASK_ID_2 --timeout 1800"],
    timeout=False,
    quiet="the agent's answer (the task's URL when there is none, nothing on a\n"
    "  timeout); with several tasks, one line each:\n"
    "  ID<TAB>STATUS<TAB>ANSWER-ON-ONE-LINE-OR-URL",
)
command(
    ["watch"],
    "show the agent's events as they come, until it finishes",
    _watch_arguments,
    cmd_watch,
    examples=[f"{_RUN} watch TASK_ID", f"{_RUN} watch TASK_ID --json"],
    quiet="no events; the agent's answer at the end (the URL when there is none)",
)
command(
    ["result"],
    "print the agent's answer",
    _result_arguments,
    cmd_result,
    examples=[f"{_RUN} result TASK_ID -q"],
    quiet="the answer as plain text (nothing when there is none)",
)
command(
    ["cancel"],
    "stop the running prompt (the task still takes follow-ups)",
    _one_task_argument,
    cmd_cancel,
    examples=[f"{_RUN} cancel TASK_ID"],
    quiet="the task's status after the cancel",
)
command(
    ["share"],
    "set a task's visibility and print its share URL",
    _share_arguments,
    cmd_share,
    examples=[f"{_RUN} share TASK_ID", f"{_RUN} share TASK_ID --visibility private"],
    quiet="the share URL (the visibility when there is none)",
)
command(
    ["upload"],
    "upload files and print references for `create --file-ref`",
    _upload_arguments,
    cmd_upload,
    examples=[f"{_RUN} upload data.csv -q"],
    quiet="one ID:FILENAME per file, as --file-ref takes it",
)
command(
    ["delete"],
    "delete tasks (asks first on a terminal; --yes elsewhere)",
    _many_tasks_argument,
    cmd_delete,
    examples=[f"{_RUN} delete TASK_ID --yes"],
    destroys=True,
    quiet="the id of each task deleted",
)
command(
    ["recent"],
    "what this machine created lately, and where a create got no answer, its likely task",
    _recent_arguments,
    cmd_recent,
    examples=[f"{_RUN} recent --limit 5", f"{_RUN} recent --offline -q"],
    quiet="one line per create: TIME<TAB>STATE<TAB>ID<TAB>URL<TAB>PROMPT-START;\n"
    "  after a pending one, TIME<TAB>maybe<TAB>ID<TAB>URL<TAB>TITLE per likely task",
)
command(
    ["batch"],
    "create many tasks from a JSON, JSON Lines or YAML file",
    _batch_arguments,
    cmd_batch,
    examples=[f"{_RUN} batch tasks.jsonl --wait"],
    quiet="one line per task: INDEX<TAB>NAME<TAB>ID<TAB>STATUS<TAB>URL as it is created;\n"
    "  with --wait the answer on one line (or the URL) in place of the URL, as it ends\n"
    "  (INDEX<TAB>NAME<TAB>-<TAB>error<TAB>MESSAGE when it could not be created)",
)


def say_interrupted(out: Output, run: Run) -> None:
    known = [(task_id, url) for task_id, url in run.tasks if task_id]
    for task_id, url in known:
        where = f": {url}" if url else ""
        out.error(f"interrupted; task {task_id} keeps running{where}")
    for computer_id in run.computers:
        out.error(
            f"interrupted; computer {computer_id} keeps existing: run tasks in it with "
            f"`{RUN} create --computer {computer_id} ...` or delete it with "
            f"`{RUN} computer delete {computer_id} --yes`"
        )
    if (known or run.computers) and out.quiet:
        for task_id, url in known:
            print(url or task_id, flush=True)
        for computer_id in run.computers:
            print(computer_id, flush=True)
    elif known or run.computers:
        document = {"interrupted": True}
        if known:
            document["tasks"] = [{"id": i, "url": u} for i, u in known]
        if run.computers:
            document["computers"] = [{"id": i} for i in run.computers]
        # One line, so that it also fits the JSON Lines of batch and watch --json.
        out.json_line(document)
    if run.creates_in_flight:
        out.error(
            "interrupted while a task was being created: it may exist anyway; "
            f"check with `{RUN} list --limit 5`"
        )
    if run.followups_in_flight:
        out.error("interrupted while a follow-up was being sent: it may have been sent anyway")
    if run.computer_creates_in_flight:
        out.error(
            "interrupted while a computer was being created: it may exist anyway; "
            f"check with `{RUN} computer list --limit 5`"
        )
    busy = run.creates_in_flight or run.followups_in_flight or run.computer_creates_in_flight
    if not (known or run.computers or busy):
        out.error("interrupted")


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is: the tasks are named, they keep running."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_signalled(signum, frame) -> None:
    raise Signalled(signum)


def handle_termination_signals() -> None:
    import signal

    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            try:
                signal.signal(number, _raise_signalled)
            except (ValueError, OSError):  # not the main thread, or not this platform
                pass


def _not_utf8(argv) -> str:
    """The first argument that is not UTF-8 text (the shell passed bytes), or ""."""
    for value in argv:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value
    return ""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        # Plain lines (-q) never fail on a console that cannot show a character.
        sys.stdout.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):  # not a text stream of io's
        pass
    bad = _not_utf8(argv)
    if bad:
        shown = bad.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
        Output(quiet=False, progress=False).error(
            f"argument {shown!r} is not UTF-8 text; pass text, or a file with --prompt-file"
        )
        return EXIT_USAGE
    path = command_path(argv)
    if path and path[0] in GROUPS:
        load_group(path[0])
    args = build_parser(path).parse_args(argv)
    handle_termination_signals()  # after --help, which needs no signal module
    out = Output(quiet=args.quiet, progress=not args.no_progress)
    run = Run()
    try:
        rc = load_client_module()
    except ImportError as error:  # pragma: no cover - only without the client file
        out.error(str(error))
        return EXIT_USAGE
    try:
        return chosen_command(args).handler(args, out, run)
    except KeyboardInterrupt as interrupt:
        say_interrupted(out, run)
        return 128 + interrupt.signum if isinstance(interrupt, Signalled) else EXIT_INTERRUPTED
    except ImportError as error:
        out.error(f"{error} (or run it with `uv run {PROG}`)")
        return EXIT_USAGE
    except TaskOutcome as outcome:
        if str(outcome):
            out.error(str(outcome))
        return outcome.code
    except (UsageError, rc.RebyteError) as error:
        out.error(explain(rc, error))
        return exit_code_for(rc, error)
    except BrokenPipeError:
        # A reader such as `head` went away: nothing more to say, and nowhere to say it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # a bug: one line, not a traceback, unless asked for details
        if args.verbose:
            import traceback

            traceback.print_exc()
        out.error(
            f"internal error ({type(error).__name__}: {_one_line(str(error))[:200]}); "
            f"run again with -v for details and report it"
        )
        return EXIT_INTERNAL
