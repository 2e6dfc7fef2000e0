"""Apply a checked patch (rebyte/patches.py) to the working tree of a local repository.

Applying touches the WORKING TREE ONLY: the user's index, refs and objects are never
written (new files arrive untracked, deletions unstaged: the user reviews and stages).
A patch that no longer applies as-is is merged three-way in a scratch index and
object store first; only a merge known to be clean is written, so a conflict leaves
the folder exactly as it was. It is all the files or none.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from .errors import RebyteError
from .gitrun import GitRunner, split_z, work_tree_root
from .patches import (
    APPLY_FLAGS,
    FileChange,
    PatchRefused,
    PatchStat,
    PathLike,
    check_safe,
    git_sees,
    parse_patch,
)

__all__ = ["ApplyResult", "PatchConflict", "apply_patch"]


class PatchConflict(RebyteError):
    """The patch cannot be applied cleanly; the folder is unchanged. `files` names the
    files in conflict (or that the patch no longer fits), `merged` says whether a
    three-way merge was tried."""

    def __init__(self, files: Iterable[str], detail: str, *, merged: bool) -> None:
        self.files = sorted(set(files))
        self.detail = detail
        self.merged = merged
        names = ", ".join(self.files) or "the patched files"
        super().__init__(f"{detail}: {names}; nothing was changed")


@dataclass(frozen=True)
class ApplyResult:
    """What apply_patch did. status: "applied", "would-apply" (dry run), "already-applied"
    (nothing to do) or "empty" (the patch holds no change). `three_way` is True when
    the patch needed a three-way merge with local edits."""

    status: str
    three_way: bool
    changes: List[FileChange]
    stat: PatchStat
    since_earlier: bool = False
    """Only what is new since an earlier patch of the same task was applied (`changes`
    and `stat` are then of that part)."""

    @property
    def changed(self) -> bool:
        return self.status == "applied"


# --------------------------------------------------------------------------- applying

_FAILED_FILE = re.compile(
    r"^error: (?:patch failed: (.+):\d+|(.+): (?:patch does not apply|already exists in"
    r" (?:index|working directory)|does not exist in (?:index|working directory)"
    r"|does not match index|wrong type))$",
    re.M,
)


def _git_apply(runner: GitRunner, patch_file: Path, *flags: str) -> subprocess.CompletedProcess:
    """git apply (working tree only unless `flags` say --cached), never raising."""
    return runner.run(["apply", *flags, *APPLY_FLAGS, str(patch_file)], check=False)


def _failed_files(stderr: bytes) -> List[str]:
    text = stderr.decode("utf-8", "surrogateescape")
    return [m.group(1) or m.group(2) for m in _FAILED_FILE.finditer(text)]


class _ScratchMerge:
    """A three-way merge done away from the user's index and objects: a scratch index
    holding HEAD plus the working-tree state of the patched files, in a scratch object
    store that borrows the user's objects (and, when given, the snapshot bundle's)."""

    def __init__(self, root: Path, tmp: Path, snapshot_bundle: Optional[Path]) -> None:
        user = GitRunner(root)
        objects = Path(user.line(["rev-parse", "--git-path", "objects"]))
        objects = objects if objects.is_absolute() else root / objects
        bare = tmp / "scratch.git"
        user.run(["init", "-q", "--bare", str(bare)])
        (bare / "objects" / "info").mkdir(parents=True, exist_ok=True)
        (bare / "objects" / "info" / "alternates").write_text(f"{objects}\n", encoding="utf-8")
        if snapshot_bundle is not None:
            GitRunner(bare, {"GIT_DIR": str(bare)}).run(
                ["bundle", "unbundle", str(snapshot_bundle)]
            )
        self.root = root
        self.git = user.with_env(
            {
                "GIT_INDEX_FILE": str(tmp / "index"),
                "GIT_OBJECT_DIRECTORY": str(bare / "objects"),
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects),
                "GIT_LITERAL_PATHSPECS": "1",
            }
        )

    def base_tree(self, paths: Sequence[str]) -> str:
        """HEAD, with the patched paths as they are in the working tree now."""
        has_head = self.git.run(["rev-parse", "-q", "--verify", "HEAD^{commit}"], check=False)
        self.git.run(["read-tree", "HEAD" if has_head.returncode == 0 else "--empty"])
        tracked = set(split_z(self.git.out(["ls-files", "-z", "--", *paths]))) if paths else set()
        present = [p for p in paths if p in tracked or os.path.lexists(self.root / p)]
        if present:
            spec = b"\0".join(os.fsencode(p) for p in present)
            self.git.run(
                ["add", "-A", "-f", "--pathspec-from-file=-", "--pathspec-file-nul"], input=spec
            )
        return self.git.line(["write-tree"])

    def merge(self, patch_file: Path, first_failure: bytes) -> str:
        """The merged tree, or PatchConflict naming the files."""
        done = _git_apply(self.git, patch_file, "--3way", "--cached")
        if done.returncode == 0:
            return self.git.line(["write-tree"])
        unmerged = [p.split("\t", 1)[1] for p in split_z(self.git.out(["ls-files", "-u", "-z"]))]
        if unmerged:
            raise PatchConflict(unmerged, "the patch conflicts with local changes", merged=True)
        detail = "the patch does not apply to the files as they are now"
        if b"lacks the necessary blob" in done.stderr:
            detail += " (no three-way merge: the snapshot's files are missing; give the bundle)"
        files = _failed_files(first_failure) or _failed_files(done.stderr)
        raise PatchConflict(files, detail, merged=False)

    def diff(self, old_tree: str, new_tree: str) -> bytes:
        """A patch from the working tree's state to the merged one: it applies as-is."""
        return self.git.out(
            ["diff-tree", "-r", "-p", "--binary", "--full-index", "--no-renames",
             "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/",
             old_tree, new_tree]
        )  # fmt: skip


