"""A deterministic stand-in for a cloud coding agent that is handed a git bundle.

    patch = run_agent(bundle_path, "Fix it [edit][add]", work_dir=tmp)

It clones the bundle into `work_dir/repo` (or keeps working in that clone if it is
there already, as a real agent does on a follow-up), checks out the bundle's only
head (the snapshot commit), makes the changes the prompt's markers ask for, and
returns the whole change against the snapshot commit as `git diff --binary` bytes.

Markers (several may combine; a prompt with none means `[edit]`). "Text files" are
the snapshot's tracked regular files without a NUL in them, in path order; the
"README" is the first whose name starts with "readme" (any case), else the first.

    [edit]      append the line EDIT_LINE to the end of the README
    [conflict]  replace the README's FIRST line with CONFLICT_LINE, so a local edit
                of that first line made after the snapshot conflicts
    [add]       add ADDED_PATH (a new text file in a nested folder)
    [binary]    add BINARY_PATH (bytes with NULs, not text)
    [delete]    delete the last text file that is not the README
    [rename]    rename the first text file that is neither the README nor the
                [delete] one to RENAMED_PREFIX + its name, in the same folder
    [symlink]   add SYMLINK_PATH, a symlink to the README (a patch to refuse)
    [hostile]   also write, by hand, a new `.git/hooks/post-checkout` and a new
                `../outside.txt` into the patch (a patch to refuse)
    [no-patch]  leave no patch at all: returns None

Stdlib and git only, nothing from scripts/: it is the other side of the wire.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple, Union

EDIT_LINE = "Edited by the fake agent.\n"
CONFLICT_LINE = "Changed by the fake agent (conflict).\n"
ADDED_PATH = "fake_agent/nested/added.txt"
ADDED_TEXT = "Added by the fake agent.\nSecond line.\n"
BINARY_PATH = "fake_agent/blob.bin"
BINARY_BYTES = bytes(range(256)) * 4 + b"\x00\x00fake agent\x00"
RENAMED_PREFIX = "renamed-"
SYMLINK_PATH = "fake_agent/link"
MARKERS = (
    "edit",
    "conflict",
    "add",
    "binary",
    "delete",
    "rename",
    "symlink",
    "hostile",
    "no-patch",
)

_ENV = {
    "GIT_AUTHOR_NAME": "Fake Agent",
    "GIT_AUTHOR_EMAIL": "agent@example.invalid",
    "GIT_COMMITTER_NAME": "Fake Agent",
    "GIT_COMMITTER_EMAIL": "agent@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-02T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-02T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
}

HOSTILE_PATCH = (
    b"diff --git a/.git/hooks/post-checkout b/.git/hooks/post-checkout\n"
    b"new file mode 100755\n"
    b"index 0000000..1b1f0b8\n"
    b"--- /dev/null\n"
    b"+++ b/.git/hooks/post-checkout\n"
    b"@@ -0,0 +1,2 @@\n"
    b"+#!/bin/sh\n"
    b"+echo owned\n"
    b"diff --git a/../outside.txt b/../outside.txt\n"
    b"new file mode 100644\n"
    b"index 0000000..3b18e51\n"
    b"--- /dev/null\n"
    b"+++ b/../outside.txt\n"
    b"@@ -0,0 +1 @@\n"
    b"+outside the repository\n"
)


def markers(prompt: str) -> Set[str]:
    """The markers in a prompt; none at all means {"edit"}."""
    found = {m for m in re.findall(r"\[([a-z-]+)\]", prompt) if m in MARKERS}
    return found or {"edit"}


def _git(repo: Path, *args: str) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_ENV)
    done = subprocess.run(["git", *args], cwd=str(repo), env=env, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def _clone(bundle: Path, work_dir: Path) -> Tuple[Path, str]:
    """(clone, snapshot sha): a fresh clone at the bundle's head, or the existing one."""
    listing = _git(work_dir, "bundle", "list-heads", str(bundle)).decode()
    heads = {line.split()[0] for line in listing.splitlines() if line.strip()}
    if len(heads) != 1:
        raise ValueError(f"the bundle should have one head commit, it has {len(heads)}")
    sha = heads.pop()
    repo = work_dir / "repo"
    if not (repo / ".git").is_dir():
        _git(work_dir, "clone", "-q", "--no-checkout", str(bundle), str(repo))
        _git(repo, "checkout", "-q", "--detach", sha)
    return repo, sha


