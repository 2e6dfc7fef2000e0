"""The `webhook` commands: task events POSTed to an https URL of yours.

A signing secret is read from a file or an environment variable, never from the
command line (where `ps` and shell history would show it), and is never printed.
"""

from __future__ import annotations

import os

from .errors import EXIT_API, EXIT_OK, TaskOutcome, UsageError
from .options import command, commands, options
from .output import RUN, Output
from .session import Run, confirm, delete_many, load_client_module, make_client, read_text

_RUN = RUN + " webhook"
MAX_WEBHOOKS = 3


def _add_arguments(parser) -> None:
    # Optional to argparse, so that a URL swallowed by --event's values gets its own message.
    parser.add_argument(
        "url", nargs="?", metavar="URL", help="where events are POSTed (https only)"
    )
    parser.add_argument(
        "--event",
        dest="events",
        nargs="+",
        action="extend",
        required=True,
        metavar="EVENT",
        help="task.created, task.running, task.completed, task.failed, task.canceled "
        "(several, or comma-separated)",
    )
    parser.add_argument("--description", help="a note to know it by (at most 500 characters)")
    parser.add_argument(
        "--allow-duplicate",
        action="store_true",
        help="register the URL even if a webhook has it already (the service may keep both)",
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-file", metavar="PATH", help="read the signing secret from this file"
    )
    secret.add_argument(
        "--secret-env", metavar="NAME", help="read the signing secret from this variable"
    )


def _one_webhook(parser) -> None:
    parser.add_argument("webhook_id", metavar="WEBHOOK_ID")


def _many_webhooks(parser) -> None:
    parser.add_argument("webhook_ids", nargs="+", metavar="WEBHOOK_ID")


def _no_arguments(parser) -> None:
    pass


def read_secret(opts):
    """The secret from --secret-file or --secret-env (None when neither is given).

    A file's final line break is dropped, as `echo secret > file` adds one. No
    message here shows the secret.
    """
    if opts.secret_file is not None:
        secret = read_text(opts.secret_file, "secret file").rstrip("\r\n")
        if not secret:
            raise UsageError(f"secret file {opts.secret_file} is empty")
        return secret
    if opts.secret_env is not None:
        secret = os.environ.get(opts.secret_env)
        if not secret:
            raise UsageError(
                f"environment variable {opts.secret_env} is not set or empty: ask the user to "
                "export it (never put the secret on the command line), or use --secret-file PATH"
            )
        return secret
    return None


AddOptions = options(
    "AddOptions", "client url events description allow_duplicate secret_file secret_env"
)


def cmd_add(args, out: Output, run: Run) -> int:
    opts = AddOptions.of(args)
    if opts.url is None:
        if any("://" in value for value in opts.events):
            raise UsageError("put the URL before --event (webhook add URL --event E...)")
        raise UsageError(
            f"the following arguments are required: URL (see `{RUN} webhook add --help`)"
        )
    rc = load_client_module()
    events = [e.strip() for value in opts.events for e in value.split(",") if e.strip()]
    secret = read_secret(opts)
    client = make_client(opts.client)
    try:
        hook = client.webhooks.create(
            opts.url,
            events,
            description=opts.description,
            secret=secret,
            allow_duplicate=opts.allow_duplicate,
        )
    except rc.ValidationError as error:
        if error.code != "limit_exceeded":
            raise
        raise TaskOutcome(
            EXIT_API,
            f"{error}; an organization has at most {MAX_WEBHOOKS} webhooks: remove one with "
            f"`{RUN} webhook delete WEBHOOK_ID --yes` (see `{RUN} webhook list`)",
        ) from None
    if hook.get("alreadyRegistered"):
        differs = sorted(set(hook.get("events") or ()) ^ set(events))
        out.note(
            f"webhook {hook.get('id')} has this URL already: nothing was added"
            + ("; its events differ: delete it and add the URL again" if differs else "")
            + " (--allow-duplicate registers it twice)"
        )
    out.result(hook, [hook["id"]])
    return EXIT_OK


ListOptions = options("ListOptions", "client")


def cmd_list(args, out: Output, run: Run) -> int:
    opts = ListOptions.of(args)
    hooks = make_client(opts.client).webhooks.list()
    out.result({"data": hooks}, [hook.get("id") for hook in hooks])
    return EXIT_OK


GetOptions = options("GetOptions", "client webhook_id")


def cmd_get(args, out: Output, run: Run) -> int:
    opts = GetOptions.of(args)
    hook = make_client(opts.client).webhooks.get(opts.webhook_id)
    out.result(hook, [hook.get("id")])
    return EXIT_OK


DeleteOptions = options("DeleteOptions", "client webhook_ids yes")


def cmd_delete(args, out: Output, run: Run) -> int:
    opts = DeleteOptions.of(args)
    rc = load_client_module()
    ids = opts.webhook_ids
    for webhook_id in ids:
        rc.check_id(webhook_id, "webhook id")
    what = f"webhook {ids[0]}" if len(ids) == 1 else f"{len(ids)} webhooks"
    confirm(f"delete {what}", yes=opts.yes)
    client = make_client(opts.client)
    return delete_many(rc, out, ids, client.webhooks.delete, "webhook")


PublicKeyOptions = options("PublicKeyOptions", "client")


def cmd_public_key(args, out: Output, run: Run) -> int:
    opts = PublicKeyOptions.of(args)
    key = make_client(opts.client).webhooks.public_key()
    out.result(key, [key.get("publicKey", "").strip()])
    return EXIT_OK


COMMANDS = commands(
    command(
        ["webhook", "add"],
        _add_arguments,
        cmd_add,
        help="send task events to an https URL (at most 3 per organization)",
        examples=[
            f"{_RUN} add https://example.com/hooks/rebyte --event task.completed task.failed -q",
            f"{_RUN} add https://example.com/hooks/ci --event task.completed"
            " --secret-env HOOK_SECRET",
        ],
    ),
    command(
        ["webhook", "list"],
        _no_arguments,
        cmd_list,
        help="list the organization's webhooks",
        examples=[f"{_RUN} list", f"{_RUN} list -q"],
    ),
    command(
        ["webhook", "get"],
        _one_webhook,
        cmd_get,
        help="show a webhook (its secret is never shown: hasSecret says if one is set)",
        examples=[f"{_RUN} get WEBHOOK_ID"],
    ),
    command(
        ["webhook", "delete"],
        _many_webhooks,
        cmd_delete,
        help="delete webhooks (asks first on a terminal; --yes elsewhere)",
        examples=[f"{_RUN} delete WEBHOOK_ID --yes"],
        destroys=True,
    ),
    command(
        ["webhook", "public-key"],
        _no_arguments,
        cmd_public_key,
        help="print the public key that verifies webhook signatures (Ed25519, PEM)",
        examples=[f"{_RUN} public-key -q"],
    ),
)
