"""Structured logging (Powertools Logger, JSON on stdout)."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger

from handler.config import service_name

logger = Logger(service=service_name())

# At DEBUG these log raw request and response bodies: the decrypted secret from SSM, payloads
# sent to AWS. Clamp them so that turning on DEBUG (for example Lambda's log-level control,
# which sets the root logger) cannot leak either.
for _name in ("botocore.endpoint", "botocore.parsers"):
    logging.getLogger(_name).setLevel(logging.INFO)
# One JSON line per delivery is ours; Mangum's plain-text access line would be a second.
logging.getLogger("mangum").setLevel(logging.WARNING)
