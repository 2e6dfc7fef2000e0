"""Reading the docs as data: code fences, shell commands, bundle files.

Shared by tests/test_docs.py (which runs what the docs show) and
tests/test_install.py (which installs the bundle the way the README says).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
SKILL_NAME = "skill-as-a-service"

# The documents agents and people read, in the order they are read.
DOCS = ["SKILL.md", "README.md", "references/api.md", "references/examples.md"]
# Those an agent follows from the user's project folder, calling the CLI by its path in the
# skill's folder; README.md is for a person in a checkout, who calls it as scripts/rebyte_cli.py.
AGENT_DOCS = ["SKILL.md", "references/api.md", "references/examples.md"]
SKILL_DIR_CLI = "$SKILL_DIR/scripts/rebyte_cli.py"

SHELL_LANGS = {"bash", "sh", "shell", "console", ""}
_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)
# A command line that runs the CLI: python3/python/uv run, then a path ending in it.
_CLI_CALL = re.compile(
    r"(?:^|(?<=[\s(]))(?:python3?|uv run)\s+(?P<path>\S*?scripts/rebyte_cli\.py)(?=\s|$)"
    r"(?P<rest>.*)$"
)
_EXIT_NOTE = re.compile(r"\s#\s*exits?\s+(?P<code>\d+)\b.*$")
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=")
_KEY_SETUP = re.compile(r"^\s*export\s+REBYTE_(?:API_KEY|BASE_URL)=")
_SHELL_OPERATORS = {"|", "||", "&&", ";", ";;", "&", ">", ">>", "<", "<<", ")", "(", "2>", "|&"}

# Names of local files in examples: created (with sample content) before a run.
SAMPLE_FILE = re.compile(
    r"(?<![\w/.$-])(?P<name>[A-Za-z0-9_][\w.-]*\.(?:csv|pdf|txt|md|json|jsonl|yaml|yml|png|docx|xlsx))"
    r"(?![\w/-])"
)


@dataclass
class Block:
    """One fenced code block of a document."""

    doc: str
    line: int  # 1-based line of the opening fence
    lang: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


@dataclass
class Command:
    """One CLI invocation found in a shell block."""

    block: Block
    line: int
    text: str  # the logical line, continuations joined
    path: str  # the CLI's path as written, e.g. $SKILL_DIR/scripts/rebyte_cli.py
    args: List[str]
    expected_exit: int = 0
    quiet: bool = field(init=False)

    def __post_init__(self) -> None:
        self.quiet = "-q" in self.args or "--quiet" in self.args

    @property
    def where(self) -> str:
        return f"{self.block.doc}:{self.line}"

    @property
    def command(self) -> Optional[str]:
        return next((a for a in self.args if not a.startswith("-")), None)


def read(doc: str) -> str:
    return (ROOT / doc).read_text(encoding="utf-8")


def blocks(doc: str) -> List[Block]:
    text = read(doc)
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(doc, line, match.group("lang").lower(), match.group("body")))
    return found


def all_blocks() -> List[Block]:
    return [block for doc in DOCS for block in blocks(doc)]


def logical_lines(body: str) -> List[tuple]:
    """(offset of the first physical line, text) with `\\` continuations joined."""
    lines, pending, start = [], "", 0
    for index, raw in enumerate(body.splitlines()):
        if not pending:
            start = index
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append((start, pending + raw))
        pending = ""
    if pending:
        lines.append((start, pending))
    return lines


def is_shell(block: Block) -> bool:
    return block.lang in SHELL_LANGS


def runnable_lines(block: Block) -> List[tuple]:
    """The block's logical lines, without the key set-up a reader does by hand."""
    return [(i, line) for i, line in logical_lines(block.body) if not _KEY_SETUP.match(line)]


def mentions_api(block: Block) -> bool:
    return "rebyte_cli.py" in block.body or re.search(r"\bcurl\b", block.body) is not None


def is_script(block: Block) -> bool:
    """A shell block that only makes sense run whole: variables, substitutions, curl, or
    a line that calls the CLI twice (one call's output piped into the other), or that
    hands it ids through xargs."""
    for _, line in runnable_lines(block):
        if "$(" in line or _ASSIGNMENT.match(line) or re.search(r"\b(?:curl|xargs)\b", line):
            return True
        if line.count("rebyte_cli.py") > 1:
            return True
    return False


def script_text(block: Block) -> str:
    return "\n".join(line for _, line in runnable_lines(block)) + "\n"


def parse_command(block: Block, offset: int, text: str) -> Optional[Command]:
    """The CLI call on a logical line, up to the first shell operator, or None."""
    match = _CLI_CALL.search(text)
    if not match:
        return None
    rest = match.group("rest")
    expected = 0
    note = _EXIT_NOTE.search(rest)
    if note:
        expected = int(note.group("code"))
        rest = rest[: note.start()]
    lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    args = []
    for token in lexer:
        if token in _SHELL_OPERATORS:
            break
        args.append(token)
    line = block.line + 1 + offset
    return Command(block, line, text.strip(), match.group("path"), args, expected)


def commands_in(block: Block) -> List[Command]:
    found = []
    for offset, text in runnable_lines(block):
        command = parse_command(block, offset, text)
        if command is not None:
            found.append(command)
    return found


def cli_mentions(block: Block) -> List[tuple]:
    """Every logical line of a shell block that names rebyte_cli.py."""
    return [(i, t) for i, t in runnable_lines(block) if "rebyte_cli.py" in t]


def jsonl_before(block: Block) -> Optional[str]:
    """The nearest JSON Lines block before `block` in the same document."""
    candidates = [b for b in blocks(block.doc) if b.lang == "jsonl" and b.line < block.line]
    return candidates[-1].body if candidates else None


# ----------------------------------------------------------------------------- the bundle


def bundle_files(root: Path = ROOT) -> List[str]:
    """The files a commit of the working tree would hold: tracked and not-ignored new ones.

    In a clean clone (CI) that is exactly the tracked files; in a working copy it
    also takes files not added yet, so the checks see what is about to be committed.
    """
    git = shutil.which("git")
    if git is None:
        raise RuntimeError("git is needed to list the bundle's files")
    listed = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    names = sorted({name for name in listed.split("\0") if name})
    return [name for name in names if (root / name).is_file()]


def copy_bundle(destination: Path, root: Path = ROOT) -> List[str]:
    """Copy the bundle's files (see bundle_files) into `destination`; return their names."""
    names = bundle_files(root)
    for name in names:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return names
