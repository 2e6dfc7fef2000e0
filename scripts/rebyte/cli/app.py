"""The command line: the parser, the command tables, and main (signals, errors, exit codes).

A command's module is imported only when the command line names it (or a help or
dispatch needs its options), by plain imports inside the functions below, so that
`--help` imports nothing but this module.
"""

from __future__ import annotations

import argparse
import os
import sys

from .options import seconds, whole
from .output import PROG, RUN, Output, one_line

# errors and session are imported where a command runs (or fails to parse), not here:
# `--help` needs neither.

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
  8    diff or apply: the task left no patch
  9    apply: the patch conflicts with the local tree (nothing was changed)
  70   an internal error of this CLI (a bug): run again with -v and report it
  130  interrupted (Ctrl-C; SIGTERM 143, SIGHUP 129); created tasks and computers keep running

environment:
  REBYTE_API_KEY   your API key (get one at https://app.rebyte.ai/settings/api-keys)
  REBYTE_BASE_URL  API base URL (default https://api.rebyte.ai/v1)
  NO_COLOR         no colors in progress output

stdout is JSON (one document; JSON Lines for batch and watch --json), or with -q
one plain line per result. Progress and errors go to stderr.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point at --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = RUN + self.prog[len(PROG) :]  # self.prog: "rebyte_cli.py SUBCOMMAND"
        from .errors import EXIT_USAGE

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
        from .errors import EXIT_OK
        from .session import load_client_module

        print(f"{PROG} {load_client_module().__version__}")
        parser.exit(EXIT_OK)


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
            type=seconds,
            default=unset,
            metavar="SECONDS",
            help="time allowed for each API call, retries included",
        )
    group.add_argument(
        "--max-retries", type=whole(0, 10), default=unset, metavar="N", help="retries (default 2)"
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


# ---------------------------------------------------------------- the command tables
# Each module is imported by a plain import, only when a command line names one of its
# commands: `--help` lists the words and their one-line help from the tables alone.


def _create_rows() -> dict:
    from . import create

    return create.COMMANDS


def _roundtrip_rows() -> dict:
    from . import roundtrip

    return roundtrip.COMMANDS


def _task_rows() -> dict:
    from . import tasks

    return tasks.COMMANDS


def _batch_rows() -> dict:
    from . import batch

    return batch.COMMANDS


def _artifact_rows() -> dict:
    from . import artifacts

    return artifacts.COMMANDS


def _computer_rows() -> dict:
    from . import computer

    return computer.COMMANDS


def _webhook_rows() -> dict:
    from . import webhook

    return webhook.COMMANDS


# word -> (one-line help, the table of the module that declares it), in --help order
COMMANDS = {
    "create": ("create a task and print its live URL", _create_rows),
    "get": ("show a task with its status and prompts", _task_rows),
    "list": ("list tasks, newest first", _task_rows),
    "follow-up": ("send another prompt to a task", _create_rows),
    "wait": ("wait for tasks to finish", _task_rows),
    "watch": ("show the agent's events as they come, until it finishes", _task_rows),
    "result": ("print the agent's answer", _task_rows),
    "cancel": ("stop the running prompt (the task still takes follow-ups)", _task_rows),
    "share": ("set a task's visibility and print its share URL", _task_rows),
    "upload": ("upload files and print references for `create --file-ref`", _create_rows),
    "delete": ("delete tasks (asks first on a terminal; --yes elsewhere)", _task_rows),
    "recent": (
        "what this machine created lately, and where a create got no answer, its likely task",
        _task_rows,
    ),
    "batch": ("create many tasks from a JSON, JSON Lines or YAML file", _batch_rows),
    "diff": ("print the patch a --local-repo task left (--stat: its summary)", _roundtrip_rows),
    "apply": (
        "apply a --local-repo task's patch to the local tree, whole or not at all",
        _roundtrip_rows,
    ),
}
# group word -> (one-line help, the table of its verbs: (group, verb) -> Command)
GROUPS = {
    "artifacts": ("list, download, upload and delete a workspace's files", _artifact_rows),
    "computer": ("Agent Computers: VMs that tasks run in", _computer_rows),
    "webhook": ("webhooks: task events sent to your https URL", _webhook_rows),
}


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
    unknown command need: importing every command's module and building its
    options on each run would slow start-up for nothing. Without a path, every
    command gets its options (and every module is imported).
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
    for word, (summary, rows) in COMMANDS.items():
        chosen = path is None or path == (word,)
        _add_command(commands, word, summary, rows()[(word,)] if chosen else None)
    for name, (summary, _) in GROUPS.items():
        rows = group_rows(name) if path is None or path[:1] == (name,) else None
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=_group_epilog(rows) if rows else None,
            formatter_class=_HelpFormatter,
        )
        if rows is not None:
            _add_global_options(sub, on_command=True)
            verbs = _add_commands(sub, "verb")
            for verb_path, row in rows.items():
                chosen = path is None or path == verb_path
                _add_command(verbs, verb_path[1], row.help, row if chosen else None)
    return parser


def group_rows(name: str) -> dict:
    """A group's verbs, as its module declares them: (group, verb) -> Command."""
    rows = GROUPS[name][1]()
    for path in rows:
        if len(path) != 2 or path[0] != name:
            raise ValueError(f"group {name!r} declares a command {path!r} outside it")
    return rows


def _group_epilog(rows: dict) -> str:
    """A group's examples, as its verbs' help ends with theirs: the first of each verb."""
    return "examples:\n" + "".join(f"  {row.examples[0]}\n" for row in rows.values())


def _add_commands(parser: argparse.ArgumentParser, dest: str):
    commands = parser.add_subparsers(dest=dest, metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    return commands


def _add_command(commands, word: str, summary: str, row) -> None:
    """A command's parser: its name and help, and with its `row`, its options and examples."""
    sub = commands.add_parser(
        word,
        help=summary,
        description=summary,
        epilog=row.epilog() if row is not None else None,
        usage=row.usage if row is not None else None,
        formatter_class=_HelpFormatter,
    )
    if row is not None:
        _add_global_options(sub, on_command=True, timeout=row.timeout)
        row.arguments(sub)
        if row.destroys:
            sub.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def chosen_command(args):
    """The Command row of the parsed command line."""
    if args.command in GROUPS:
        return group_rows(args.command)[(args.command, args.verb)]
    return COMMANDS[args.command][1]()[(args.command,)]


def say_interrupted(out: Output, run) -> None:
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
        from .errors import EXIT_USAGE

        shown = bad.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
        Output(quiet=False, progress=False).error(
            f"argument {shown!r} is not UTF-8 text; pass text, or a file with --prompt-file"
        )
        return EXIT_USAGE
    args = build_parser(command_path(argv)).parse_args(argv)
    return run_command(args)


def run_command(args) -> int:
    """Run the parsed command; every way it can end is one line on stderr and an exit code."""
    from .errors import (
        EXIT_INTERNAL,
        EXIT_INTERRUPTED,
        EXIT_OK,
        EXIT_USAGE,
        TaskOutcome,
        UsageError,
        exit_code_for,
        explain,
    )
    from .session import Run, load_client_module

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
            f"internal error ({type(error).__name__}: {one_line(str(error))[:200]}); "
            f"run again with -v for details and report it"
        )
        return EXIT_INTERNAL
