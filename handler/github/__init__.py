"""GitHub's REST API for the redelivery function: gidgethub's sans-I/O helpers over the standard
library's HTTP client, and App JWTs with PyJWT. Never imported by the receiver."""
