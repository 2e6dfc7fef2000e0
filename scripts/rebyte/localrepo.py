"""Hand a local git working folder to a cloud agent: a snapshot commit in a git bundle.

The snapshot is the folder exactly as it is now (committed, staged, unstaged and
untracked files that git does not ignore) as one commit whose parent is HEAD, so the
agent can clone the bundle, work, and send back a patch against that commit that
applies here with a three-way merge if the user kept editing meanwhile.

The user's repository is only read. The snapshot is staged in a temporary index
(GIT_INDEX_FILE), its new objects go to a temporary bare repository that borrows the
user's objects through alternates (GIT_OBJECT_DIRECTORY), and the bundle is made from a
ref in that temporary repository. No index, ref, stash, hook, config or object of the
user's is written. (git may refresh the modification time of an object file it already
has when the same content is hashed again; the bytes never change.)
"""

from __future__ import annotations

import heapq
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

from .errors import InputError
from .gitrun import GitMissing, GitRunner, NotARepository, split_z, work_tree_root

__all__ = [
    "PATCH_NAME",
    "CLONE_DIR",
    "DEFAULT_MAX_BYTES",
    "BUNDLE_REF",
    "Snapshot",
    "SnapshotRefused",
    "SnapshotTooBig",
    "NotARepository",
    "GitMissing",
    "make_snapshot",
    "instruction_block",
    "looks_secret",
    "own_installs",
]

PATCH_NAME = "rebyte-change.patch"
"""The workspace file the agent must leave: the whole change as one binary patch."""

CLONE_DIR = "/code/repo"
"""Where the agent clones the bundle in its VM (kept for follow-ups in the same workspace)."""

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
"""Working-tree bytes a snapshot may send unless the caller allows more."""

BUNDLE_REF = "refs/heads/rebyte-snapshot"
"""The bundle's one branch (HEAD points at it, so a plain clone checks it out)."""

SNAPSHOT_IDENTITY = {
    "GIT_AUTHOR_NAME": "rebyte snapshot",
    "GIT_AUTHOR_EMAIL": "snapshot@rebyte.invalid",
    "GIT_COMMITTER_NAME": "rebyte snapshot",
    "GIT_COMMITTER_EMAIL": "snapshot@rebyte.invalid",
}
SNAPSHOT_MESSAGE = b"rebyte snapshot of the working folder\n"

PathLike = Union[str, "os.PathLike[str]"]


