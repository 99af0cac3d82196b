"""What both acts of the demo print: a step, what the functions reported, and the `kubectl auth can-i`
table asked with each developer's own EKS token."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client.rest import ApiException

from tests.harness.function import Function
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, can

CHECKS = [
    ("get pods", "get", "pods", "bttrm-web-proj-1-ns"),
    ("list pods", "list", "pods", "bttrm-web-proj-1-ns"),
    ("watch pods", "watch", "pods", "bttrm-web-proj-2-ns"),
    ("list pods", "list", "pods", "bttrm-web-proj-3-ns"),
    ("list pods", "list", "pods", "default"),
    ("create pods", "create", "pods", "bttrm-web-proj-1-ns"),
    ("list nodes", "list", "nodes", None),
]


def say(text: str = "") -> None:
    print(text, flush=True)


def answer(api: Any, verb: str, resource: str, namespace: str | None) -> str:
    try:
        return "yes" if can(api, verb, resource, namespace) else "no"
    except ApiException as err:
        return "no (401: not mapped)" if err.status == 401 else f"error {err.status}"


def table(plane: ControlPlane, cluster: str, people: dict[str, Principal], title: str = "kubectl auth can-i") -> None:
    time.sleep(0.5)  # the apiserver's RBAC cache follows writes within moments
    clients = [plane.client_for(who.token(cluster)) for who in people.values()]  # a new token, as kubectl would
    width = 34
    say(f"    {title:{width}}" + "".join(f"{name:>22}" for name in people))
    for label, verb, resource, namespace in CHECKS:
        where = f" -n {namespace}" if namespace else ""
        row = f"    {label + where:{width}}"
        row += "".join(f"{answer(api, verb, resource, namespace):>22}" for api in clients)
        say(row)
    say()


def step(
    number: int,
    title: str,
    change: Callable[[], object],
    event: dict[str, Any],
    fn: Function,
    log: io.StringIO,
    clusters: tuple[str, ...],
) -> None:
    """Makes the IAM change, delivers its CloudTrail event (or, with no event, the schedule's) to the
    handler, and prints what each cluster reported. The functions' JSON logs go to ``log``."""
    say(f"{number}. {title}")
    change()
    with contextlib.redirect_stdout(log):
        result = fn.invoke("on_iam_event", event) if event else fn.invoke("reconcile_all")
    report(result, clusters)


def report(result: dict[str, Any], clusters: tuple[str, ...]) -> None:
    if result.get("status") == "ignored":
        say(f"    ignored: {result['reason']} ({result['detail']})")
        return
    for cluster in clusters:
        summary = result.get("clusters", {}).get(cluster, {})
        prefix = f"{cluster} ({summary.get('backend')}): " if len(clusters) > 1 else ""
        identities = summary.get("identities", {})
        lines = [item["text"] for item in identities.get("changes", []) + summary.get("roleBindings", [])]
        for line in lines:
            say(f"    {prefix}applied: {line}")
        for refusal in summary.get("grantRefusals", []):
            say(
                f"    {prefix}refused ({refusal['reason']}): {refusal['principal']}: "
                f"{refusal['subject']}: {refusal['message']}"
            )
        for refusal in identities.get("refusals", []):
            say(f"    {prefix}refused ({refusal['reason']}): {refusal['message']}")
        if prefix and not lines and summary.get("status") == "no-changes":
            say(f"    {prefix}no changes")
