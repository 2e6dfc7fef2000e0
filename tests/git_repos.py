"""Tiny git repositories for the local-repository tests, and a fingerprint of a repo's state.

Stdlib + git only. Every git call runs with a fixed identity and dates and without the
machine's global configuration, so the tests see the same repository everywhere.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

FIXED_ENV = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
}


def git_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(FIXED_ENV)
    return env


def git(repo: Path, *args: str, input: Optional[bytes] = None) -> bytes:
    """Run git in `repo`; stdout as bytes; a failure fails the test with git's message."""
    done = subprocess.run(
        ["git", *args], cwd=str(repo), env=git_env(), input=input, capture_output=True
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def write(repo: Path, files: Mapping[str, object]) -> None:
    """Write files (str or bytes content) under repo, making folders as needed."""
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)  # type: ignore[arg-type]


def make_repo(root: Path, files: Mapping[str, object], *, commit: bool = True) -> Path:
    """A new repository at `root` holding `files`, committed once (unless commit=False)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    write(root, files)
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "initial")
    return root


STANDARD_FILES = {
    "README.md": "# Demo\n\nline two\nline three\nline four\nline five\nline six\n",
    "src/app.py": "def main():\n    return 1\n",
    "src/util.py": "def helper():\n    return 2\n",
    "docs/guide.txt": "Guide\n=====\n\nStep one.\nStep two.\n",
    "data/logo.bin": bytes(range(256)),
}


def standard_repo(root: Path) -> Path:
    """The repository most tests start from: text files, a nested folder, a binary file."""
    return make_repo(root, STANDARD_FILES)


def fingerprint(repo: Path) -> Tuple[Dict[str, str], bytes]:
    """(sha256 of every file under .git, `git status --porcelain`): equal means untouched.

    The hashes are taken first: status runs with --no-optional-locks so it cannot
    refresh the index either.
    """
    hashes = {}
    git_dir = repo / ".git"
    for folder, _dirs, names in os.walk(git_dir):
        for name in names:
            path = Path(folder) / name
            if path.is_symlink():
                hashes[str(path.relative_to(git_dir))] = "link:" + os.readlink(path)
            else:
                hashes[str(path.relative_to(git_dir))] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    status = git(repo, "--no-optional-locks", "status", "--porcelain=v1", "-z", "-uall")
    return hashes, status


def tree_contents(root: Path, skip: Sequence[str] = (".git",)) -> Dict[str, object]:
    """Every file under root (not under `skip`) as bytes, symlinks as ('link', target)."""
    found: Dict[str, object] = {}
    for folder, dirs, names in os.walk(root):
        rel_folder = Path(folder).relative_to(root)
        if rel_folder.parts and rel_folder.parts[0] in skip:
            continue
        dirs[:] = [d for d in dirs if not (not rel_folder.parts and d in skip)]
        for name in dirs + names:
            path = Path(folder) / name
            rel = str(rel_folder / name)
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_file():
                found[rel] = path.read_bytes()
    return found


def change_of(repo: Path, files: Mapping[str, object]) -> bytes:
    """The binary patch that writes `files` over the repository's HEAD, made in a scratch
    clone (the repository itself is not touched): a patch as an agent would leave it."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="change-of-") as scratch:
        clone = Path(scratch) / "clone"
        git(repo, "clone", "-q", str(repo), str(clone))
        write(clone, files)
        git(clone, "add", "-A")
        return git(clone, "diff", "--binary", "--cached", "HEAD")