def _three_way(
    root: Path, tmp: Path, patch_file: Path, changes: Sequence[FileChange],
    snapshot_bundle: Optional[Path], first_failure: bytes,
    scratch: Optional[_ScratchMerge] = None,
) -> Path:  # fmt: skip
    """The merged change as a patch file that applies to the working tree as it is."""
    scratch = scratch or _ScratchMerge(root, tmp, snapshot_bundle)
    paths = sorted({p for c in changes for p in (c.old_path, c.new_path) if p is not None})
    base = scratch.base_tree(paths)
    merged = scratch.merge(patch_file, first_failure)
    merged_file = tmp / "merged.patch"
    merged_file.write_bytes(scratch.diff(base, merged))
    return merged_file


def _since_earlier(
    scratch: _ScratchMerge, tmp: Path, earlier: Tuple[bytes, str], patch_file: Path
) -> Optional[Path]:
    """The change from the earlier patch's result to the latest's, both made on the
    snapshot commit in `scratch` (which keeps both results' files), as a patch file.
    None when either does not apply to the snapshot: the whole change is merged then."""
    earlier_patch, snapshot = earlier
    earlier_file = tmp / "earlier.patch"
    earlier_file.write_bytes(earlier_patch)
    trees = []
    for name, patch in (("earlier", earlier_file), ("latest", patch_file)):
        index = scratch.git.with_env({"GIT_INDEX_FILE": str(tmp / f"{name}.index")})
        index.run(["read-tree", snapshot])
        if _git_apply(index, patch, "--cached").returncode != 0:
            return None
        trees.append(index.line(["write-tree"]))
    delta = tmp / "since-earlier.patch"
    delta.write_bytes(scratch.diff(*trees))
    return delta


@dataclass
class _Plan:
    """What apply_patch writes: `patch_file` (None: it is all here already)."""

    patch_file: Optional[Path]
    changes: List[FileChange]
    three_way: bool = False
    since_earlier: bool = False


