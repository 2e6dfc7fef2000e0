"""`diff` and `apply`, and what `create --local-repo` adds: a local repository's exact
state handed to cloud agents, and their change taken back as a patch.

The library does the work (rebyte/localrepo.py makes the snapshot, rebyte/roundtrip.py
uploads it and fetches the patch, rebyte/patches.py checks it and rebyte/applying.py
applies it); this module says what happened, and maps each outcome to its exit code:
8 when there is no patch, 9 on a conflict, 5 for a patch refused as unsafe or too large
(server data, as an unsafe artifact name is).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import tempfile
from dataclasses import dataclass

from rebyte import applying, localrepo, patches, record, roundtrip
from rebyte.gitrun import GitFailed, work_tree_root

from .errors import (
    EXIT_API,
    EXIT_CONFLICT,
    EXIT_NO_PATCH,
    EXIT_OK,
    TaskOutcome,
    UsageError,
    worst_exit,
)
from .options import (
    add_workspace_option,
    command,
    commands,
    many_tasks_argument,
    one_task_argument,
    options,
    whole,
)
from .output import RUN, Output, TransferBar, format_size, tab_line
from .session import make_client, workspace_for

MAX_ATTEMPTS = 10
# What the prompt's block may take once the bundle's name is known: the prompt is checked
# with a block naming a file this long before the snapshot is even made.
PLACEHOLDER_BUNDLE = "rebyte-snapshot-000000000000-0000000000000000.bundle"
PLACEHOLDER_SHA = "0" * 40


# ------------------------------------------------------------ create --local-repo


def add_local_repo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local-repo",
        metavar="DIR",
        help="send this git folder as it is now; see `diff`, `apply`",
    )
    parser.add_argument(
        "--attempts", type=whole(1, MAX_ATTEMPTS), metavar="N", help="N tasks on one snapshot"
    )
    parser.add_argument(
        "--allow-secrets", action="store_true", help="send .env and key files too (ask first)"
    )
    parser.add_argument(
        "--max-snapshot-mb",
        type=whole(1, 1024 * 1024),
        metavar="MB",
        help=f"size limit (default {localrepo.DEFAULT_MAX_BYTES >> 20})",
    )


@dataclass(frozen=True)
class LocalRepo:
    """What `create --local-repo` (or a batch spec's localRepo) asks for."""

    folder: str
    attempts: int = 1
    allow_secrets: bool = False
    max_bytes: int = localrepo.DEFAULT_MAX_BYTES


def local_repo_request(opts) -> LocalRepo | None:
    """The --local-repo request of `create`, its options checked against the others."""
    if not opts.local_repo:
        for flag, value in (
            ("--attempts", opts.attempts),
            ("--allow-secrets", opts.allow_secrets),
            ("--max-snapshot-mb", opts.max_snapshot_mb),
        ):
            if value:
                raise UsageError(f"{flag} goes with --local-repo DIR")
        return None
    if opts.github_url:
        raise UsageError("--local-repo and --github-url both name the code: give one")
    attempts = opts.attempts or 1
    if attempts > 1:
        if opts.workspace or opts.new_computer:
            raise UsageError(
                "--attempts needs a workspace per attempt: drop --workspace/--new-computer"
            )
        if opts.watch or opts.download is not None:
            raise UsageError("--attempts goes with --wait, not --watch or --download")
    max_mb = opts.max_snapshot_mb
    return LocalRepo(
        opts.local_repo,
        attempts=attempts,
        allow_secrets=opts.allow_secrets,
        max_bytes=max_mb << 20 if max_mb else localrepo.DEFAULT_MAX_BYTES,
    )


def prompt_to_check(prompt: str) -> str:
    """The prompt as long as it will be once the instruction block is added."""
    return prompt + localrepo.instruction_block(PLACEHOLDER_BUNDLE, PLACEHOLDER_SHA)


def take_snapshot(out: Output, wanted: LocalRepo, folder: str | None = None):
    """Make the snapshot bundle (in the kept-bundles folder unless `folder`), or refuse
    with one line that names the option that would let it through."""
    dest = folder or roundtrip.bundle_folder()
    try:
        snapshot = localrepo.make_snapshot(
            wanted.folder, dest, max_bytes=wanted.max_bytes, allow_secrets=wanted.allow_secrets
        )
    except localrepo.SnapshotRefused as refused:
        shown = ", ".join(refused.paths[:8]) + (" …" if len(refused.paths) > 8 else "")
        raise UsageError(
            f"refusing to send {len(refused.paths)} file(s) that look like secrets: {shown}; "
            "nothing was sent. Tell the user: they can list them in .gitignore, or say that "
            "they may go (then pass --allow-secrets)"
        ) from None
    except localrepo.SnapshotTooBig as too_big:
        raise UsageError(f"{too_big}: nothing was sent (raise --max-snapshot-mb)") from None
    except GitFailed as error:
        raise UsageError(f"{error}: nothing was sent") from None
    if folder is None:
        roundtrip.prune_bundles(dest)
    out.progress(
        f"snapshot {snapshot.sha[:12]} of {snapshot.repo_root}: {snapshot.file_count} files "
        f"({format_size(snapshot.total_bytes)}), {len(snapshot.changed)} changed since HEAD; "
        f"bundle {format_size(snapshot.bundle_size)}"
    )
    if snapshot.left_out:
        out.progress(
            "left out this skill's own untracked install(s): " + ", ".join(snapshot.left_out)
        )
    return snapshot


def dry_run_snapshot(out: Output, wanted: LocalRepo, prompt: str):
    """What a dry run shows of the snapshot, made in a scratch folder and thrown away:
    its summary, the prompt as it would be sent, and the bundle's stand-in reference."""
    with tempfile.TemporaryDirectory(prefix="rebyte-dry-run-") as folder:
        snapshot = take_snapshot(out, wanted, folder)
    name = snapshot.bundle_path.name
    summary = {
        "repo": str(snapshot.repo_root),
        "snapshot": snapshot.sha,
        "files": snapshot.file_count,
        "bytes": snapshot.total_bytes,
        "bundleBytes": snapshot.bundle_size,
        "changed": snapshot.changed,
        "attempts": wanted.attempts,
    }
    if snapshot.left_out:
        summary["leftOut"] = snapshot.left_out
    ref = {"id": f"<upload of {name}>", "filename": name}
    return summary, prompt + localrepo.instruction_block(name, snapshot.sha), ref


def hand_off(client, out: Output, snapshot):
    """Upload the bundle once (its progress on stderr); the Handoff to create tasks with."""
    upload = functools.partial(roundtrip.hand_off, client, snapshot)
    handoff = TransferBar(out, "uploading").carry(
        snapshot.bundle_path.name, snapshot.bundle_size, upload
    )
    out.progress(
        f"uploaded the snapshot ({format_size(snapshot.bundle_size)}) as {handoff.file['filename']}"
    )
    return handoff


def plan_with_handoff(plan: dict, handoff) -> dict:
    """A task's plan (see create.plan_task, its prompt as the user wrote it) sending the
    handoff's bundle, and the block that points the agent at it; `asked` keeps the
    user's prompt for the local record."""
    refs = plan["refs"] + [handoff.file]
    prompt = handoff.prompt_for(plan["prompt"])
    return {**plan, "prompt": prompt, "asked": plan["prompt"], "refs": refs, "handoff": handoff}


def remember_handoff(task_id: str, handoff, attempt: int | None = None) -> None:
    """The record keeps the snapshot of each task: follow-up, diff and apply read it."""
    record.note(task_id, **handoff.record_fields(), attempt=attempt)


def follow_up_prompt(task_id: str, prompt: str) -> str:
    """A follow-up to a round-trip task asks for the whole change again."""
    entry = record.find_task(task_id) or {}
    snapshot = entry.get("snapshot")
    if isinstance(snapshot, str) and snapshot:
        return roundtrip.follow_up_prompt(prompt, snapshot)
    return prompt


def next_steps(task_ids) -> str:
    """Where the change is seen and taken, once the tasks have ended."""
    which = task_ids[0] if len(task_ids) == 1 else "TASK_ID"
    return (
        f"its change, once it ends: `{RUN} diff {' '.join(task_ids)} --stat`, "
        f"then `{RUN} apply {which}`"
    )


# ------------------------------------------------------------------ diff and apply


def _fetch(client, task_id: str, given_workspace) -> bytes:
    """The task's patch, or an exit 8 that says what the workspace holds instead."""
    workspace = workspace_for(client, task_id, given_workspace)
    try:
        fetched = roundtrip.fetch_patch(client, workspace)
    except roundtrip.PatchTooLarge as too_large:
        raise TaskOutcome(EXIT_API, f"task {task_id}: {too_large}") from None
    if fetched.data is not None:
        return fetched.data
    raise TaskOutcome(EXIT_NO_PATCH, no_patch_message(client, task_id, fetched.artifacts))


def no_patch_message(client, task_id: str, artifacts) -> str:
    names = [name for name in artifacts if name != localrepo.PATCH_NAME]
    left = f"it left {len(names)} file(s): " + ", ".join(names[:10]) if names else "it left none"
    more = " …" if len(names) > 10 else ""
    status = None
    try:
        status = client.tasks.get(task_id).get("status")
    except Exception:  # the message stands without it; the status only sharpens it  # noqa: BLE001
        pass
    if status == "running":
        hint = f"the task is still running: `{RUN} wait {task_id}`, then try again"
    else:
        hint = f"its answer: `{RUN} result {task_id}`; a follow-up can ask for the patch"
    return f"task {task_id} left no {localrepo.PATCH_NAME} in its workspace; {left}{more}; {hint}"


_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


def terminal_safe(data: bytes) -> bytes:
    """The patch for a terminal: control bytes shown as \\xNN, so that a hostile patch
    cannot move the cursor or retitle the window. Piped output stays byte for byte."""
    return _CONTROL.sub(lambda m: b"\\x%02x" % m.group()[0], data)


def plain_path(path: str) -> str:
    """A file name on a -q line: itself, with control characters escaped (never a
    second line)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in path)


def stat_document(task_id: str, data: bytes) -> dict:
    summary = patches.stat(data)
    files = []
    for change in summary.files:
        entry = {"path": change.path, "status": change.status}
        if change.status in ("renamed", "copied"):
            entry["from"] = change.old_path
        if change.binary:
            entry["binary"] = True
        else:
            entry.update(insertions=change.added_lines, deletions=change.deleted_lines)
        files.append(entry)
    return {
        "id": task_id,
        "files": files,
        "insertions": summary.insertions,
        "deletions": summary.deletions,
        "summary": summary.summary(),
    }


def stat_line(document: dict) -> str:
    if "files" not in document:
        return tab_line(document["id"], "-", "-", "-")
    return tab_line(
        document["id"],
        len(document["files"]),
        f"+{document['insertions']}",
        f"-{document['deletions']}",
    )


def _diff_arguments(parser: argparse.ArgumentParser) -> None:
    many_tasks_argument(parser)
    parser.add_argument(
        "--stat", action="store_true", help="the summary (JSON): files, insertions, deletions"
    )
    add_workspace_option(parser, "with one TASK_ID: ")


DiffOptions = options("DiffOptions", "client task_ids stat workspace")


def cmd_diff(args, out: Output, run) -> int:
    opts = DiffOptions.of(args)
    task_ids = list(dict.fromkeys(opts.task_ids))
    if opts.workspace and len(task_ids) > 1:
        raise UsageError("--workspace goes with a single TASK_ID")
    client = make_client(opts.client)
    if len(task_ids) == 1 and not opts.stat:
        data = _fetch(client, task_ids[0], opts.workspace)
        if out.quiet:
            for change in patches.parse_patch(data):
                print(plain_path(change.display), flush=True)
        else:
            _write_patch(data)
        return EXIT_OK
    documents, codes = [], []
    for task_id in task_ids:
        try:
            documents.append(stat_document(task_id, _fetch(client, task_id, opts.workspace)))
        except TaskOutcome as outcome:
            if len(task_ids) == 1:
                raise
            out.error(str(outcome))
            documents.append({"id": task_id, "patch": None, "exitCode": outcome.code})
            codes.append(outcome.code)
    shown = documents[0] if len(documents) == 1 else documents
    out.result(shown, [stat_line(document) for document in documents])
    return worst_exit(codes)


def _write_patch(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(terminal_safe(data) if sys.stdout.isatty() else data)
    sys.stdout.buffer.flush()


def _apply_arguments(parser: argparse.ArgumentParser) -> None:
    one_task_argument(parser)
    parser.add_argument(
        "--repo", metavar="DIR", default=".", help="the repository (default: the current folder)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check it and say what would change; change nothing"
    )
    add_workspace_option(parser)


ApplyOptions = options("ApplyOptions", "client task_id repo dry_run workspace")

_SAID = {
    "applied": "applied the change of task {id} to {root}",
    "would-apply": "would apply the change of task {id} to {root}",
    "already-applied": "the change of task {id} is already applied to {root}",
    "empty": "the patch of task {id} holds no change for {root}",
}


def cmd_apply(args, out: Output, run) -> int:
    opts = ApplyOptions.of(args)
    task_id = opts.task_id
    root = work_tree_root(opts.repo)  # before anything is fetched
    entry = record.find_task(task_id) or {}
    client = make_client(opts.client)
    data = _fetch(client, task_id, opts.workspace or record.workspace_in(entry))
    snapshot_repo = entry.get("repo")
    if isinstance(snapshot_repo, str) and os.path.realpath(snapshot_repo) != os.path.realpath(root):
        out.warn(f"the snapshot was of {snapshot_repo}; applying to {root}")
    bundle = entry.get("bundle")
    bundle = bundle if isinstance(bundle, str) and os.path.isfile(bundle) else None
    earlier = roundtrip.applied_before(task_id, entry.get("snapshot"))
    try:
        done = applying.apply_patch(
            root, data, dry_run=opts.dry_run, snapshot_bundle=bundle, earlier=earlier
        )
    except patches.PatchRefused as refused:
        raise TaskOutcome(
            EXIT_API, f"task {task_id}: {refused}; nothing was applied (tell the user)"
        ) from None
    except applying.PatchConflict as conflict:
        raise TaskOutcome(
            EXIT_CONFLICT,
            f"task {task_id}: {conflict}. Tell the user; they can set the local edits to "
            f"those files aside and apply again, merge by hand (`{RUN} diff {task_id} > "
            "/tmp/rebyte-change.patch && git apply --3way /tmp/rebyte-change.patch` leaves "
            "conflict markers), or "
            "start a new --local-repo task from the tree as it is now",
        ) from None
    except GitFailed as error:  # git itself, on this machine: not the patch, not a bug here
        raise UsageError(
            f"{error}; nothing was applied. See what `git status` says in {root}, then apply again"
        ) from None
    if done.status in ("applied", "already-applied") and not opts.dry_run and entry.get("snapshot"):
        remember_applied(out, task_id, data)
    files = [change.display for change in done.changes]
    merged = " (a three-way merge with local edits)" if done.three_way else ""
    said = _SAID[done.status].format(id=task_id, root=root)
    if done.since_earlier:
        said += ", what is new since it was last applied"
    out.note(f"{said}: {done.stat.summary()}{merged}")
    document = {
        "id": task_id,
        "status": done.status,
        "repo": str(root),
        "threeWay": done.three_way,
        "files": files,
        "insertions": done.stat.insertions,
        "deletions": done.stat.deletions,
    }
    if done.since_earlier:
        document["sinceEarlierApply"] = True
    changing = done.status in ("applied", "would-apply")
    out.result(document, [plain_path(name) for name in files] if changing else [])
    return EXIT_OK


def remember_applied(out: Output, task_id: str, data: bytes) -> None:
    """Keep the patch as applied, so that after a follow-up only what is new is applied."""
    try:
        roundtrip.keep_applied(task_id, data)
    except OSError as error:
        out.warn(
            f"could not keep the applied patch ({error.strerror or error}): after a "
            "follow-up, apply will merge the whole change three-way"
        )


COMMANDS = commands(
    command(
        ["diff"],
        _diff_arguments,
        cmd_diff,
        examples=[
            f"{RUN} diff TASK_ID --stat",
            f"{RUN} diff TASK_ID TASK_ID_2 TASK_ID_3 --stat -q",
        ],
        quiet="the files changed, one per line; with --stat or several tasks,\n"
        "  ID<TAB>FILES<TAB>+INSERTIONS<TAB>-DELETIONS per task",
        details="without --stat, one task's patch itself (git's binary format) on stdout",
    ),
    command(
        ["apply"],
        _apply_arguments,
        cmd_apply,
        examples=[f"{RUN} apply TASK_ID --dry-run", f"{RUN} apply TASK_ID --repo ../project -q"],
        quiet="the files changed (or that would change), one per line",
        details="checks first, then applies whole or not at all (exit 9 on a conflict)",
    ),
)
