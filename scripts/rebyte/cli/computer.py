"""The `computer` commands: Agent Computers, VMs that provision in the background.

A computer is created at once and becomes `ready` on its own; tasks created in it
(`create --computer ID`) start without provisioning.
"""

from __future__ import annotations

from .errors import EXIT_OK, exit_code_for, explain, worst_exit
from .options import command, commands, options, seconds, whole
from .output import RUN, Output, one_line
from .session import (
    COMPUTER_WAIT_TIMEOUT,
    MAX_PARALLEL_WAITS,
    Run,
    confirm,
    create_computer,
    delete_many,
    load_client_module,
    make_client,
)
from .waiting import run_concurrently

_RUN = RUN + " computer"


def _computer_ids(parser) -> None:
    parser.add_argument("computer_ids", nargs="+", metavar="COMPUTER_ID")


def _wait_options(parser, *names: str) -> None:
    parser.add_argument(
        *names,
        dest="wait_timeout",
        type=seconds,
        default=COMPUTER_WAIT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for ready (default {COMPUTER_WAIT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--interval",
        type=seconds,
        default=2.0,
        metavar="SECONDS",
        help="first pause between polls (default 2); grows to 10 s",
    )


def _create_arguments(parser) -> None:
    parser.add_argument("--name", help="a name to know it by (at most 200 characters)")
    parser.add_argument("--icon", help="an icon name (at most 50 characters)")
    parser.add_argument("--wait", action="store_true", help="wait until it is ready")
    _wait_options(parser, "--wait-timeout")


def _list_arguments(parser) -> None:
    parser.add_argument("--limit", type=whole(1, 100), default=50, help="1 to 100 (default 50)")
    parser.add_argument("--offset", type=whole(0), default=0, help="skip this many (default 0)")
    parser.add_argument("--all", action="store_true", help="every computer, page by page")


def _wait_arguments(parser) -> None:
    _computer_ids(parser)
    _wait_options(parser, "--timeout", "--wait-timeout")


def _one_computer(parser) -> None:
    parser.add_argument("computer_id", metavar="COMPUTER_ID")


def _wait_one(client, out: Output, computer_id: str, *, timeout: float, interval: float) -> dict:
    """The ready computer; on failure, the computer as last seen is printed first."""
    rc = load_client_module()
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


CreateOptions = options("CreateOptions", "client name icon wait wait_timeout interval")


def cmd_create(args, out: Output, run: Run) -> int:
    opts = CreateOptions.of(args)
    client = make_client(opts.client)
    computer = create_computer(client, out, run, name=opts.name, icon=opts.icon)
    if opts.wait:
        computer = _wait_one(
            client, out, computer["id"], timeout=opts.wait_timeout, interval=opts.interval
        )
    out.result(computer, [computer["id"]])
    return EXIT_OK


GetOptions = options("GetOptions", "client computer_id")


def cmd_get(args, out: Output, run: Run) -> int:
    opts = GetOptions.of(args)
    computer = make_client(opts.client).computers.get(opts.computer_id)
    out.result(computer, [computer.get("id")])
    return EXIT_OK


ListOptions = options("ListOptions", "client limit offset all")


def cmd_list(args, out: Output, run: Run) -> int:
    opts = ListOptions.of(args)
    client = make_client(opts.client)
    if opts.all:
        computers = list(client.computers.iter())
        page = {"data": computers, "total": len(computers)}
    else:
        page = client.computers.list(limit=opts.limit, offset=opts.offset)
    out.result(page, [c.get("id") for c in page["data"] if isinstance(c, dict)])
    return EXIT_OK


WaitOptions = options("WaitOptions", "client computer_ids wait_timeout interval")


def cmd_wait(args, out: Output, run: Run) -> int:
    opts = WaitOptions.of(args)
    rc = load_client_module()
    ids = opts.computer_ids
    for computer_id in ids:
        rc.check_id(computer_id, "computer id")
    client = make_client(opts.client)
    if len(ids) == 1:
        computer = _wait_one(client, out, ids[0], timeout=opts.wait_timeout, interval=opts.interval)
        out.result(computer, [computer.get("id")])
        return EXIT_OK

    def wait(computer_id: str) -> dict:
        return client.computers.wait(
            computer_id, timeout=opts.wait_timeout, poll_interval=opts.interval
        )

    outcomes = run_concurrently(wait, ids, concurrency=MAX_PARALLEL_WAITS)
    documents, codes = [], []
    for computer_id, (computer, error) in zip(ids, outcomes):
        if error is None:
            documents.append(computer)
            continue
        document = getattr(error, "computer", None) or {"id": computer_id}
        documents.append({**document, "error": one_line(str(error))})
        out.error(f"computer {computer_id}: {explain(rc, error)}")
        codes.append(exit_code_for(rc, error))
    out.result(documents, [doc.get("id") for doc in documents if "error" not in doc])
    return worst_exit(codes)


DeleteOptions = options("DeleteOptions", "client computer_ids yes")


def cmd_delete(args, out: Output, run: Run) -> int:
    opts = DeleteOptions.of(args)
    rc = load_client_module()
    ids = opts.computer_ids
    for computer_id in ids:
        rc.check_id(computer_id, "computer id")
    what = f"computer {ids[0]}" if len(ids) == 1 else f"{len(ids)} computers"
    confirm(f"delete {what} and its VM", yes=opts.yes)
    client = make_client(opts.client)
    return delete_many(rc, out, ids, client.computers.delete, "computer")


COMMANDS = commands(
    command(
        ["computer", "create"],
        _create_arguments,
        cmd_create,
        help="create an Agent Computer (it provisions in the background)",
        examples=[f"{_RUN} create --name build-box --wait -q"],
    ),
    command(
        ["computer", "get"],
        _one_computer,
        cmd_get,
        help="show a computer and its status (provisioning, ready, error)",
        examples=[f"{_RUN} get COMPUTER_ID"],
    ),
    command(
        ["computer", "list"],
        _list_arguments,
        cmd_list,
        help="list Agent Computers, newest first",
        examples=[f"{_RUN} list --limit 5", f"{_RUN} list --all -q"],
    ),
    command(
        ["computer", "wait"],
        _wait_arguments,
        cmd_wait,
        help="wait until computers are ready",
        examples=[f"{_RUN} wait COMPUTER_ID --wait-timeout 300"],
        timeout=False,
    ),
    command(
        ["computer", "delete"],
        _computer_ids,
        cmd_delete,
        help="delete computers and their VMs (asks first on a terminal; --yes elsewhere)",
        examples=[f"{_RUN} delete COMPUTER_ID --yes"],
        destroys=True,
    ),
)
