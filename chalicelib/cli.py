"""The operator command line: `eks-iam-sync COMMAND`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chalicelib.config import Config, ConfigError, load_config
from chalicelib.rbac_manifest import render_manifest
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
    rbac = commands.add_parser(
        "rbac",
        help="print the service's own RBAC manifest for a configuration",
        description="Print the least-privilege RBAC manifest (infra/kubernetes/rbac.yaml) for a configuration.",
    )
    rbac.add_argument("config", nargs="?", help="the YAML file (default: $EKS_IAM_SYNC_CONFIG or the shipped example)")
    rbac.set_defaults(run=_rbac)
    return parser


def _load(args: argparse.Namespace) -> tuple[str, Config | None]:
    path = args.config or str(config_path())
    try:
        return path, load_config(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        print(f"{path}: invalid ({len(err.problems)} problem{'s' * (len(err.problems) != 1)})", file=sys.stderr)
        return path, None


def _validate(args: argparse.Namespace) -> int:
    path, config = _load(args)
    if config is None:
        return 1
    print(f"{path}: valid: {config.summary()}")
    return 0


def _rbac(args: argparse.Namespace) -> int:
    _, config = _load(args)
    if config is None:
        return 1
    print(render_manifest(config), end="")
    return 0
