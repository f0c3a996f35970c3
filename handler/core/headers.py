"""The names of the HTTP headers GitHub sends with a delivery, lower-case as API Gateway and ASGI give them."""

EVENT = "x-github-event"
DELIVERY = "x-github-delivery"
HOOK_ID = "x-github-hook-id"
TARGET_TYPE = "x-github-hook-installation-target-type"
TARGET_ID = "x-github-hook-installation-target-id"
ENTERPRISE_HOST = "x-github-enterprise-host"
ENTERPRISE_VERSION = "x-github-enterprise-version"
SIGNATURE_256 = "x-hub-signature-256"
SIGNATURE_SHA1 = "x-hub-signature"  # legacy
USER_AGENT = "user-agent"
CONTENT_TYPE = "content-type"
