"""The operator command line: `eks-iam-sync COMMAND`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chalicelib.config import ConfigError, load_config
from chalicelib.settings import config_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eks-iam-sync", description="Keep Amazon EKS access in step with AWS IAM.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    validate = commands.add_parser(
        "validate", help="check a configuration file", description="Check a configuration file."
    )
    validate.add_argument(
        "config", nargs="?", help="the YAML file (default: $EKS_IAM_SYNC_CONFIG or the shipped example)"
    )
    validate.set_defaults(run=_validate)
    return parser


def _validate(args: argparse.Namespace) -> int:
    path = args.config or str(config_path())
    try:
        config = load_config(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        print(f"{path}: invalid ({len(err.problems)} problem{'s' * (len(err.problems) != 1)})", file=sys.stderr)
        return 1
    print(f"{path}: valid: {config.summary()}")
    return 0
