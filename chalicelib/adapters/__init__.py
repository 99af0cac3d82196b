"""Thin adapters: the only modules that talk to AWS (boto3) or Kubernetes (the official client)."""
