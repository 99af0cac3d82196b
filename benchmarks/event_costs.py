"""API calls per membership event, the cost of an irrelevant event, and the cold import of app.py.

Figures, not assertions. Goals (issue 5): a membership event makes at most 2 IAM reads and at most
2 Kubernetes reads, writes only for the actual diff, none on a no-op; an irrelevant event does not
import kubernetes and takes well under 50 ms in process; importing app.py costs at most 1.1x the
floor `import boto3, kubernetes.client`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.client
from kubernetes.client import ApiClient

from tests.harness.cloudtrail import iam_event
from tests.harness.function import cluster_config, deployed
from tests.harness.principals import iam_user
from tests.harness.stack import local_stack

ROOT = Path(__file__).parents[1]
GROUP = "iam-bttrm-web-ro-group"
PROJECTS = ("bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns")


@contextmanager
def counting() -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    aws_call = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - private, so no stub
    kube_call = ApiClient.call_api

    def count_aws(self: Any, operation: str, params: Any) -> Any:
        counts[f"{self.meta.service_model.service_name}:{operation}"] += 1
        return aws_call(self, operation, params)

    def count_kube(self: Any, resource_path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        counts[f"k8s:{'read' if method == 'GET' else 'write'}"] += 1
        return kube_call(self, resource_path, method, *args, **kwargs)

    setattr(botocore.client.BaseClient, "_make_api_call", count_aws)  # noqa: B010
    ApiClient.call_api = count_kube
    try:
        yield counts
    finally:
        setattr(botocore.client.BaseClient, "_make_api_call", aws_call)  # noqa: B010
        ApiClient.call_api = kube_call


def membership_events() -> None:
    with local_stack((*PROJECTS,), "rbac-bttrm-pods-ro-cluster-role") as stack, tempfile.TemporaryDirectory() as tmp:
        iam = boto3.client("iam")
        iam.create_group(GroupName=GROUP)
        with deployed(stack.service, cluster_config(stack.plane), Path(tmp)) as fn:
            fn.invoke("reconcile_all")
            user = iam_user("bench-user").arn.rsplit("/", 1)[-1]
            iam.add_user_to_group(GroupName=GROUP, UserName=user)
            event = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": user})
            fn.invoke("on_iam_event", event)  # warm: DescribeCluster-free config, token and identity cached
            iam.remove_user_from_group(GroupName=GROUP, UserName=user)
            rows = []
            for label, payload in (
                (
                    "RemoveUserFromGroup (1 entry removed)",
                    iam_event("RemoveUserFromGroup", {"groupName": GROUP, "userName": user}),
                ),
                ("same event again (no-op)", iam_event("RemoveUserFromGroup", {"groupName": GROUP, "userName": user})),
            ):
                with counting() as counts:
                    fn.invoke("on_iam_event", payload)
                rows.append((label, counts))
            iam.add_user_to_group(GroupName=GROUP, UserName=user)
            with counting() as counts:
                fn.invoke("on_iam_event", event)
            rows.insert(0, ("AddUserToGroup (1 entry added)", counts))
    print("API calls per membership event (warm execution environment)")
    print(f"  {'event':40} {'IAM reads':>9} {'k8s reads':>9} {'k8s writes':>10}  detail")
    for label, counts in rows:
        iam_reads = sum(v for k, v in counts.items() if k.startswith("iam:"))
        detail = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if not k.startswith("k8s"))
        print(f"  {label:40} {iam_reads:>9} {counts['k8s:read']:>9} {counts['k8s:write']:>10}  {detail}")
    print("  (a write of aws-auth is 3 requests: a server-side dry run, the backup slot, then aws-auth with its")
    print("   resourceVersion; the first write of each hour also keeps the hourly backup slot)")


IRRELEVANT = """
import json, statistics, sys, time
import app
from chalicelib.entry.service import handle_iam_event
from tests.harness.cloudtrail import iam_event
event = iam_event("AddUserToGroup", {"groupName": "unrelated-group", "userName": "x"})
handle_iam_event(event)
samples = []
for _ in range(200):
    started = time.perf_counter()
    handle_iam_event(event)
    samples.append((time.perf_counter() - started) * 1000)
print(json.dumps({"median_ms": statistics.median(samples), "max_ms": max(samples),
                  "kubernetes_imported": any(m.split(".")[0] == "kubernetes" for m in sys.modules)}))
"""


def irrelevant_event() -> None:
    env = {k: v for k, v in os.environ.items() if k != "EKS_IAM_SYNC_CONFIG"}
    out = subprocess.run(
        [sys.executable, "-c", IRRELEVANT], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print("an irrelevant event (group not configured), in process, warm")
    print(
        f"  median {figures['median_ms']:.3f} ms, max {figures['max_ms']:.3f} ms over 200; "
        f"kubernetes imported: {figures['kubernetes_imported']}"
    )


def import_seconds(statement: str, runs: int = 7) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import time; s = time.perf_counter(); {statement}; print(time.perf_counter() - s)",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def cold_imports() -> None:
    floor = import_seconds("import boto3, kubernetes.client")
    app_only = import_seconds("import app")
    app_and_client = import_seconds("import app, chalicelib.run.runner")
    print("cold import (new interpreter, .pyc present; median of 7)")
    print(f"  floor: import boto3, kubernetes.client   {floor * 1000:7.1f} ms")
    for label, seconds in (
        ("import app  (what every cold start pays)", app_only),
        ("import app + runner (first relevant run)", app_and_client),
    ):
        print(f"  {label} {seconds * 1000:7.1f} ms  = {seconds / floor:.2f}x the floor")


def main() -> None:
    irrelevant_event()
    cold_imports()
    membership_events()


if __name__ == "__main__":
    main()
