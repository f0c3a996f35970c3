"""The receiver's flow, top-down: size, signature, parse, answer.

No FastAPI and no boto3 here: the HTTP edge (``handler.app``) hands in headers and the raw
body; the secret store is injected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from handler import signature
from handler.config import Settings
from handler.delivery import Delivery, claimed_ids, parse_delivery
from handler.errors import PayloadTooLarge, Rejected, SignatureMismatch, Unavailable
from handler.secret_store import SecretStore
from handler.telemetry import logger


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the receiver did with a delivery: ``status`` is ``accepted``."""

    status: str
    delivery: Delivery


class Receiver:
    def __init__(self, settings: Settings, secrets: SecretStore) -> None:
        self._settings = settings
        self._secrets = secrets

    def receive(self, headers: Mapping[str, str], body: bytes) -> Receipt:
        """Verify and accept one request. ``headers`` must be lower-case or case-insensitive.

        Raises :class:`~handler.errors.Rejected` (a 4xx) or :class:`~handler.errors.Unavailable` (a 503).
        """
        with logger.append_context_keys(**claimed_ids(headers)):
            try:
                delivery = self._verified(headers, body)
            except Rejected as exc:
                logger.warning("delivery rejected", extra={"reason": exc.code})
                raise
            except Unavailable as exc:
                logger.error("delivery not accepted", extra={"reason": exc.code, "detail": exc.detail})
                raise
            with logger.append_context_keys(
                action=delivery.action,
                hook_id=delivery.hook_id,
                repository=delivery.repository,
            ):
                logger.info("delivery accepted", extra={"status": "accepted"})
            return Receipt("accepted", delivery)

    def _verified(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        # Size first: we refuse to hash more than the limit. Then the signature, before
        # anything in the body (or any header besides the signature) is interpreted.
        if len(body) > self._settings.max_body_bytes:
            raise PayloadTooLarge()
        presented = signature.Signature.from_headers(headers, allow_sha1=self._settings.allow_sha1)
        self._check_signature(body, presented)
        return parse_delivery(headers, body)

    def _check_signature(self, body: bytes, presented: signature.Signature) -> None:
        known = self._secrets.current()
        if signature.verify(body, signature=presented, secrets=known):
            return
        # A mismatch may mean the secret was rotated: re-read it, at most once per interval.
        fresh = self._secrets.refreshed()
        if fresh is not None:
            new = [secret for secret in fresh if secret not in known]
            if new and signature.verify(body, signature=presented, secrets=new):
                logger.info("webhook secret refreshed after a rotation")
                return
        raise SignatureMismatch()
