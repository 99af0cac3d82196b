"""Entry points: the Lambda service, the CLI and its commands, the access report."""
