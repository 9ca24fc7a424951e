"""``cyme``: the command-line client of a branch's REST API.

    cyme apps                              cyme apps add foo [--broker URL]
    cyme instances foo                     cyme instances foo add [NAME] [--max 4 --min 1]
    cyme queues foo add tasks              cyme consume foo NAME tasks
    cyme autoscale foo NAME --max 8        cyme stats foo NAME
    cyme branches                          cyme ping

Prints JSON; the branch URL comes from ``--url`` or ``CYME_URL`` (default :8000).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cyme.cli import exitcodes
from cyme.client import DEFAULT_URL, Client
from cyme.errors import CymeError


def _apps(client: Client, a: argparse.Namespace) -> Any:
    actions: dict[str, Callable[[], Any]] = {
        "list": client.apps,
        "add": lambda: client.create_app(a.name, broker=a.broker),
        "show": lambda: client.app(a.name),
        "delete": lambda: client.delete_app(a.name),
    }
    return actions[a.action]()


def _instances(client: Client, a: argparse.Namespace) -> Any:
    actions: dict[str, Callable[[], Any]] = {
        "list": lambda: client.instances(a.app),
        "add": lambda: client.create_instance(
            a.app, a.name, a.max, a.min, a.queues.split(",") if a.queues else None, a.nowait
        ),
        "show": lambda: client.instance(a.app, a.name),
        "delete": lambda: client.delete_instance(a.app, a.name, a.nowait),
    }
    return actions[a.action]()


def _queues(client: Client, a: argparse.Namespace) -> Any:
    actions: dict[str, Callable[[], Any]] = {
        "list": lambda: client.queues(a.app),
        "add": lambda: client.declare_queue(a.app, a.name, a.exchange, a.exchange_type, a.routing_key),
        "delete": lambda: client.delete_queue(a.app, a.name),
    }
    return actions[a.action]()


def _queue_url(client: Client, a: argparse.Namespace) -> Any:
    data: bytes | None = None
    if a.data is not None:
        data = Path(a.data[1:]).read_bytes() if a.data.startswith("@") else a.data.encode()
    headers = dict(h.split(":", 1) for h in a.header if ":" in h)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    if data is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    task = client.queue_url(a.app, a.queue, a.target, a.method, data, headers, a.timeout)
    return client.wait(a.app, task["uuid"], a.wait) if a.wait else task


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="cyme", description="Manage Celery worker instances through cyme.")
    parse.add_argument("--url", default=os.environ.get("CYME_URL", DEFAULT_URL), help="branch URL [CYME_URL]")
    sub = parse.add_subparsers(dest="command", required=True)

    apps = sub.add_parser("apps", help="list, add, show or delete apps")
    apps.add_argument("action", nargs="?", default="list", choices=["list", "add", "show", "delete"])
    apps.add_argument("name", nargs="?")
    apps.add_argument("--broker", help="broker URL (default: the branch's default broker)")
    apps.set_defaults(run=_apps)

    inst = sub.add_parser("instances", help="list, add, show or delete worker instances")
    inst.add_argument("app")
    inst.add_argument("action", nargs="?", default="list", choices=["list", "add", "show", "delete"])
    inst.add_argument("name", nargs="?")
    inst.add_argument("--max", type=int, help="max concurrency")
    inst.add_argument("--min", type=int, help="min concurrency")
    inst.add_argument("--queues", help="comma-separated declared queues to consume from")
    inst.add_argument("--nowait", action="store_true", help="return at once, do not wait for the worker")
    inst.set_defaults(run=_instances)

    queues = sub.add_parser("queues", help="list, add or delete queue declarations")
    queues.add_argument("app")
    queues.add_argument("action", nargs="?", default="list", choices=["list", "add", "delete"])
    queues.add_argument("name", nargs="?")
    queues.add_argument("--exchange")
    queues.add_argument("--exchange-type")
    queues.add_argument("--routing-key")
    queues.set_defaults(run=_queues)

    for command, method in (("consume", "consume"), ("cancel", "cancel")):
        cmd = sub.add_parser(command, help=f"{command} an instance's consuming from a queue")
        cmd.add_argument("app")
        cmd.add_argument("instance")
        cmd.add_argument("queue")
        cmd.set_defaults(run=lambda c, a, m=method: getattr(c, m)(a.app, a.instance, a.queue))

    scale = sub.add_parser("autoscale", help="show or set an instance's max/min concurrency")
    scale.add_argument("app")
    scale.add_argument("instance")
    scale.add_argument("--max", type=int)
    scale.add_argument("--min", type=int)
    scale.set_defaults(run=lambda c, a: c.autoscale(a.app, a.instance, a.max, a.min))

    stats = sub.add_parser("stats", help="an instance's live worker statistics")
    stats.add_argument("app")
    stats.add_argument("instance")
    stats.set_defaults(run=lambda c, a: c.stats(a.app, a.instance))

    url = sub.add_parser("queue", help="queue a URL task: a worker on QUEUE makes the request")
    url.add_argument("app")
    url.add_argument("queue")
    url.add_argument("target", metavar="URL", help="the URL the worker will request")
    url.add_argument("-X", "--method", default="GET")
    url.add_argument("-d", "--data", help="request body (sent as given; '@file' reads a file)")
    url.add_argument("-H", "--header", action="append", default=[], help="'Name: value' to forward")
    url.add_argument("--timeout", type=float, help="the worker's read timeout in seconds")
    url.add_argument("--wait", type=int, metavar="SECONDS", help="wait this long for the result")
    url.set_defaults(run=_queue_url)

    task = sub.add_parser("task", help="a URL task's state and result")
    task.add_argument("app")
    task.add_argument("uuid")
    task.add_argument("--wait", type=int, metavar="SECONDS", help="wait this long for it to finish")
    task.set_defaults(run=lambda c, a: c.wait(a.app, a.uuid, a.wait) if a.wait else c.task(a.app, a.uuid))

    sub.add_parser("branches", help="the branches of the cluster").set_defaults(run=lambda c, a: c.branches())
    sub.add_parser("ping", help="is the branch alive?").set_defaults(run=lambda c, a: c.ping())
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parse = parser()
    args = parse.parse_args(argv)
    needs_name = getattr(args, "action", "list") not in ("list",)
    if needs_name and args.name is None and not (args.command == "instances" and args.action == "add"):
        parse.error(f"{args.command} {args.action} needs a name")
    try:
        result = args.run(Client(args.url), args)
    except CymeError as exc:
        print(f"cyme: {exc.message}", file=sys.stderr)
        return exitcodes.for_error(exc)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return exitcodes.EX_OK


if __name__ == "__main__":
    sys.exit(main())
