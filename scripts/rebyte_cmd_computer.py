"""The `computer` commands: Agent Computers, VMs that provision in the background.

A computer is created at once and becomes `ready` on its own; tasks created in it
(`create --computer ID`) start without provisioning. Imported only when a command
line names the group (see rebyte_commands.group).
"""

from __future__ import annotations

import rebyte_commands as cli
from rebyte_commands import EXIT_OK, Output, Run, command, make_client

_RUN = cli.RUN + " computer"


def _computer_ids(parser) -> None:
    parser.add_argument("computer_ids", nargs="+", metavar="COMPUTER_ID")


def _wait_options(parser, *names: str) -> None:
    parser.add_argument(
        *names,
        dest="wait_timeout",
        type=cli._seconds,
        default=cli.COMPUTER_WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for ready (default {cli.COMPUTER_WAIT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--interval",
        type=cli._seconds,
        default=2.0,
        metavar="SECONDS",
        help="first pause between polls; it grows to 10 s (default 2)",
    )


def _create_arguments(parser) -> None:
    parser.add_argument("--name", help="a name to know it by (at most 200 characters)")
    parser.add_argument("--icon", help="an icon name (at most 50 characters)")
    parser.add_argument("--wait", action="store_true", help="wait until it is ready")
    _wait_options(parser, "--wait-timeout")


def _list_arguments(parser) -> None:
    parser.add_argument(
        "--limit", type=cli._whole(1, 100), default=50, help="1 to 100 (default 50)"
    )
    parser.add_argument(
        "--offset", type=cli._whole(0), default=0, help="skip this many (default 0)"
    )
    parser.add_argument("--all", action="store_true", help="every computer, page by page")


def _wait_arguments(parser) -> None:
    _computer_ids(parser)
    _wait_options(parser, "--timeout", "--wait-timeout")


def _one_computer(parser) -> None:
    parser.add_argument("computer_id", metavar="COMPUTER_ID")


def _wait_one(client, out: Output, computer_id: str, *, timeout: float, interval: float) -> dict:
    """The ready computer; on failure, the computer as last seen is printed first."""
    rc = cli.load_client_module()
    seen = {}

    def noted(computer: dict) -> None:
        seen["last"] = computer
        out.progress(f"computer {computer_id}: {computer.get('status')}")

    try:
        return client.computers.wait(
            computer_id, timeout=timeout, poll_interval=interval, on_status=noted
        )
    except rc.ProvisionError as error:
        out.result(error.computer, [computer_id])
        raise
    except rc.WaitTimeoutError:
        if "last" in seen:
            out.result(seen["last"], [computer_id])
        raise


def cmd_create(args, out: Output, run: Run) -> int:
    client = make_client(args)
    computer = cli.create_computer(client, out, run, name=args.name, icon=args.icon)
    if args.wait:
        computer = _wait_one(
            client, out, computer["id"], timeout=args.wait_timeout, interval=args.interval
        )
    out.result(computer, [computer["id"]])
    return EXIT_OK


def cmd_get(args, out: Output, run: Run) -> int:
    computer = make_client(args).computers.get(args.computer_id)
    out.result(computer, [computer.get("id")])
    return EXIT_OK


def cmd_list(args, out: Output, run: Run) -> int:
    client = make_client(args)
    if args.all:
        computers = list(client.computers.iter())
        page = {"data": computers, "total": len(computers)}
    else:
        page = client.computers.list(limit=args.limit, offset=args.offset)
    out.result(page, [c.get("id") for c in page["data"] if isinstance(c, dict)])
    return EXIT_OK


def cmd_wait(args, out: Output, run: Run) -> int:
    rc = cli.load_client_module()
    ids = args.computer_ids
    for computer_id in ids:
        rc.check_id(computer_id, "computer id")
    client = make_client(args)
    if len(ids) == 1:
        computer = _wait_one(client, out, ids[0], timeout=args.wait_timeout, interval=args.interval)
        out.result(computer, [computer.get("id")])
        return EXIT_OK

    def wait(computer_id: str) -> dict:
        return client.computers.wait(
            computer_id, timeout=args.wait_timeout, poll_interval=args.interval
        )

    outcomes = cli.run_concurrently(wait, ids, concurrency=cli.MAX_PARALLEL_WAITS)
    documents, codes = [], []
    for computer_id, (computer, error) in zip(ids, outcomes):
        if error is None:
            documents.append(computer)
            continue
        document = getattr(error, "computer", None) or {"id": computer_id}
        documents.append({**document, "error": cli._one_line(str(error))})
        out.error(f"computer {computer_id}: {cli.explain(rc, error)}")
        codes.append(cli.exit_code_for(rc, error))
    out.result(documents, [doc.get("id") for doc in documents if "error" not in doc])
    return cli.worst_exit(codes)


def cmd_delete(args, out: Output, run: Run) -> int:
    rc = cli.load_client_module()
    ids = args.computer_ids
    for computer_id in ids:
        rc.check_id(computer_id, "computer id")
    what = f"computer {ids[0]}" if len(ids) == 1 else f"{len(ids)} computers"
    cli.confirm(f"delete {what} and its VM", yes=args.yes)
    client = make_client(args)
    return cli.delete_many(rc, out, ids, client.computers.delete, "computer")


command(
    ["computer", "create"],
    "create an Agent Computer (it provisions in the background)",
    _create_arguments,
    cmd_create,
    examples=[f"{_RUN} create --name build-box --wait -q"],
)
command(
    ["computer", "get"],
    "show a computer and its status (provisioning, ready, error)",
    _one_computer,
    cmd_get,
    examples=[f"{_RUN} get COMPUTER_ID"],
)
command(
    ["computer", "list"],
    "list Agent Computers, newest first",
    _list_arguments,
    cmd_list,
    examples=[f"{_RUN} list --limit 5", f"{_RUN} list --all -q"],
)
command(
    ["computer", "wait"],
    "wait until computers are ready",
    _wait_arguments,
    cmd_wait,
    examples=[f"{_RUN} wait COMPUTER_ID --timeout 300"],
    timeout=False,
)
command(
    ["computer", "delete"],
    "delete computers and their VMs (asks first on a terminal; --yes elsewhere)",
    _computer_ids,
    cmd_delete,
    examples=[f"{_RUN} delete COMPUTER_ID --yes"],
    destroys=True,
)
