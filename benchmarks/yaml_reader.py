"""CPU of one ``read_aws_auth`` of a large aws-auth (5 000 users + 1 000 roles) on each YAML path.

Figures, not assertions. Goal context (issue 18): a whole membership event costs at most 3x one
``yaml.CSafeLoader`` load of that document, so the reader itself should stay close to 1x. Run:
``.venv/bin/python -m benchmarks.yaml_reader``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import yaml

from chalicelib.config import yamlbounds
from chalicelib.engine.awsauth.model import MAP_ROLES, MAP_USERS, Entry
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.awsauth.render import render_key

ACCOUNT = "111122223333"


def document(users: int = 5000, roles: int = 1000) -> dict[str, str]:
    mapped_users = [
        Entry(f"arn:aws:iam::{ACCOUNT}:user/team{i % 50}/user-{i:05d}", f"user-{i:05d}", ("developers", "viewers"))
        for i in range(users)
    ]
    mapped_roles = [
        Entry(f"arn:aws:iam::{ACCOUNT}:role/role-{i:05d}", f"role-{i:05d}:{{{{SessionName}}}}", ("ops",))
        for i in range(roles)
    ]
    return {MAP_USERS: render_key(MAP_USERS, mapped_users), MAP_ROLES: render_key(MAP_ROLES, mapped_roles)}


def cpu(action: Callable[[], object], repeat: int) -> float:
    """The least CPU time of ``repeat`` runs: the figure least disturbed by other load on the machine."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def main(repeat: int = 5) -> None:
    data = document()
    size = sum(len(v.encode()) for v in data.values())
    print(f"aws-auth: 5000 users + 1000 roles, {size / 2**20:.2f} MiB ({size / 2**20:.0%} of 1 MiB)")
    loader = getattr(yaml, "CSafeLoader", None)
    reference = cpu(lambda: [yaml.load(v, Loader=loader) for v in data.values()], repeat) if loader else None
    if reference is not None:
        print(f"  one yaml.CSafeLoader load (reference)    {reference:6.3f} s")
    libyaml = yamlbounds.LIBYAML
    try:
        if libyaml is not None:
            fast = cpu(lambda: read_aws_auth(data), repeat)
            ratio = f"  {fast / reference:.2f}x the reference (goal: close to 1x)" if reference else ""
            print(f"  read_aws_auth, libyaml events            {fast:6.3f} s{ratio}")
        yamlbounds.LIBYAML = None
        slow = cpu(lambda: read_aws_auth(data), max(1, repeat // 3))
        ratio = f"  {slow / reference:.2f}x the reference" if reference else ""
        print(f"  read_aws_auth, pure PyYAML (fallback)    {slow:6.3f} s{ratio}")
    finally:
        yamlbounds.LIBYAML = libyaml


if __name__ == "__main__":
    main()
