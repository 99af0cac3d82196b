"""Deployment checks and the RBAC manifest: used by the CLI and packaging, not by the Lambdas."""
