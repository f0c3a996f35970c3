"""One Lambda invocation in a fresh process (a new container), timed from the handler's call to its
answer. Run by tests/test_answer_time.py with the receiver's environment and the delivery id as its
argument: prints READY once imported, waits for a line on stdin, then invokes and prints one RESULT line."""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from devkit.apigw import LambdaContext, http_api_event
    from devkit.github import encode_body, github_headers, sample_payload
    from handler.app import handler

    body = encode_body(sample_payload("push"))
    event = http_api_event(body, github_headers("push", body, delivery_id=sys.argv[1]))
    # Imports done: wait for the others, so that no scenario is timed while others import.
    print("READY", flush=True)
    sys.stdin.readline()
    context = LambdaContext(timeout_ms=10_000)  # the template's Timeout
    start = time.monotonic()
    answer = handler(event, context)
    seconds = time.monotonic() - start
    result = {"status": answer["statusCode"], "body": json.loads(answer["body"]), "seconds": round(seconds, 2)}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
