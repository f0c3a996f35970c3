"""Local tooling for the receiver: signing, GitHub-shaped requests, API Gateway events. Not deployed."""
