"""`webhook`: run, send, build events, invoke and replay, with no AWS account and no Docker.

Each subcommand's --help explains it. Exit codes: 0 done (a 2xx answer), 1 answered but not
2xx (or some replays failed), 2 bad arguments or input, 3 nothing answered at the URL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from devkit import errors
from devkit.errors import CliError
from devkit.github import DEV_SECRET
from handler.core import headers as h

DEFAULT_URL = "http://127.0.0.1:8000/webhook"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webhook",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 ok, 1 answered but not 2xx, 2 bad arguments or input, 3 unreachable.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the receiver locally (same app and code path as on Lambda)",
        description="Run the receiver on http://HOST:PORT/webhook. By default an AWS emulator (moto's server "
        "on loopback) is started with the secret in SSM, a bus, an archive bucket and a deduplication table, "
        "so every hand-off runs for real. Each delivery is one human line (status, event, delivery id, "
        "repository, what happened); --json shows the receiver's JSON log lines and what reaches the bus instead.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--secret", help="webhook secret (default: WEBHOOK_SECRET or the development secret)")
    serve.add_argument(
        "--no-emulator",
        dest="emulator",
        action="store_false",
        help="no AWS emulator: verify only (or use the AWS settings in your environment)",
    )
    serve.add_argument(
        "--json",
        dest="json_logs",
        action="store_true",
        help="the receiver's raw JSON log lines (as on Lambda) and the emulator's bus lines, not the console",
    )

    send = commands.add_parser(
        "send",
        help="post a payload to a URL exactly as GitHub would",
        description="Post a payload file (or a sample name: "
        "ping, push, pull_request, issues, issue_comment, workflow_run, release, installation) with every "
        "GitHub header, signed, and print the answer.",
    )
    send.add_argument("payload", help="a JSON file, or a sample name")
    send.add_argument("--url", default=DEFAULT_URL, help=f"receiver URL (default {DEFAULT_URL})")
    _delivery_options(send)
    send.add_argument(
        "--pretty", action="store_true", help="indent the JSON (GitHub sends it compact: sizes and bytes then differ)"
    )

    connect = commands.add_parser(
        "connect",
        help="create (or update) a GitHub webhook that points at the stack, ping it and read the answer",
        description="Point a repository's or organization's webhook at a deployed stack: its WebhookUrl and its "
        "secret (from CloudFormation and SSM), content type json, TLS verified, active. Run twice, it updates "
        "its own hook. Then a ping, read back through the deliveries API: 2xx, or what went wrong. Needs "
        "GITHUB_TOKEN (admin:repo_hook, or admin:org_hook) and your AWS environment; prints the hook's "
        "REDELIVERY_HOOKS entry.",
    )
    where = connect.add_mutually_exclusive_group(required=True)
    where.add_argument("--repo", help="OWNER/REPO")
    where.add_argument("--org", help="ORG (an organization hook: every repository's events)")
    connect.add_argument("--stack", help="the stack's name (its WebhookUrl output and secret parameter)")
    connect.add_argument("--url", help="the webhook URL, instead of --stack")
    connect.add_argument("--parameter", help="the secret parameter's name, with --url")
    connect.add_argument("--events", default="*", help="comma-separated events (default: * , every event)")
    connect.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)")
    connect.add_argument("--wait", type=float, default=20.0, help="seconds to wait for the ping's delivery (20)")

    rotate = commands.add_parser(
        "rotate-secret",
        help="rotate a hook's webhook secret on GitHub and in SSM, with no delivery refused",
        description="Rotate in steps, each safe to repeat: a new secret; the parameter holds new then old; a "
        "wait until every receiver has read it (WEBHOOK_SECRET_MAX_AGE); the hook's secret set to the new one; a "
        "ping verified. --finish then removes the old secret (in the same run, after --drain seconds, or "
        "later); --rollback before it puts the old one back. The plan is printed first; --dry-run stops "
        "there. Secrets are never printed.",
    )
    rotate.add_argument("--hook", required=True, help="repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID or app")
    rotate.add_argument("--parameter", required=True, help="the secret parameter's name")
    rotate.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)")
    rotate.add_argument("--dry-run", action="store_true", help="print the plan only")
    rotate.add_argument("--finish", action="store_true", help="remove the old secret once the new one is verified")
    rotate.add_argument(
        "--drain", type=float, default=10.0, help="seconds for deliveries on their way before one secret is left (10)"
    )
    rotate.add_argument(
        "--only-hook",
        action="store_true",
        help="with --finish: no other hook signs with this parameter (else --function's metric must show it)",
    )
    rotate.add_argument("--rollback", action="store_true", help="put the old secret back (before --finish)")
    rotate.add_argument("--wait", type=float, help="seconds receivers keep the secret (default: --function's)")
    rotate.add_argument("--function", help="the receiver's function, to read its WEBHOOK_SECRET_MAX_AGE")
    rotate.add_argument("--ping-wait", type=float, default=20.0, help="seconds to wait for the ping's delivery")
    rotate.add_argument("--show-secret", action="store_true", help="also print the new secret at the end")
    rotate.add_argument("--app-id", help="the GitHub App's id, for --hook app")
    rotate.add_argument("--app-key", help="the App's private key (PEM), for --hook app")

    secret = commands.add_parser(
        "secret",
        help="create the webhook secret (or store a GitHub App key) as an SSM SecureString",
        description="Write the SecureStrings a deployment reads, before `make deploy` (CloudFormation cannot "
        "create one). The value is never printed unless --show is given. Uses your AWS environment.",
    )
    secret_actions = secret.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = secret_actions.add_parser(
        "create", help="generate a webhook secret (32 random bytes, 64 hex characters) and store it"
    )
    store = secret_actions.add_parser("store", help="store a file, such as a GitHub App's private key (PEM)")
    store.add_argument("file", help="the file to store, for example the .pem GitHub gave you for the App")
    for action in (create, store):
        action.add_argument("--parameter", required=True, help="the parameter's name, e.g. /github-webhook/dev/secret")
        action.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)")
        action.add_argument("--kms-key-id", help="a customer-managed KMS key (default: the account's aws/ssm key)")
        action.add_argument("--overwrite", action="store_true", help="replace a parameter that exists")
    create.add_argument("--show", action="store_true", help="also print the secret (to paste it somewhere by hand)")

    event = commands.add_parser(
        "event",
        help="build an API Gateway HTTP API v2 event file from a payload",
        description="Write the Lambda event API Gateway would deliver for a signed payload (to stdout or -o). "
        "With --samples, regenerate the files in events/.",
    )
    event.add_argument("payload", nargs="?", help="a JSON file, or a sample name")
    event.add_argument("-o", "--output", help="write the event here instead of stdout")
    event.add_argument("--base64", action="store_true", help="base64-encode the body, as API Gateway does for binary")
    event.add_argument("--samples", action="store_true", help="regenerate events/*.json and exit")
    _delivery_options(event)

    invoke = commands.add_parser(
        "invoke",
        help="run the Lambda handler in process on an event file (sam local invoke without Docker)",
        description="Invoke handler.app.handler on an event file and print the Lambda response on stdout "
        "(logs and metrics on stderr). By default the development secret and no AWS hand-off, as env.local.json.",
    )
    invoke.add_argument("event_file")
    invoke.add_argument("--env-vars", help="a `sam local invoke --env-vars` JSON file (default: env.local.json's)")
    invoke.add_argument("--secret", help="webhook secret to verify with (default: the development secret)")

    replay = commands.add_parser(
        "replay",
        help="re-send archived deliveries from the S3 archive to the bus",
        description="Select archived deliveries (time range, events, delivery ids) and put them on the bus "
        "again with the same event contract. Uses your AWS environment (AWS_PROFILE, AWS_ENDPOINT_URL, ...); "
        "the region is --region, else AWS_REGION, else AWS_DEFAULT_REGION, else your profile's.",
    )
    replay.add_argument("--bucket", default=os.environ.get("ARCHIVE_BUCKET"), help="archive bucket (ARCHIVE_BUCKET)")
    replay.add_argument("--bus", default=os.environ.get("EVENT_BUS_NAME"), help="event bus (EVENT_BUS_NAME)")
    replay.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)")
    replay.add_argument("--since", help="from this time (ISO 8601, UTC unless an offset is given)")
    replay.add_argument("--until", help="up to this time (ISO 8601)")
    replay.add_argument("--event", action="append", default=[], help="only this event (repeatable)")
    replay.add_argument("--delivery-id", action="append", default=[], help="only this delivery id (repeatable)")
    replay.add_argument("--dry-run", action="store_true", help="list what would be sent, send nothing")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    ranges = commands.add_parser(
        "github-ranges",
        help="print GitHub's webhook source ranges, for ALLOWED_SOURCE_CIDRS",
        description="Fetch the `hooks` CIDR ranges from GitHub's meta API (or GitHub Enterprise Server's) and "
        "print them for the optional source allow-list.",
    )
    ranges.add_argument(
        "--url", default="https://api.github.com/meta", help="meta API URL (GHES: https://HOST/api/v3/meta)"
    )
    ranges.add_argument(
        "--format",
        choices=["csv", "list", "env", "parameter"],
        default="csv",
        help="csv (default), one per line, ALLOWED_SOURCE_CIDRS=..., or AllowedSourceCidrs=... for sam deploy",
    )

    deliveries = commands.add_parser(
        "deliveries",
        help="list a hook's recent deliveries from GitHub (guid, event, status, attempts)",
        description="List a hook's deliveries through GitHub's REST API, one row per delivery (guid), newest "
        "first. Uses GITHUB_TOKEN (or --app-id and --app-key for the App's hook) and GITHUB_API_URL.",
    )
    _hook_options(deliveries)
    deliveries.add_argument("--failed", action="store_true", help="only deliveries with no successful attempt")

    redeliver = commands.add_parser(
        "redeliver",
        help="redeliver a hook's failed deliveries once, as the redelivery function does",
        description="Run the redelivery function's logic once for a hook: redeliver every delivery whose last "
        "attempt failed in a way a retry can fix (5xx, 408, 409, 429, no answer), within the window and the cap.",
    )
    _hook_options(redeliver)
    redeliver.add_argument("--dry-run", action="store_true", help="say what would be redelivered, redeliver nothing")
    redeliver.add_argument("--max-attempts", type=int, default=3, help="redeliveries per delivery (default 3)")
    redeliver.add_argument(
        "--no-progress", action="store_true", help="no progress bar (none when stderr is not a terminal)"
    )
    return parser


def _hook_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hook", required=True, help="repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID or app")
    parser.add_argument("--since", help="from this time (ISO 8601, UTC unless an offset is given; default 72 h ago)")
    parser.add_argument("--app-id", help="the GitHub App's id (for --hook app)")
    parser.add_argument("--app-key", help="the GitHub App's PEM private key file (for --hook app)")


def _delivery_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--event", help="X-GitHub-Event (default: the sample's or file's name)")
    parser.add_argument("--secret", default=DEV_SECRET, help="secret to sign with (default: the development secret)")
    parser.add_argument("--unsigned", action="store_true", help="send no signature headers")
    parser.add_argument("--delivery-id", help="X-GitHub-Delivery (default: a fresh GUID)")
    parser.add_argument("--form", action="store_true", help="send as application/x-www-form-urlencoded")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CliError as exc:
        print(f"webhook {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return errors.OK
    except Exception as exc:
        if args.command not in ("deliveries", "redeliver"):
            raise
        # Never a traceback: its text could quote a token or GitHub's answer. The type says enough to report it.
        print(f"webhook {args.command}: unexpected error ({type(exc).__name__})", file=sys.stderr)
        return errors.REJECTED


def _signed_request(args: argparse.Namespace) -> tuple[bytes, dict[str, str]]:
    from devkit import payloads
    from devkit.github import encode_body, github_headers

    event, payload = payloads.load(args.payload, args.event)
    body = encode_body(payload, form=args.form, pretty=getattr(args, "pretty", False))
    secret = None if args.unsigned else args.secret
    return body, github_headers(event, body, secret=secret, delivery_id=args.delivery_id, form=args.form)


def run_serve(args: argparse.Namespace) -> int:
    from devkit.serve import serve

    serve(args.host, args.port, secret=args.secret, emulator=args.emulator, json_logs=args.json_logs)
    return errors.OK


def run_send(args: argparse.Namespace) -> int:
    from devkit.send import check_url, post

    check_url(args.url)
    body, headers = _signed_request(args)
    print(
        f"POST {args.url}  {headers[h.EVENT]}  delivery {headers[h.DELIVERY]}  {len(body)} bytes",
        file=sys.stderr,
    )
    status, answer = post(args.url, body, headers)
    print(f"HTTP {status} {answer.decode('utf-8', 'replace')}")
    return errors.OK if 200 <= status < 300 else errors.REJECTED


def run_event(args: argparse.Namespace) -> int:
    from devkit.apigw import http_api_event

    if args.samples:
        from devkit.events import write_all

        for path in write_all():
            print(path, file=sys.stderr)
        return errors.OK
    if not args.payload:
        raise CliError("give a payload file or sample name (or --samples)")
    body, headers = _signed_request(args)
    text = json.dumps(http_api_event(body, headers, base64_encoded=args.base64), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise CliError(f"cannot write {args.output} ({exc.strerror})") from None
        print(
            f"wrote {args.output} ({headers[h.EVENT]}, delivery {headers[h.DELIVERY]})",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return errors.OK


def run_invoke(args: argparse.Namespace) -> int:
    from devkit.invoke import LOCAL_ENV, env_from_file, invoke, load_event

    event = load_event(args.event_file)
    env = env_from_file(args.env_vars) if args.env_vars else dict(LOCAL_ENV)
    if args.secret:
        env["WEBHOOK_SECRET"] = args.secret
    response = invoke(event, env=env)
    print(json.dumps(response, indent=2, ensure_ascii=False))
    return errors.OK if 200 <= response.get("statusCode", 500) < 300 else errors.REJECTED


def run_replay(args: argparse.Namespace) -> int:
    from devkit.replay import Selection, parse_time, replay, use_region

    if not args.bucket:
        raise CliError("give the archive bucket with --bucket (or ARCHIVE_BUCKET)")
    use_region(args.region)
    selection = Selection(
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        events=set(args.event),
        delivery_ids=set(args.delivery_id),
    )
    summary = replay(
        bucket=args.bucket, bus=args.bus, selection=selection, dry_run=args.dry_run, progress=not args.no_progress
    )
    verb = "would send" if args.dry_run else "sent"
    print(f"{verb} {len(summary.sent)}, failed {len(summary.failed)}")
    if not summary.sent and not summary.failed:
        # Not an error: the stack's default ARCHIVE_MODE (large) keeps only what a claim check needs.
        print(
            "nothing in the S3 archive matched. With ARCHIVE_MODE large (the stack's default) it holds only "
            "deliveries too large for an entry, and with off none: replay the others from the bus's archive "
            "(aws events start-replay; README: Archive modes).",
            file=sys.stderr,
        )
    for key, reason in summary.failed:
        print(f"failed {key}: {reason}", file=sys.stderr)
    return errors.REJECTED if summary.failed else errors.OK


def run_github_ranges(args: argparse.Namespace) -> int:
    from devkit.meta import hook_ranges, render

    print(render(hook_ranges(args.url), args.format))
    return errors.OK


def run_deliveries(args: argparse.Namespace) -> int:
    from devkit.redeliver import attempts_since, client, render, rows, settings_for, since_or_window

    settings = settings_for(args.hook, app_id=args.app_id, key_file=args.app_key)
    api = client(settings)
    attempts, malformed = attempts_since(api, settings.hooks[0], since_or_window(args.since))
    table = rows(attempts)
    if args.failed:
        table = [row for row in table if row.failed]
    print(render(table))
    skipped = f", {malformed} items that are not attempts skipped" if malformed else ""
    failed = sum(row.failed for row in table)
    print(f"{len(table)} deliveries, {failed} failed ({api.requests} requests{skipped})", file=sys.stderr)
    return errors.OK


def run_redeliver(args: argparse.Namespace) -> int:
    from devkit.redeliver import outcome, redeliver, settings_for, since_or_window

    if args.max_attempts < 1:
        raise CliError("--max-attempts must be at least 1", errors.USAGE)
    settings = settings_for(args.hook, app_id=args.app_id, key_file=args.app_key, max_attempts=args.max_attempts)
    if settings.state_table and args.since:
        # With the function's state, its listing decides what is covered: a narrower window would mark
        # older failures as covered and drop what the function remembers of them.
        raise CliError("--since cannot be used with REDELIVERY_STATE_TABLE (the function's state)", errors.USAGE)
    summary = redeliver(
        settings, since=since_or_window(args.since), dry_run=args.dry_run, progress=not args.no_progress
    )
    line, code = outcome(summary, settings.hooks[0], dry_run=args.dry_run)
    print(line)
    return code


def run_connect(args: argparse.Namespace) -> int:
    from devkit.connect import Endpoint, connect, current_secret, explain, owner_path, stack_endpoint
    from devkit.redeliver import client, settings_for
    from devkit.replay import use_region

    owner = owner_path(args.repo, args.org)
    if bool(args.stack) == bool(args.url):
        raise CliError("give --stack NAME, or --url URL with --parameter NAME", errors.USAGE)
    if args.url and not args.parameter:
        raise CliError("--url needs --parameter (the secret's SSM name)", errors.USAGE)
    events = [event.strip() for event in args.events.split(",") if event.strip()] or ["*"]
    api = client(settings_for(f"{owner}/hooks/1", app_id=None, key_file=None))
    use_region(args.region)
    url, parameter = stack_endpoint(args.stack) if args.stack else (args.url, args.parameter)
    done = connect(api, owner, Endpoint(url, current_secret(parameter)), events=events, wait=args.wait)
    verb = "created" if done.created else "updated"
    print(f"{verb} hook {done.hook.spec.rsplit('/', 1)[1]} on {owner} -> {url}")
    print(explain(done.status_code, done.status))
    print(f"REDELIVERY_HOOKS entry: {done.hook.spec}")
    return errors.OK if 200 <= done.status_code < 300 else errors.REJECTED


def run_rotate(args: argparse.Namespace) -> int:
    from devkit.redeliver import client, settings_for
    from devkit.replay import use_region
    from devkit.rotate import Rotation, Ssm, previous_verified, receiver_of

    if args.finish and args.rollback:
        raise CliError("--finish and --rollback go in different directions: choose one", errors.USAGE)
    settings = settings_for(args.hook, app_id=args.app_id, key_file=args.app_key)
    api = client(settings)
    use_region(args.region)
    receiver = receiver_of(args.function)
    if receiver.parameter and receiver.parameter != args.parameter:
        # The hook would get a secret its receiver never reads: every delivery refused, the old secret lost.
        raise CliError(f"{args.function} reads {receiver.parameter}, not {args.parameter}", errors.USAGE)
    max_age, why = (args.wait, "--wait") if args.wait is not None else (receiver.max_age, receiver.why)
    print(f"receivers keep the secret for {max_age:.0f} s ({why})")
    metric = (
        previous_verified(receiver.namespace, receiver.service) if receiver.namespace and receiver.service else None
    )
    rotation = Rotation(
        api,
        Ssm(),
        settings.hooks[0],
        args.parameter,
        max_age=max_age,
        ping_wait=args.ping_wait,
        previous_verified=metric,
        only_hook=args.only_hook,
    )
    parameter = rotation.plan(finish=args.finish, rollback=args.rollback)
    if args.dry_run:
        return errors.OK
    if args.rollback:
        verified = rotation.rollback(parameter, drain=args.drain)
    else:
        verified = rotation.run(parameter, finish=args.finish, drain=args.drain)
    if verified and not (args.finish or args.rollback):
        print(f"then: ./webhook rotate-secret --hook {args.hook} --parameter {args.parameter} --finish")
    if args.show_secret and not args.rollback:
        print(Ssm().read(args.parameter).lines[0])  # asked for: the secret the hook signs with now
    return errors.OK if verified else errors.REJECTED


def run_secret(args: argparse.Namespace) -> int:
    from devkit import secret
    from devkit.replay import use_region

    use_region(args.region)
    options = {"kms_key_id": args.kms_key_id, "overwrite": args.overwrite}
    if args.action == "store":
        size = secret.store(args.parameter, args.file, **options)
        print(f"stored {args.file} as {args.parameter} (SecureString, {size} characters)")
        return errors.OK
    value = secret.create(args.parameter, **options)
    print(f"created {args.parameter} (SecureString, {len(value)} characters)")
    if args.show:
        print(value)
    else:
        read = f"aws ssm get-parameter --name {args.parameter} --with-decryption --query Parameter.Value --output text"
        print(f"read it when you need it: {read}", file=sys.stderr)
    return errors.OK


COMMANDS = {
    "serve": run_serve,
    "secret": run_secret,
    "connect": run_connect,
    "rotate-secret": run_rotate,
    "send": run_send,
    "event": run_event,
    "invoke": run_invoke,
    "replay": run_replay,
    "github-ranges": run_github_ranges,
    "deliveries": run_deliveries,
    "redeliver": run_redeliver,
}