class SnapshotRefused(InputError):
    """Files that look like secrets would be sent; nothing was made. `paths` lists them."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = sorted(paths)
        shown = ", ".join(self.paths[:8])
        more = f" and {len(self.paths) - 8} more" if len(self.paths) > 8 else ""
        super().__init__(
            f"refusing to send {len(self.paths)} file(s) that look like secrets: {shown}{more}"
            " (ignore them in .gitignore, or allow secrets explicitly)"
        )


class SnapshotTooBig(InputError):
    """The working tree is over the byte limit; `biggest` lists (path, bytes), largest first."""

    def __init__(self, size: int, limit: int, biggest: List[Tuple[str, int]]) -> None:
        self.size, self.limit, self.biggest = size, limit, biggest
        shown = ", ".join(f"{path} ({_mib(n)})" for path, n in biggest)
        super().__init__(
            f"the snapshot would send {_mib(size)} of files, over the limit of {_mib(limit)};"
            f" biggest: {shown}"
        )


@dataclass(frozen=True)
class Snapshot:
    """What make_snapshot made: the bundle to upload and what is in it."""

    repo_root: Path
    head: str
    sha: str
    bundle_path: Path
    bundle_size: int
    file_count: int
    total_bytes: int
    paths: List[str] = field(repr=False)
    changed: List[str] = field(default_factory=list)
    """Paths whose content differs from HEAD (added, modified or deleted)."""
    left_out: List[str] = field(default_factory=list)
    """Untracked installs of this skill ("dir/") that were not sent."""


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


# --------------------------------------------------------------------------- secrets

_SECRET_NAMES = {
    ".env",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".pgpass",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "credentials.json",
    "application_default_credentials.json",
    "service-account.json",
}
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore")
# `.env.example` and friends are templates meant to be committed.
_ENV_TEMPLATES = {"example", "sample", "template", "dist", "defaults"}
# Credential folders: every file inside one is a secret.
_SECRET_DIRS = {".azure", ".gnupg"}
# Configuration files that are secrets only when they hold a credential.
_TOKEN_FILES = {
    ".npmrc": re.compile(rb"_authToken\s*=|_auth\s*=|_password\s*=", re.I),
    ".pypirc": re.compile(rb"^\s*password\s*[=:]", re.I | re.M),
    ".yarnrc.yml": re.compile(rb"npmAuthToken\s*:", re.I),
}
_KEY_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_SERVICE_ACCOUNT = re.compile(rb'"type"\s*:\s*"service_account"')
_SNIFF_BYTES = 512
_TOKEN_FILE_BYTES = 64 * 1024


def _secret_by_name(path: str) -> bool:
    parts = path.lower().split("/")
    name = parts[-1]
    if name in _SECRET_NAMES or name.endswith(_SECRET_SUFFIXES):
        return True
    if name.startswith(".env.") and name[5:] not in _ENV_TEMPLATES:
        return True
    if any(part in _SECRET_DIRS for part in parts[:-1]):
        return True
    return name == "credentials" and len(parts) > 1 and parts[-2] in (".aws", "aws")


def _read_start(file: Path, limit: int) -> bytes:
    try:
        with open(file, "rb") as handle:
            return handle.read(limit)
    except OSError:
        return b""


def looks_secret(root: Path, path: str) -> bool:
    """Does `path` (relative to `root`) look like a secret, by its name or its first bytes?"""
    if _secret_by_name(path):
        return True
    file = root / path
    try:
        if not stat.S_ISREG(os.lstat(file).st_mode):
            return False
    except OSError:
        return False
    name = path.rsplit("/", 1)[-1].lower()
    if name in _TOKEN_FILES:
        return bool(_TOKEN_FILES[name].search(_read_start(file, _TOKEN_FILE_BYTES)))
    start = _read_start(file, _SNIFF_BYTES)
    if _KEY_START.match(start):
        return True
    return name.endswith(".json") and bool(_SERVICE_ACCOUNT.search(start))


# --------------------------------------------------------------------------- own installs

_SKILL_NAME_LINE = re.compile(rb"^name:\s*[\"']?skill-as-a-service[\"']?\s*$", re.M)
_LAUNCHER = "scripts/rebyte_cli.py"


def own_installs(root: Path, tracked: Iterable[str], untracked: Iterable[str]) -> List[str]:
    """Untracked folders ("dir/") holding an install of this skill, which a snapshot leaves out.

    `npx skills add` copies the skill into each agent's folder (`.agents/skills/...`,
    `.claude/skills/...`), often inside the very project it is used on; those copies are
    our own files, not the user's work, and would otherwise make up most of a bundle. A
    folder counts only when nothing in it is tracked, its SKILL.md names this skill and
    it holds the launcher, so the user's own code is never dropped.
    """
    untracked = set(untracked)
    candidates = {
        path[: -len("SKILL.md")]
        for path in untracked
        if path.endswith("/SKILL.md") and path[: -len("SKILL.md")] + _LAUNCHER in untracked
    }
    if not candidates:
        return []
    tracked_in = {prefix for path in tracked for prefix in candidates if path.startswith(prefix)}
    found = [
        prefix
        for prefix in sorted(candidates - tracked_in)
        if _SKILL_NAME_LINE.search(_read_start(root / prefix / "SKILL.md", _SNIFF_BYTES))
    ]
    return [p for p in found if not any(p != q and p.startswith(q) for q in found)]


def _exclusions(prefixes: Iterable[str]) -> List[str]:
    return [f":(exclude,literal){prefix}" for prefix in prefixes]


# --------------------------------------------------------------------------- the snapshot


class _Scratch:
    """A temporary bare repository borrowing the user's objects, and a temporary index.

    `user` runs git in the user's working folder with the scratch index and object
    directory; `bare` runs git in the scratch repository (for refs and the bundle).
    """

    def __init__(self, root: Path, objects_dir: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rebyte-snapshot-"))
        self.bare_dir = self.dir / "snapshot.git"
        base = GitRunner(self.dir)
        base.run(["init", "-q", "--bare", str(self.bare_dir)])
        info = self.bare_dir / "objects" / "info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "alternates").write_text(str(objects_dir) + "\n", encoding="utf-8")
        self.bare = GitRunner(self.bare_dir, {"GIT_DIR": str(self.bare_dir)})
        self.user = GitRunner(
            root,
            {
                "GIT_INDEX_FILE": str(self.dir / "index"),
                "GIT_OBJECT_DIRECTORY": str(self.bare_dir / "objects"),
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects_dir),
                **SNAPSHOT_IDENTITY,
            },
        )

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _open_repository(repo_dir: PathLike) -> Tuple[Path, str, Path]:
    """(root, HEAD commit, objects folder), or a one-line refusal."""
    root = work_tree_root(Path(repo_dir))
    runner = GitRunner(root)
    head = runner.run(["rev-parse", "--verify", "-q", "HEAD^{commit}"], check=False)
    if head.returncode != 0:
        raise NotARepository(f"{root} has no commit yet: commit once, then snapshot")
    objects = Path(runner.line(["rev-parse", "--git-path", "objects"]))
    shallow = Path(runner.line(["rev-parse", "--git-path", "shallow"]))
    objects = objects if objects.is_absolute() else root / objects
    shallow = shallow if shallow.is_absolute() else root / shallow
    if shallow.is_file():  # a bundle of a shallow history cannot be cloned
        raise InputError(f"{root} is a shallow clone: run `git fetch --unshallow` first")
    return root, head.stdout.decode().strip(), objects


def _candidate_sizes(scratch: _Scratch, root: Path) -> Tuple[List[Tuple[str, int]], List[str]]:
    """(path, bytes) of what would be sent, before anything is hashed: HEAD's files
    (those still present) and untracked files git does not ignore, except this skill's
    own installs; and those installs' folders."""
    tracked = scratch.user.out(["ls-files", "-z", "-s"]).split(b"\0")
    untracked = split_z(scratch.user.out(["ls-files", "-z", "-o", "--exclude-standard"]))
    paths = [os.fsdecode(e.split(b"\t", 1)[1]) for e in tracked if e and e[:6] != b"160000"]
    left_out = own_installs(root, paths, untracked)
    if left_out:
        untracked = [p for p in untracked if not p.startswith(tuple(left_out))]
    sizes = []
    for path in paths + untracked:
        try:
            info = os.lstat(root / path)
        except OSError:
            continue  # deleted since HEAD, or an untracked nested repository ("dir/")
        if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
            sizes.append((path, info.st_size))
    return sizes, left_out


