"""What command modules declare their commands with: Command rows, value types, shared options."""

from __future__ import annotations

import argparse
import collections  # already loaded by argparse: free at start-up
import re  # already loaded by argparse: free at start-up


def seconds(text: str) -> float:
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


def whole(low: int, high: int = None):
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


def task_ref(text: str) -> str:
    """A task id, or the id inside a task's live URL (https://.../run/ID) as create prints it."""
    found = _TASK_URL.fullmatch(text.strip())
    return found.group(1) if found else text


def add_prompt_options(parser: argparse.ArgumentParser) -> None:
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
        help="slugs, e.g. deep-research pdf (or comma-separated)",
    )
    parser.add_argument(
        "--file",
        dest="files",
        action="append",
        metavar="PATH",
        help="upload and attach it (repeatable): /code/NAME in the VM",
    )
    parser.add_argument(
        "--file-ref",
        dest="file_refs",
        action="append",
        metavar="ID:FILENAME",
        help="attach a file sent with `upload` (repeatable)",
    )


def add_wait_options(parser: argparse.ArgumentParser, *, flags=("wait", "watch")) -> None:
    if "wait" in flags:
        parser.add_argument("--wait", action="store_true", help="wait until it finishes")
    if "watch" in flags:
        parser.add_argument(
            "--watch", action="store_true", help="show the agent's events until it finishes"
        )
    if flags:
        add_wait_timeout(parser, "--wait-timeout")
    parser.add_argument(
        "--interval",
        type=seconds,
        default=2.0,
        metavar="SECONDS",
        help="first pause between polls (default 2); grows to 10 s",
    )


def add_wait_timeout(parser: argparse.ArgumentParser, *names: str, verb: str = "wait") -> None:
    parser.add_argument(
        *names,
        dest="wait_timeout",
        type=seconds,
        default=3600.0,
        metavar="SECONDS",
        help=f"how long to {verb} (default 3600)",
    )


def add_download_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--download",
        metavar="DIR",
        help="with --wait/--watch: fetch its artifacts into DIR",
    )


def one_task_argument(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("task_id", metavar="TASK_ID", type=task_ref)


def many_tasks_argument(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("task_ids", nargs="+", metavar="TASK_ID", type=task_ref)


def add_workspace_option(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument(
        "--workspace",
        metavar="WORKSPACE_ID",
        help=f"{prefix}the task's workspace (its create answer's workspaceId), for a task "
        "this machine did not create: the API shows it nowhere else",
    )


# ------------------------------------------------------------------ the command rows


class Command:
    """One command, declared once in its module: its path, options, handler and examples.

    `arguments(parser)` adds its own options; `handler(args, out, run)` runs it.
    `help`: a group verb's one-line help (a top-level command's is in app's table).
    `timeout=False` for a command whose own --timeout is not the global one;
    `destroys=True` gives it --yes (see session.confirm); `quiet` says what -q prints;
    `usage` replaces argparse's usage line, `details` says where the rest is explained.
    """

    __slots__ = (
        "path", "help", "arguments", "handler", "examples", "timeout", "destroys", "quiet",
        "usage", "details",
    )  # fmt: skip

    def __init__(self, path, arguments, handler, examples, **fields) -> None:
        self.path, self.arguments, self.handler, self.examples = path, arguments, handler, examples
        self.help, self.quiet, self.usage, self.details = (
            fields.get(name) for name in ("help", "quiet", "usage", "details")
        )
        self.timeout = fields.get("timeout", True)
        self.destroys = fields.get("destroys", False)

    def epilog(self) -> str:
        quiet = f"with -q: {self.quiet}\n\n" if self.quiet else ""
        details = f"{self.details}\n\n" if self.details else ""
        return quiet + details + "examples:\n" + "".join(f"  {line}\n" for line in self.examples)


COMMAND_FIELDS = ("help", "timeout", "destroys", "quiet", "usage", "details")


def command(path, arguments, handler, *, examples, **fields) -> Command:
    """Declare a command: `["create"]`, or a group's verb `["computer", "create"]` with its
    help; `fields` are Command's (help, timeout, destroys, quiet, usage, details)."""
    path = tuple(path)
    unknown = set(fields) - set(COMMAND_FIELDS)
    if unknown:
        raise TypeError(f"command {path!r}: unknown fields {sorted(unknown)}")
    if len(path) not in (1, 2) or (len(path) == 2) != (fields.get("help") is not None):
        raise ValueError(f"command {path!r}: a group's verb has a help, a top-level command none")
    if not examples:
        raise ValueError(f"command {path!r} needs an example for its --help")
    return Command(path, arguments, handler, tuple(examples), **fields)


def commands(*rows: Command) -> dict:
    """A module's table of commands: path -> Command, in --help order."""
    return {row.path: row for row in rows}


# ---------------------------------------------------------------- a command's options


class ClientOptions(
    collections.namedtuple("ClientOptions", "base_url timeout max_retries verbose")
):
    """The global options a command's client is made with (see session.make_client)."""

    __slots__ = ()

    @classmethod
    def of(cls, args) -> ClientOptions:
        # --timeout is the top-level one's value (None) where the command has its own --timeout.
        return cls(args.base_url, getattr(args, "timeout", None), args.max_retries, args.verbose)


def options(name: str, fields: str):
    """A command's options: a namedtuple of `fields`, made by `of(args)` from the parsed
    flags of the same names in the handler's first line, so that nothing below it reads
    argparse's namespace; the field `client` holds the global options (ClientOptions)."""

    def of(cls, args):
        return cls(
            *(ClientOptions.of(args) if f == "client" else getattr(args, f) for f in cls._fields)
        )

    return type(
        name,
        (collections.namedtuple(name, fields),),
        {"__slots__": (), "of": classmethod(of), "__doc__": f"The options of {name[:-7]}."},
    )
