"""Take a cloud agent's change back: read and check a git patch for a local repository.

The patch comes from a remote machine, so it is untrusted input. Before git sees it
for real, every path in it is checked (no absolute paths, no `..`, nothing in `.git`,
nothing reached through a symlink, no new symlinks or submodules), and git's own
reading of the file names must agree with ours.

Applying it is rebyte/applying.py's work, over these checks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from .errors import InputError
from .gitrun import GitRunner, split_z

__all__ = [
    "FileChange",
    "PatchStat",
    "PatchRefused",
    "parse_patch",
    "stat",
    "check_safe",
    "git_sees",
    "APPLY_FLAGS",
]

PathLike = Union[str, "os.PathLike[str]"]

SYMLINK_MODE = "120000"
GITLINK_MODE = "160000"
# Exactly the agent's bytes: no whitespace "fixes" from the user's apply.whitespace.
APPLY_FLAGS = ("--whitespace=nowarn",)


class PatchRefused(InputError):
    """The patch is malformed or unsafe; nothing was applied. `problems`: (path, reason)."""

    def __init__(self, problems: Sequence[Tuple[str, str]]) -> None:
        self.problems = list(problems)
        shown = "; ".join(f"{path!r}: {why}" for path, why in self.problems[:6])
        more = f" (and {len(self.problems) - 6} more)" if len(self.problems) > 6 else ""
        super().__init__(f"refusing the patch: {shown}{more}")

    @property
    def paths(self) -> List[str]:
        return [path for path, _ in self.problems]


@dataclass(frozen=True)
class FileChange:
    """One file of a patch. Paths are relative, `/`-separated; None on the side that
    does not exist (old for an added file, new for a deleted one)."""

    old_path: Optional[str]
    new_path: Optional[str]
    status: str  # "added", "modified", "deleted", "renamed" or "copied"
    binary: bool = False
    old_mode: Optional[str] = None
    new_mode: Optional[str] = None
    added_lines: int = 0
    deleted_lines: int = 0

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""

    @property
    def display(self) -> str:
        """The name as `diff --stat` shows it: `old => new` for renames and copies."""
        if self.status in ("renamed", "copied"):
            return f"{self.old_path} => {self.new_path}"
        return self.path


@dataclass(frozen=True)
class PatchStat:
    """The data behind `diff --stat`: the files (with their line counts) and totals."""

    files: List[FileChange]
    insertions: int
    deletions: int

    @classmethod
    def of(cls, changes: List[FileChange]) -> PatchStat:
        return cls(
            changes, sum(c.added_lines for c in changes), sum(c.deleted_lines for c in changes)
        )

    def summary(self) -> str:
        def count(n: int, word: str) -> str:
            return f"{n} {word}{'' if n == 1 else 's'}"

        parts = [f"{count(len(self.files), 'file')} changed"]
        parts.append(f"{count(self.insertions, 'insertion')}(+)")
        parts.append(f"{count(self.deletions, 'deletion')}(-)")
        return ", ".join(parts)


# --------------------------------------------------------------------------- reading

_ESCAPES = {
    ord("a"): 7,
    ord("b"): 8,
    ord("t"): 9,
    ord("n"): 10,
    ord("v"): 11,
    ord("f"): 12,
    ord("r"): 13,
    ord('"'): 34,
    ord("\\"): 92,
}
_HUNK = re.compile(rb"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def _unquote(text: bytes) -> Tuple[bytes, bytes]:
    """A C-quoted name as git writes it ("a\\tb\\303\\251"), and the rest after it."""
    out = bytearray()
    i = 1
    while i < len(text):
        char = text[i]
        if char == ord('"'):
            return bytes(out), text[i + 1 :]
        if char == ord("\\") and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            octal = text[i + 1 : i + 4]
            if re.fullmatch(rb"[0-3][0-7][0-7]", octal):
                out.append(int(octal, 8))
                i += 4
                continue
            raise ValueError("a bad escape in a quoted name")
        out.append(char)
        i += 1
    raise ValueError("a quoted name without its closing quote")


def _strip_prefix(name: bytes) -> str:
    """Drop the first component (`a/`, `b/`), as git apply -p1 does."""
    return os.fsdecode(name.split(b"/", 1)[1] if b"/" in name else name)


def _name(value: bytes, *, prefixed: bool) -> Optional[str]:
    """A name from a `---`/`+++`/`rename from` line; None for /dev/null."""
    if value.startswith(b'"'):
        raw, _ = _unquote(value)
    else:
        raw = value.split(b"\t", 1)[0]
    if raw == b"/dev/null":
        return None
    return _strip_prefix(raw) if prefixed else os.fsdecode(raw)


def _header_names(rest: bytes) -> Tuple[Optional[str], Optional[str]]:
    """Both names from `diff --git A B`; unquoted names with spaces only when equal."""
    if rest.startswith(b'"'):
        old, tail = _unquote(rest)
        tail = tail[1:]
        new = _unquote(tail)[0] if tail.startswith(b'"') else tail
        return _strip_prefix(old), _strip_prefix(new)
    if rest.endswith(b'"') and b' "' in rest:
        old, quoted = rest.split(b' "', 1)
        return _strip_prefix(old), _strip_prefix(_unquote(b'"' + quoted)[0])
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half : half + 1] == b" ":
        old, new = rest[:half], rest[half + 1 :]
        if _strip_prefix(old) == _strip_prefix(new):
            return _strip_prefix(old), _strip_prefix(new)
    return None, None


class _FileParser:
    """Reads one `diff --git` section: extended headers, then hunks or a binary patch."""

    def __init__(self, lines: List[bytes], start: int) -> None:
        self.lines, self.i = lines, start + 1
        self.old, self.new = _header_names(lines[start][len(b"diff --git ") :])
        self.status, self.binary = "modified", False
        self.old_mode: Optional[str] = None
        self.new_mode: Optional[str] = None
        self.added = self.deleted = 0

    def _header(self, line: bytes) -> bool:
        """Take one extended header line; False when the line is not one."""
        simple = {
            b"old mode ": "old_mode",
            b"new mode ": "new_mode",
            b"deleted file mode ": "old_mode",
            b"new file mode ": "new_mode",
        }
        for prefix, attribute in simple.items():
            if line.startswith(prefix):
                setattr(self, attribute, line[len(prefix) :].decode("ascii", "replace").strip())
                if prefix.startswith(b"deleted"):
                    self.status, self.new = "deleted", None
                elif prefix.startswith(b"new file"):
                    self.status, self.old = "added", None
                return True
        for prefix, status, side in (
            (b"rename from ", "renamed", "old"),
            (b"rename to ", "renamed", "new"),
            (b"copy from ", "copied", "old"),
            (b"copy to ", "copied", "new"),
        ):
            if line.startswith(prefix):
                self.status = status
                setattr(self, side, _name(line[len(prefix) :], prefixed=False))
                return True
        if line.startswith(b"index "):
            mode = line.split()[2:3]  # "index abc..def 100644": the mode both sides keep
            if mode:
                self.old_mode = self.new_mode = mode[0].decode("ascii", "replace")
            return True
        return line.startswith((b"similarity index ", b"dissimilarity index "))

    def parse(self) -> Tuple[FileChange, int]:
        lines = self.lines
        while self.i < len(lines) and self._header(lines[self.i]):
            self.i += 1
        if self.i + 1 < len(lines) and lines[self.i].startswith(b"--- "):
            if lines[self.i + 1].startswith(b"+++ "):
                old = _name(lines[self.i][4:], prefixed=True)
                new = _name(lines[self.i + 1][4:], prefixed=True)
                self.old = old if self.status != "added" else None
                self.new = new if self.status != "deleted" else None
                self.i += 2
        self._body()
        if self.old is None and self.new is None:
            raise ValueError("a `diff --git` header whose file names cannot be read")
        if self.new_mode is None and self.status == "modified":
            self.new_mode = self.old_mode
        change = FileChange(
            self.old, self.new, self.status, self.binary, self.old_mode, self.new_mode,
            self.added, self.deleted,
        )  # fmt: skip
        return change, self.i

    def _body(self) -> None:
        lines = self.lines
        while self.i < len(lines):
            line = lines[self.i]
            hunk = _HUNK.match(line)
            if hunk:
                self.i += 1
                self._hunk(int(hunk.group(1) or b"1"), int(hunk.group(2) or b"1"))
            elif line.startswith(b"GIT binary patch") or line.startswith(b"Binary files "):
                self.binary = True
                self.i += 1
                while self.i < len(lines) and not lines[self.i].startswith(b"diff --git "):
                    self.i += 1
            else:
                return

    def _hunk(self, old_count: int, new_count: int) -> None:
        lines = self.lines
        while (old_count > 0 or new_count > 0) and self.i < len(lines):
            tag = lines[self.i][:1]
            if tag == b" " or lines[self.i] == b"":
                old_count, new_count = old_count - 1, new_count - 1
            elif tag == b"-":
                old_count, self.deleted = old_count - 1, self.deleted + 1
            elif tag == b"+":
                new_count, self.added = new_count - 1, self.added + 1
            elif tag != b"\\":
                raise ValueError("a hunk shorter than its @@ header says")
            self.i += 1
        if self.i < len(lines) and lines[self.i].startswith(b"\\"):
            self.i += 1  # "\ No newline at end of file" after the last line


def parse_patch(data: bytes) -> List[FileChange]:
    """The files of a git patch, from its `diff --git` sections (text before them, such as
    a commit message, is skipped). A malformed section raises PatchRefused."""
    lines = data.split(b"\n")
    changes: List[FileChange] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith(b"diff --git "):
            i += 1
            continue
        try:
            change, i = _FileParser(lines, i).parse()
        except ValueError as error:
            raise PatchRefused([(f"line {i + 1}", str(error))]) from None
        changes.append(change)
    return changes


def stat(data: bytes) -> PatchStat:
    """Per-file +/- line counts (binary files count none) and the totals."""
    return PatchStat.of(parse_patch(data))


# --------------------------------------------------------------------------- safety

# Characters HFS+ ignores in names, so ".g\u200cit" is ".git" there (as git's verify_path).
_IGNORABLE = dict.fromkeys(
    map(
        ord,
        "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff",
    )
)


def _is_dot_git(component: str) -> bool:
    """`.git` in any spelling a file system may fold to it (case, trailing dots and
    spaces on NTFS, `::$INDEX_ALLOCATION` streams, the 8.3 name `git~1`, HFS ignorables)."""
    name = component.translate(_IGNORABLE).lower().split(":", 1)[0].rstrip(". ")
    return name in (".git", "git~1")


def _name_problem(path: str) -> Optional[str]:
    if not path or "\0" in path:
        return "an empty name or a NUL byte"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "an absolute path"
    if "\\" in path:
        return "a backslash, a folder separator on Windows"
    parts = path.split("/")
    if any(part in ("", ".") for part in parts):
        return "not a plain relative path"
    if ".." in parts:
        return "goes outside the repository (..)"
    if any(_is_dot_git(part) for part in parts):
        return "inside a .git folder"
    return None


def _tree_problem(root: Path, path: str) -> Optional[str]:
    """A parent folder that is a symlink, or a nested repository, in the working tree."""
    folder = root
    for part in path.split("/")[:-1]:
        folder = folder / part
        if folder.is_symlink():
            return f"reached through the symlink {folder.relative_to(root)}"
        if not folder.is_dir():
            return None
        if os.path.lexists(folder / ".git"):
            return f"inside the nested repository {folder.relative_to(root)}"
    return None


def check_safe(repo_root: PathLike, changes: Sequence[FileChange]) -> None:
    """Refuse (PatchRefused, every problem named) a patch that writes anywhere but plain
    files and folders of this working tree: absolute or `..` paths, `.git` in any
    spelling, paths through a symlink or into a nested repository, new or changed
    symlinks, and submodules (gitlinks)."""
    root = Path(repo_root)
    problems: List[Tuple[str, str]] = []
    for change in changes:
        for path in dict.fromkeys(p for p in (change.old_path, change.new_path) if p is not None):
            why = _name_problem(path) or _tree_problem(root, path)
            if why:
                problems.append((path, why))
        if change.new_path is not None and change.new_mode == SYMLINK_MODE:
            problems.append((change.new_path, "makes a symlink"))
        if GITLINK_MODE in (change.old_mode, change.new_mode):
            problems.append((change.path, "a submodule (gitlink)"))
    if problems:
        raise PatchRefused(problems)


def git_sees(runner: GitRunner, patch_file: Path, changes: Sequence[FileChange]) -> None:
    """git's own reading of the file names must be ours: a section we skipped (an old-style
    diff, say) must not slip past the checks."""
    done = runner.run(["apply", "--numstat", "-z", str(patch_file)], check=False)
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines() or ["unreadable"]
        raise PatchRefused([("patch", f"git cannot read it: {reason[0]}")])
    records, theirs = 0, set()
    for item in split_z(done.stdout):  # "added\tdeleted\tpath", or "a\td\t" old new
        numbers = re.match(r"(\d+|-)\t(\d+|-)\t", item)
        if numbers:
            records, item = records + 1, item[numbers.end() :]
        if item:
            theirs.add(item)
    ours = {p for c in changes for p in (c.old_path, c.new_path) if p is not None}
    if records != len(changes) or not theirs <= ours:
        odd = sorted(theirs - ours) or [f"{records} files, not {len(changes)}"]
        raise PatchRefused([(p, "git reads the patch's file names differently") for p in odd])
