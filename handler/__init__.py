"""GitHub webhook receiver for AWS Lambda (FastAPI + Mangum behind an API Gateway HTTP API)."""