def _text_files(repo: Path, sha: str) -> List[str]:
    names = []
    for entry in _git(repo, "ls-tree", "-r", "-z", sha).split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        name = os.fsdecode(path)
        file = repo / name
        if meta.split()[0] in (b"100644", b"100755") and file.is_file():
            if b"\0" not in file.read_bytes()[:8000]:
                names.append(name)
    return sorted(names)


def _targets(texts: List[str]) -> Dict[str, Optional[str]]:
    """Which file each marker touches (see the module docstring)."""
    readmes = [t for t in texts if t.rsplit("/", 1)[-1].lower().startswith("readme")]
    readme = readmes[0] if readmes else (texts[0] if texts else None)
    others = [t for t in texts if t != readme]
    delete = others[-1] if others else None
    rename = next((t for t in others if t != delete), None)
    return {"readme": readme, "delete": delete, "rename": rename}


def _need(target: Optional[str], marker: str) -> str:
    if target is None:
        raise ValueError(f"[{marker}] needs more text files than the snapshot has")
    return target


def _change(repo: Path, chosen: Set[str], targets: Dict[str, Optional[str]]) -> None:
    if "conflict" in chosen:
        readme = repo / _need(targets["readme"], "conflict")
        lines = readme.read_text(encoding="utf-8").splitlines(keepends=True)
        readme.write_text(CONFLICT_LINE + "".join(lines[1:]), encoding="utf-8")
    if "edit" in chosen:
        readme = repo / _need(targets["readme"], "edit")
        with open(readme, "a", encoding="utf-8") as handle:
            handle.write(EDIT_LINE)
    for marker, path, data in (
        ("add", ADDED_PATH, ADDED_TEXT.encode()),
        ("binary", BINARY_PATH, BINARY_BYTES),
    ):
        if marker in chosen:
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_bytes(data)
    if "delete" in chosen:
        (repo / _need(targets["delete"], "delete")).unlink()
    if "rename" in chosen:
        old = _need(targets["rename"], "rename")
        folder, _, name = old.rpartition("/")
        new = f"{folder}/{RENAMED_PREFIX}{name}" if folder else RENAMED_PREFIX + name
        os.rename(repo / old, repo / new)
    if "symlink" in chosen:
        (repo / SYMLINK_PATH).parent.mkdir(parents=True, exist_ok=True)
        depth = SYMLINK_PATH.count("/")
        os.symlink("../" * depth + _need(targets["readme"], "symlink"), repo / SYMLINK_PATH)


def run_agent(
    bundle: Union[bytes, str, os.PathLike[str]], prompt: str, *, work_dir: Union[str, Path]
) -> Optional[bytes]:
    """Do what the prompt's markers say in a clone of the bundle; the binary patch, or None."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    if isinstance(bundle, bytes):
        path = work / "snapshot.bundle"
        path.write_bytes(bundle)
        bundle = path
    chosen = markers(prompt)
    if "no-patch" in chosen:
        return None
    repo, sha = _clone(Path(bundle).resolve(), work)
    _change(repo, chosen, _targets(_text_files(repo, sha)))
    _git(repo, "add", "-A")
    patch = _git(repo, "diff", "--binary", "--cached", "-M", "--no-color", "--no-ext-diff", sha)
    if "hostile" in chosen:
        patch += HOSTILE_PATCH
    return patch
