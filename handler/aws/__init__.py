"""Adapters that implement the core's ports (:mod:`handler.core.ports`) with boto3 and Powertools."""