def _plan(
    runner: GitRunner, root: Path, tmp: Path, patch_file: Path, changes: List[FileChange],
    bundle: Optional[Path], earlier: Optional[Tuple[bytes, str]],
) -> _Plan:  # fmt: skip
    """The patch as it is; else, after an earlier apply of the same task, only what is new
    since; else a three-way merge of either with the local edits."""
    forward = _git_apply(runner, patch_file, "--check")
    if forward.returncode == 0:
        return _Plan(patch_file, changes)
    if _git_apply(runner, patch_file, "--check", "--reverse").returncode == 0:
        return _Plan(None, changes)
    scratch, delta = None, None
    if earlier is not None and bundle is not None:
        scratch = _ScratchMerge(root, tmp, bundle)
        delta = _since_earlier(scratch, tmp, earlier, patch_file)
    since = delta is not None
    if delta is not None:
        patch_file, changes = delta, parse_patch(delta.read_bytes())
        if not changes:
            return _Plan(None, [], since_earlier=True)
        check_safe(root, changes)
        forward = _git_apply(runner, patch_file, "--check")
        if forward.returncode == 0:
            return _Plan(patch_file, changes, since_earlier=True)
        if _git_apply(runner, patch_file, "--check", "--reverse").returncode == 0:
            return _Plan(None, changes, since_earlier=True)
    merged = _three_way(root, tmp, patch_file, changes, bundle, forward.stderr, scratch)
    if not merged.read_bytes().strip():  # the merge adds nothing to what is here
        return _Plan(None, changes, three_way=True, since_earlier=since)
    check = _git_apply(runner, merged, "--check")
    if check.returncode != 0:
        raise PatchConflict(
            _failed_files(check.stderr), "the merged patch does not apply", merged=True
        )
    return _Plan(merged, changes, three_way=True, since_earlier=since)


def apply_patch(
    repo_root: PathLike,
    data: bytes,
    *,
    dry_run: bool = False,
    snapshot_bundle: Optional[PathLike] = None,
    earlier: Optional[Tuple[bytes, str]] = None,
) -> ApplyResult:
    """Apply a git patch to the working tree of `repo_root` (never to its index).

    Safety first (PatchRefused), then a plain apply; if that no longer fits, a
    three-way merge made in scratch (the snapshot bundle, when given, supplies the
    files the patch was made against). `earlier` (patch, snapshot commit): a patch of
    the same task applied here before; when the whole change no longer fits, only what
    it adds to that one is applied (a follow-up's work). All or nothing: PatchConflict
    names the files and leaves the folder as it was. `dry_run` says what would happen,
    changing nothing.
    """
    root = work_tree_root(Path(repo_root))
    changes = parse_patch(data)
    if not changes:
        if data.strip():
            raise PatchRefused([("patch", "not a git patch: no `diff --git` section in it")])
        return ApplyResult("empty", False, [], PatchStat.of([]))
    check_safe(root, changes)
    runner = GitRunner(root)
    bundle = Path(snapshot_bundle) if snapshot_bundle is not None else None
    with tempfile.TemporaryDirectory(prefix="rebyte-patch-") as scratch:
        tmp = Path(scratch)
        patch_file = tmp / "change.patch"
        patch_file.write_bytes(data)
        git_sees(runner, patch_file, changes)
        plan = _plan(runner, root, tmp, patch_file, changes, bundle, earlier)
        shown = (plan.changes, PatchStat.of(plan.changes))
        if plan.patch_file is None:
            return ApplyResult("already-applied", plan.three_way, *shown, plan.since_earlier)
        if dry_run:
            return ApplyResult("would-apply", plan.three_way, *shown, plan.since_earlier)
        done = _git_apply(runner, plan.patch_file)
        if done.returncode != 0:  # changed under us since the check; git applies all or none
            raise PatchConflict(
                _failed_files(done.stderr), "the patch stopped applying", merged=False
            )
    return ApplyResult("applied", plan.three_way, *shown, plan.since_earlier)
