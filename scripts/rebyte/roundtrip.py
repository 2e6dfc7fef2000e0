"""The round trip of a local repository: hand its exact state to cloud agents, take the
change back as a patch.

The state travels as a git bundle of a snapshot commit (see localrepo.py), uploaded
once through the files API and attached to each task; the prompt gets a fixed block
that says where the bundle is and where to leave the patch (`PATCH_NAME` in the
workspace). The patch comes back through the artifacts endpoints; patches.py checks
it and applying.py applies it. A library: no printing; the CLI words the outcomes.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

from .localrepo import CLONE_DIR, PATCH_NAME, Snapshot, instruction_block

BUNDLE_CONTENT_TYPE = "application/x-git-bundle"
# Bundles kept in the state folder: `apply` needs the snapshot's files for a three-way
# merge where the tree has moved on. The oldest go past this many.
KEPT_BUNDLES = 5
# A patch is read whole (to check and apply it); one larger than this is refused.
MAX_PATCH_BYTES = 64 * 1024 * 1024
# Patches kept once applied, one per task: a later apply of the task's follow-up takes
# only what is new since. The oldest go past this many.
KEPT_APPLIED = 20


class PatchTooLarge(Exception):
    """The workspace's patch is larger than MAX_PATCH_BYTES: it was not read."""


@dataclass
class Handoff:
    """A snapshot uploaded for tasks: the file reference to attach to each of them."""

    snapshot: Snapshot
    file: dict

    def prompt_for(self, prompt: str) -> str:
        """The prompt with the block that points the agent at this upload (tasks on one
        snapshot share the upload, each with a prompt of its own)."""
        return prompt + instruction_block(self.file["filename"], self.snapshot.sha)

    def record_fields(self) -> dict:
        """What the local record keeps of it, for diff, apply and follow-ups."""
        return {
            "snapshot": self.snapshot.sha,
            "snapshotFile": self.file.get("id"),
            "patchName": PATCH_NAME,
            "repo": str(self.snapshot.repo_root),
            "bundle": str(self.snapshot.bundle_path),
        }


@dataclass
class FetchedPatch:
    """What a task's workspace holds of its change: the patch (None when it left none) and
    the names of every file it did leave."""

    data: Optional[bytes]
    artifacts: List[str] = field(default_factory=list)


def hand_off(
    client: Any,
    snapshot: Snapshot,
    *,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Handoff:
    """Upload the snapshot's bundle once, for any number of tasks.

    The server may rename an upload (a short suffix), so the prompt's block names the
    file as the upload's answer does.
    """
    ref = client.files.upload(
        str(snapshot.bundle_path), content_type=BUNDLE_CONTENT_TYPE, progress=progress
    )
    return Handoff(snapshot, {"id": ref["id"], "filename": ref["filename"]})


def follow_up_prompt(prompt: str, snapshot_sha: str) -> str:
    """A follow-up to a round-trip task: the same clone, the patch again the whole change."""
    return (
        f"{prompt}\n\n---\nKeep working in {CLONE_DIR}. When done, write the WHOLE change "
        f"against commit {snapshot_sha} again to /code/{PATCH_NAME} (replace the file), "
        f"as before: `cd {CLONE_DIR} && git add -A && git diff --binary --cached "
        f"{snapshot_sha} > /code/{PATCH_NAME}`.\n"
    )


def fetch_patch(client: Any, workspace_id: str) -> FetchedPatch:
    """The task's patch from its workspace, read whole up to MAX_PATCH_BYTES.

    The size is the server's word and is checked as the bytes arrive: a larger patch
    stops the download (PatchTooLarge) instead of filling the disk first.
    """
    names = [entry["name"] for entry in client.artifacts.list(workspace_id)]
    if PATCH_NAME not in names:
        return FetchedPatch(None, names)

    def guard(_name: str, received: int, total: Optional[int]) -> None:
        size = max(received, total or 0)
        if size > MAX_PATCH_BYTES:
            raise PatchTooLarge(
                f"the patch is over {MAX_PATCH_BYTES // (1024 * 1024)} MiB ({size} bytes "
                "or more): not read"
            )

    with tempfile.TemporaryDirectory(prefix="rebyte-patch-") as folder:
        downloaded = client.artifacts.download(
            workspace_id, PATCH_NAME, folder, overwrite=True, progress=guard
        )
        with open(downloaded["path"], "rb") as handle:
            data = handle.read(MAX_PATCH_BYTES + 1)
        guard(PATCH_NAME, len(data), None)
        return FetchedPatch(data, names)


def bundle_folder() -> str:
    """Where snapshots are made and kept: beside the local record, private to the user."""
    from .record import record_dir

    folder = os.path.join(record_dir(), "snapshots")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def prune_bundles(folder: str, keep: int = KEPT_BUNDLES) -> None:
    """Drop all but the `keep` newest bundles of the folder."""
    _prune(folder, ".bundle", keep)


def _prune(folder: str, suffix: str, keep: int) -> None:
    kept = [os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(suffix)]
    kept.sort(key=os.path.getmtime, reverse=True)
    for stale in kept[keep:]:
        try:
            os.unlink(stale)
        except OSError:
            pass


def _applied_path(task_id: str) -> str:
    import hashlib

    from .record import record_dir

    name = hashlib.sha256(task_id.encode()).hexdigest()[:32] + ".patch"
    return os.path.join(record_dir(), "applied", name)


def keep_applied(task_id: str, data: bytes) -> None:
    """Keep the task's patch as applied here (private to the user, written whole or not
    at all); the newest KEPT_APPLIED tasks' are kept."""
    path = _applied_path(task_id)
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    descriptor, part = tempfile.mkstemp(dir=folder, prefix=".applied-")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(part, path)
    finally:
        if os.path.exists(part):
            os.unlink(part)
    _prune(folder, ".patch", KEPT_APPLIED)


def applied_before(task_id: str, snapshot: Optional[str]) -> Optional[Tuple[bytes, str]]:
    """(the task's patch as last applied here, its snapshot commit), if both are known."""
    if not isinstance(snapshot, str) or not snapshot:
        return None
    try:
        with open(_applied_path(task_id), "rb") as handle:
            data = handle.read(MAX_PATCH_BYTES + 1)
    except OSError:
        return None
    return (data, snapshot) if len(data) <= MAX_PATCH_BYTES else None
