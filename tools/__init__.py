"""Build and release tooling (not shipped in the Lambda zip)."""
