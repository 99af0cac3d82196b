"""The aws-auth engine: parse (both parser generations), render, ledger, merge, guardrails, writer."""