def _check_size(sizes: List[Tuple[str, int]], max_bytes: int) -> int:
    total = sum(n for _, n in sizes)
    if total > max_bytes:
        biggest = heapq.nlargest(5, sizes, key=lambda item: item[1])
        raise SnapshotTooBig(total, max_bytes, biggest)
    return total


def _stage_everything(scratch: _Scratch, left_out: List[str]) -> List[Tuple[str, str]]:
    """Fill the scratch index with the working tree, but for `left_out` folders; (mode,
    path) of every entry.

    read-tree + refresh first, so unchanged files are compared, not written again.
    """
    scratch.user.run(["update-index", "-q", "--refresh"], check=False)
    scratch.user.run(["add", "-A", "--", ".", *_exclusions(left_out)])
    entries = []
    for entry in scratch.user.out(["ls-files", "-z", "-s"]).split(b"\0"):
        if entry:
            meta, path = entry.split(b"\t", 1)
            entries.append((meta.split(b" ", 1)[0].decode(), os.fsdecode(path)))
    return entries


def _commit(scratch: _Scratch, head: str) -> str:
    """The snapshot commit, dated as HEAD was committed: the same folder state gives the
    same commit, so a dry run names the snapshot that the real run sends."""
    tree = scratch.user.line(["write-tree"])
    when = _committed_at(scratch, head)
    dated = scratch.user
    if when:
        dated = dated.with_env({"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})
    done = dated.run(["commit-tree", "-p", head, tree], input=SNAPSHOT_MESSAGE)
    return done.stdout.decode().strip()


_COMMITTER = re.compile(rb"^committer [^\n]*> (\d+) ([+-]\d{4})$", re.M)


def _committed_at(scratch: _Scratch, commit: str) -> Optional[str]:
    """The commit's committer date as GIT_*_DATE takes it ("@SECONDS +ZONE"), read from the
    raw object so that no setting of the user's changes it; None if it cannot be read."""
    header = scratch.user.out(["cat-file", "commit", commit]).split(b"\n\n", 1)[0]
    found = _COMMITTER.search(header)
    return f"@{int(found[1])} {found[2].decode()}" if found else None


def _changed_paths(scratch: _Scratch, head: str) -> List[str]:
    raw = scratch.user.out(["diff-index", "--cached", "-z", "--name-only", "--no-renames", head])
    return split_z(raw)


def _write_bundle(scratch: _Scratch, sha: str, dest_dir: Path) -> Path:
    """The bundle (HEAD -> BUNDLE_REF -> the snapshot, with its whole history) in dest_dir.

    Written under a name of its own, then moved into place: two runs snapshotting the
    same state at once make the same bundle, and neither may trip over the other's lock.
    """
    scratch.bare.run(["update-ref", BUNDLE_REF, sha])
    scratch.bare.run(["symbolic-ref", "HEAD", BUNDLE_REF])
    bundle = dest_dir / f"rebyte-snapshot-{sha[:12]}.bundle"
    part = dest_dir / f".{bundle.name}.{os.getpid()}-{os.urandom(4).hex()}.part"
    try:
        scratch.bare.run(["bundle", "create", "-q", str(part), "HEAD", BUNDLE_REF])
        os.replace(part, bundle)
    finally:
        if part.exists():
            part.unlink()
    return bundle


def make_snapshot(
    repo_dir: PathLike,
    dest_dir: PathLike,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_secrets: bool = False,
) -> Snapshot:
    """Snapshot the git working folder holding `repo_dir` into a bundle in `dest_dir`.

    Refuses (InputError subclasses, nothing written to dest_dir): no git, not a working
    folder, no commit yet, a shallow clone, secrets among the files (unless
    `allow_secrets`), more than `max_bytes` of files. Ignored files are never included,
    nor untracked installs of this skill (`left_out`); submodules stay gitlinks; symlinks
    are sent as git stores them. The user's repository is only read.
    """
    dest = Path(dest_dir)
    if not dest.is_dir():
        raise InputError(f"{dest} is not a folder to write the bundle into")
    root, head, objects_dir = _open_repository(repo_dir)
    scratch = _Scratch(root, objects_dir)
    try:
        scratch.user.run(["read-tree", head])
        sizes, left_out = _candidate_sizes(scratch, root)
        total = _check_size(sizes, max_bytes)
        entries = _stage_everything(scratch, left_out)
        if not allow_secrets:
            found = [p for mode, p in entries if mode != "160000" and looks_secret(root, p)]
            if found:
                raise SnapshotRefused(found)
        sha = _commit(scratch, head)
        changed = _changed_paths(scratch, head)
        bundle = _write_bundle(scratch, sha, dest)
    finally:
        scratch.close()
    return Snapshot(
        repo_root=root,
        head=head,
        sha=sha,
        bundle_path=bundle,
        bundle_size=bundle.stat().st_size,
        file_count=len(entries),
        total_bytes=total,
        paths=[p for _, p in entries],
        changed=changed,
        left_out=left_out,
    )


def instruction_block(bundle_filename: str, snapshot_sha: str) -> str:
    """The fixed text appended to the user's prompt: where the code is, what to hand back."""
    bundle = f"/code/{bundle_filename}"
    return (
        "\n\n---\n"
        f"The user's local repository is attached as a git bundle at {bundle}.\n"
        f"Work in a clone of it: `git clone {bundle} {CLONE_DIR} && cd {CLONE_DIR}"
        f" && git checkout --detach {snapshot_sha}`.\n"
        f"For a follow-up request, keep working in that same clone ({CLONE_DIR}).\n"
        f"When done, write the WHOLE change against commit {snapshot_sha} as one binary patch:\n"
        f"`cd {CLONE_DIR} && git add -A && git diff --binary --cached {snapshot_sha}"
        f" > /code/{PATCH_NAME}`\n"
        f"Put nothing else in /code/{PATCH_NAME}; the user applies it to their own copy.\n"
    )
