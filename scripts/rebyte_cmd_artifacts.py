"""`artifacts` commands: the files a task's workspace holds, listed, fetched, added, removed.

Imported by rebyte_commands.py only when a command line names the group (and by
`create`/`follow-up --download`, through `fetch_artifacts`).
"""

from __future__ import annotations

import os

import rebyte_commands as cli
from rebyte_commands import EXIT_API, EXIT_OK, EXIT_USAGE, UsageError, command, confirm, make_client

_RUN = cli.RUN


# ------------------------------------------------------------------------ progress


class TransferBar:
    """Bytes moved per file: a bar redrawn in place on a terminal, a line per file elsewhere."""

    WIDTH = 24

    def __init__(self, out: cli.Output, verb: str) -> None:
        import time

        self._time = time
        self._out, self._verb = out, verb
        self._name, self._done, self._total = None, 0, None
        self._started = self._drawn_at = 0.0
        self._line = None

    def update(self, name: str, done: int, total) -> None:
        if name != self._name:
            self._start(name, total)
        self._done, self._total = done, total
        now = self._time.monotonic()
        if self._line is not None and (now - self._drawn_at >= 0.1 or done == total):
            self._drawn_at = now
            self._line.update()

    def close(self) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None

    def _start(self, name: str, total) -> None:
        self.close()
        self._name, self._started = name, self._time.monotonic()
        if self._out.progress_enabled and self._out.tty:
            self._line = self._out.live(self._render)
        else:
            size = f" ({cli._size(total)})" if total is not None else ""
            self._out.progress(f"{self._verb} {name}{size}")

    def _render(self, line) -> str:
        elapsed = max(self._time.monotonic() - self._started, 1e-6)
        rate = f"  {cli._size(self._done / elapsed)}/s"
        if not self._total:
            return f"{self._verb} {self._name} {cli._size(self._done)}{rate}"
        filled = int(min(self._done / self._total, 1.0) * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        return (
            f"{self._verb} {self._name} [{bar}] {cli._size(self._done)} / "
            f"{cli._size(self._total)}{rate}"
        )


# ------------------------------------------------------------------------ helpers


def fetch_artifacts(
    client,
    out: cli.Output,
    task_or_workspace: str,
    names,
    dest: str,
    *,
    overwrite: bool,
    replace_hint: str = "use --overwrite to replace it, or another --out",
    existing_is_error: bool = True,
    workspace_id=None,
):
    """Download the artifacts (all when `names` is None); return (files, refused, exit code).

    `workspace_id`: the task's workspace when the caller holds it (see cli.workspace_for).
    Each name not downloaded is reported on stderr and the others are downloaded.
    A file that exists already is kept, with `replace_hint`: bad local input (exit 2)
    when the user asked for that file, only a note after a task's wait, whose
    outcome must not read as a command that sent nothing. A name that is unsafe or
    collides with another (the server's doing): exit 5.
    """
    rc = cli.load_client_module()
    workspace_id = cli.workspace_for(client, task_or_workspace, workspace_id)
    if names is None:
        names = [entry["name"] for entry in client.artifacts.list(workspace_id)]
    bar = TransferBar(out, "downloading")
    refused, existing, codes = [], [], []
    try:
        try:
            files = (
                client.artifacts.download_all(
                    workspace_id,
                    names,
                    dest,
                    overwrite=overwrite,
                    progress=bar.update,
                )
                if names
                else []
            )
        except rc.ArtifactsRefusedError as error:
            refused = [{"name": name, "reason": reason} for name, reason in error.refused]
            existing = error.existing
            skipped = {item["name"] for item in refused}
            remaining = [name for name in names if name not in skipped]
            files = (
                client.artifacts.download_all(
                    workspace_id,
                    remaining,
                    dest,
                    overwrite=overwrite,
                    progress=bar.update,
                )
                if remaining
                else []
            )
    finally:
        bar.close()
    for item in refused:
        if item["name"] in existing and not existing_is_error:
            out.note(f"artifact {item['name']!r} kept as it was: {item['reason']}; {replace_hint}")
        elif item["name"] in existing:
            codes.append(EXIT_USAGE)
            out.error(f"artifact {item['name']!r} not downloaded: {item['reason']}; {replace_hint}")
        else:
            codes.append(EXIT_API)
            out.error(f"artifact {item['name']!r} not downloaded: {item['reason']}")
    for file in files:
        out.progress(f"downloaded {file['name']} ({cli._size(file['bytes'])}) to {file['path']}")
    return files, refused, cli.worst_exit(codes)


# ----------------------------------------------------------------------- commands


def _target_argument(parser) -> None:
    parser.add_argument(
        "target",
        metavar="TASK_OR_WORKSPACE",
        type=cli._task_ref,
        help="a task id (or URL): its workspace; or a workspace or computer id",
    )
    cli.add_workspace_option(parser)


def _list_arguments(parser) -> None:
    _target_argument(parser)


def cmd_list(args, out, run) -> int:
    client = make_client(args)
    workspace_id = cli.workspace_for(client, args.target, args.workspace)
    entries = client.artifacts.list(workspace_id)
    out.result({"data": entries}, [entry["name"] for entry in entries])
    return EXIT_OK


def _download_arguments(parser) -> None:
    _target_argument(parser)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="artifacts to fetch (default: all)"
    )
    parser.add_argument(
        "--out",
        "-o",
        dest="out_dir",
        default=".",
        metavar="DIR",
        help="where to write them (default: the current folder); "
        "nested names keep their folders inside it",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace files that exist")


def cmd_download(args, out, run) -> int:
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise UsageError(f"--out {args.out_dir} is not a folder")
    client = make_client(args)
    files, refused, code = fetch_artifacts(
        client,
        out,
        args.target,
        args.names or None,
        args.out_dir,
        overwrite=args.overwrite,
        workspace_id=args.workspace,
    )
    out.result({"files": files, "refused": refused}, [file["path"] for file in files])
    return code


def _upload_arguments(parser) -> None:
    _target_argument(parser)
    parser.add_argument("paths", nargs="+", metavar="FILE", help="local files (their names stay)")


def cmd_upload(args, out, run) -> int:
    rc = cli.load_client_module()
    cli.check_upload_paths(rc, args.paths)
    client = make_client(args)
    workspace_id = cli.workspace_for(client, args.target, args.workspace)
    bar = TransferBar(out, "uploading")
    try:
        entries = client.artifacts.upload(workspace_id, args.paths, progress=bar.update)
    finally:
        bar.close()
    out.result({"workspaceId": workspace_id, "data": entries}, [e["name"] for e in entries])
    return EXIT_OK


def _delete_arguments(parser) -> None:
    _target_argument(parser)
    parser.add_argument("names", nargs="*", metavar="NAME", help="artifacts to delete")
    parser.add_argument("--all", action="store_true", help="delete every artifact of the workspace")


def cmd_delete(args, out, run) -> int:
    if bool(args.names) == bool(args.all):
        raise UsageError("name the artifacts to delete, or give --all (not both)")
    what = (
        "every artifact"
        if args.all
        else (
            f"artifact {args.names[0]}" if len(args.names) == 1 else f"{len(args.names)} artifacts"
        )
    )
    confirm(f"delete {what} of {args.target}", yes=args.yes)
    client = make_client(args)
    workspace_id = cli.workspace_for(client, args.target, args.workspace)
    if args.all:
        client.artifacts.delete_all(workspace_id)
        out.result({"workspaceId": workspace_id, "deleted": "all"}, [workspace_id])
        return EXIT_OK
    for name in args.names:
        client.artifacts.delete(workspace_id, name)
    documents = [{"name": name, "deleted": True} for name in args.names]
    out.result({"workspaceId": workspace_id, "data": documents}, args.names)
    return EXIT_OK


command(
    ["artifacts", "list"],
    "list the files a task's workspace holds",
    _list_arguments,
    cmd_list,
    examples=[f"{_RUN} artifacts list TASK_ID", f"{_RUN} artifacts list TASK_ID -q"],
)
command(
    ["artifacts", "download"],
    "download artifacts (all by default) into a folder; JSON names each local file",
    _download_arguments,
    cmd_download,
    examples=[
        f"{_RUN} artifacts download TASK_ID --out results",
        f"{_RUN} artifacts download TASK_ID report-1.md --out results --overwrite",
    ],
)
command(
    ["artifacts", "upload"],
    "upload local files into a task's workspace",
    _upload_arguments,
    cmd_upload,
    examples=[f"{_RUN} artifacts upload TASK_ID notes.txt data.csv"],
)
command(
    ["artifacts", "delete"],
    "delete artifacts (asks first on a terminal; --yes elsewhere)",
    _delete_arguments,
    cmd_delete,
    examples=[
        f"{_RUN} artifacts delete TASK_ID report-1.md --yes",
        f"{_RUN} artifacts delete TASK_ID --all --yes",
    ],
    destroys=True,
)
