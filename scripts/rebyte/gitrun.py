"""Running git for the local-repository modules: one place that finds git, cleans its
environment and turns its failures into this client's errors.

The user's own GIT_* variables (GIT_DIR, GIT_INDEX_FILE, GIT_OBJECT_DIRECTORY, ...) are
dropped, so a shell that happens to export one cannot point our scratch work at the
user's index or object store. The user's configuration is kept: git's ignore rules
(core.excludesFile), line-ending and whitespace settings are theirs to choose. Settings
that could make a read-only git call write into the user's `.git` (fsmonitor, automatic
gc and maintenance) are switched off on every call.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from .errors import InputError, RebyteError

__all__ = ["GitMissing", "NotARepository", "GitFailed", "GitRunner", "find_git", "clean_env"]

# Passed to every git call: none of these may write into the user's repository.
SAFE_CONFIG = (
    "core.fsmonitor=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "core.splitIndex=false",
)


class GitMissing(InputError):
    """git is not installed or not on PATH: nothing was read or sent."""


class NotARepository(InputError):
    """The folder is not a git working folder (or has no commit yet)."""


class GitFailed(RebyteError):
    """A git command failed in a way the caller did not expect."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: bytes) -> None:
        self.args_run = list(args)
        self.returncode = returncode
        self.stderr = stderr.decode("utf-8", "replace").strip()
        first = self.stderr.splitlines()[0] if self.stderr else f"exit status {returncode}"
        super().__init__(f"git {' '.join(self.args_run[:2])} failed: {first}")


def find_git() -> str:
    """The git executable, or GitMissing: the one-line answer for a machine without git."""
    found = shutil.which("git")
    if not found:
        raise GitMissing("git is not installed (or not on PATH); it is needed for this")
    return found


def clean_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """os.environ without GIT_* variables, plus `extra`; LC_ALL=C keeps messages parseable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["LC_ALL"] = "C"
    env["GIT_TERMINAL_PROMPT"] = "0"
    if extra:
        env.update(extra)
    return env


class GitRunner:
    """Runs git in one folder with one environment; output is bytes (paths are -z lists)."""

    def __init__(self, cwd: Path, env: Optional[Mapping[str, str]] = None) -> None:
        self.git = find_git()
        self.cwd = Path(cwd)
        self.env = clean_env(env)

    def with_env(self, extra: Mapping[str, str]) -> GitRunner:
        """A runner for the same folder with more variables (a scratch index, say)."""
        runner = GitRunner.__new__(GitRunner)
        runner.git, runner.cwd = self.git, self.cwd
        runner.env = {**self.env, **extra}
        return runner

    def run(
        self,
        args: Sequence[str],
        *,
        input: Optional[bytes] = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run `git args`; with `check`, a non-zero exit raises GitFailed."""
        command: List[str] = [self.git]
        for setting in SAFE_CONFIG:
            command += ["-c", setting]
        command += list(args)
        try:
            done = subprocess.run(
                command,
                cwd=str(self.cwd),
                env=self.env,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
        except FileNotFoundError as error:
            raise GitMissing(f"git could not be run: {error}") from error
        if check and done.returncode != 0:
            raise GitFailed(args, done.returncode, done.stderr)
        return done

    def out(self, args: Sequence[str], **kwargs) -> bytes:
        """stdout of a git command that must succeed."""
        return self.run(args, **kwargs).stdout

    def line(self, args: Sequence[str]) -> str:
        """The first line of stdout, decoded: for rev-parse and friends."""
        return self.out(args).decode("utf-8", "surrogateescape").strip()


def split_z(data: bytes) -> List[str]:
    """A NUL-separated git list as file-system strings (bytes that are not UTF-8 survive)."""
    return [os.fsdecode(item) for item in data.split(b"\0") if item]


def work_tree_root(folder: Path) -> Path:
    """The top of the git working folder holding `folder`, or NotARepository."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotARepository(f"{folder} is not a folder")
    runner = GitRunner(folder)
    inside = runner.run(["rev-parse", "--is-inside-work-tree"], check=False)
    if inside.returncode != 0 or inside.stdout.strip() != b"true":
        raise NotARepository(f"{folder} is not inside a git working folder")
    return Path(runner.line(["rev-parse", "--show-toplevel"]))
