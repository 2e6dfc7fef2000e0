"""`artifacts` commands: the files a task's workspace holds, listed, fetched, added, removed."""

from __future__ import annotations

import os

from .errors import EXIT_OK, UsageError
from .fetching import fetch_artifacts
from .options import add_workspace_option, command, commands, options, task_ref
from .output import RUN, TransferBar
from .session import check_upload_paths, confirm, load_client_module, make_client, workspace_for

_RUN = RUN


def _target_argument(parser) -> None:
    parser.add_argument(
        "target",
        metavar="TASK_OR_WORKSPACE",
        type=task_ref,
        help="a task id (or URL): its workspace; or a workspace or computer id",
    )
    add_workspace_option(parser)


def _list_arguments(parser) -> None:
    _target_argument(parser)


ListOptions = options("ListOptions", "client target workspace")


def cmd_list(args, out, run) -> int:
    opts = ListOptions.of(args)
    client = make_client(opts.client)
    workspace_id = workspace_for(client, opts.target, opts.workspace)
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


DownloadOptions = options("DownloadOptions", "client target names out_dir overwrite workspace")


def cmd_download(args, out, run) -> int:
    opts = DownloadOptions.of(args)
    if os.path.exists(opts.out_dir) and not os.path.isdir(opts.out_dir):
        raise UsageError(f"--out {opts.out_dir} is not a folder")
    client = make_client(opts.client)
    files, refused, code = fetch_artifacts(
        client,
        out,
        opts.target,
        opts.names or None,
        opts.out_dir,
        overwrite=opts.overwrite,
        workspace_id=opts.workspace,
    )
    out.result({"files": files, "refused": refused}, [file["path"] for file in files])
    return code


def _upload_arguments(parser) -> None:
    _target_argument(parser)
    parser.add_argument("paths", nargs="+", metavar="FILE", help="local files (their names stay)")


UploadOptions = options("UploadOptions", "client target paths workspace")


def cmd_upload(args, out, run) -> int:
    opts = UploadOptions.of(args)
    rc = load_client_module()
    check_upload_paths(rc, opts.paths)
    client = make_client(opts.client)
    workspace_id = workspace_for(client, opts.target, opts.workspace)
    bar = TransferBar(out, "uploading")
    try:
        entries = client.artifacts.upload(workspace_id, opts.paths, progress=bar.update)
    finally:
        bar.close()
    out.result({"workspaceId": workspace_id, "data": entries}, [e["name"] for e in entries])
    return EXIT_OK


def _delete_arguments(parser) -> None:
    _target_argument(parser)
    parser.add_argument("names", nargs="*", metavar="NAME", help="artifacts to delete")
    parser.add_argument("--all", action="store_true", help="delete every artifact of the workspace")


DeleteOptions = options("DeleteOptions", "client target names all workspace yes")


def cmd_delete(args, out, run) -> int:
    opts = DeleteOptions.of(args)
    if bool(opts.names) == bool(opts.all):
        raise UsageError("name the artifacts to delete, or give --all (not both)")
    what = (
        "every artifact"
        if opts.all
        else (
            f"artifact {opts.names[0]}" if len(opts.names) == 1 else f"{len(opts.names)} artifacts"
        )
    )
    confirm(f"delete {what} of {opts.target}", yes=opts.yes)
    client = make_client(opts.client)
    workspace_id = workspace_for(client, opts.target, opts.workspace)
    if opts.all:
        client.artifacts.delete_all(workspace_id)
        out.result({"workspaceId": workspace_id, "deleted": "all"}, [workspace_id])
        return EXIT_OK
    for name in opts.names:
        client.artifacts.delete(workspace_id, name)
    documents = [{"name": name, "deleted": True} for name in opts.names]
    out.result({"workspaceId": workspace_id, "data": documents}, opts.names)
    return EXIT_OK


COMMANDS = commands(
    command(
        ["artifacts", "list"],
        _list_arguments,
        cmd_list,
        help="list the files a task's workspace holds",
        examples=[f"{_RUN} artifacts list TASK_ID", f"{_RUN} artifacts list TASK_ID -q"],
    ),
    command(
        ["artifacts", "download"],
        _download_arguments,
        cmd_download,
        help="download artifacts (all by default) into a folder; JSON names each local file",
        examples=[
            f"{_RUN} artifacts download TASK_ID --out results",
            f"{_RUN} artifacts download TASK_ID report-1.md --out results --overwrite",
        ],
    ),
    command(
        ["artifacts", "upload"],
        _upload_arguments,
        cmd_upload,
        help="upload local files into a task's workspace",
        examples=[f"{_RUN} artifacts upload TASK_ID notes.txt data.csv"],
    ),
    command(
        ["artifacts", "delete"],
        _delete_arguments,
        cmd_delete,
        help="delete artifacts (asks first on a terminal; --yes elsewhere)",
        examples=[
            f"{_RUN} artifacts delete TASK_ID report-1.md --yes",
            f"{_RUN} artifacts delete TASK_ID --all --yes",
        ],
        destroys=True,
    ),
)
