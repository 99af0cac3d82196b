"""EKS's access-policy authorizer for the test apiserver: a SubjectAccessReview (authorization.k8s.io/v1)
webhook that answers from the EKS emulator's associations, so that a user's own token proves a grant
made by an access policy, end to end.

The apiserver runs ``--authorization-mode=Webhook,RBAC`` (tests/harness/kube.py, when a cluster is
started with ``access_policies=True``): for each request it asks this webhook first; "allowed" ends
the question, anything else goes on to RBAC. As in EKS, where the chain is Node, Webhook, RBAC and
"the IAM principal has all the permissions in all associated access policies" and "all the
permissions in any Kubernetes Role or ClusterRole" bound to its groups (user guide, "Associate access
policies with access entries"): the union, and a policy never takes anything away.

The decision, per review:

1. The caller: the access entry behind the request's user. The authenticator (authenticator.py) puts
   the caller's IAM identity in the user's ``extra`` as EKS does (``canonicalArn``, ``principalId``:
   the unique id, ``AIDA…``, or ``AROA…:session`` for a role session). The entry is the propagated
   one whose principal has that unique id and, role path stripped, that ARN — the one the
   authenticator mapped the caller from (``EksEmulator.authorizing_associations``). No such extra
   (an impersonated user: "you're forcing the use of Kubernetes RBAC authorization. As a result, the
   IAM principal has no permissions assigned by any access policies"), a caller mapped by aws-auth,
   a CONFIG_MAP cluster: no opinion.
2. The permissions: the documented rules of the entry's policies (access_policies.py, ``RULES``),
   within each association's scope.
3. The answer: ``allowed: true`` with the policy and scope as the reason, or no opinion
   (``allowed: false``, no ``denied``), so RBAC decides. It never denies.

``SelfSubjectAccessReview`` (``kubectl auth can-i verb resource``) goes through the same chain, so it
sees policy grants here; ``SelfSubjectRulesReview`` (``kubectl auth can-i --list``) lists RBAC rules
only, as the user guide says of EKS.

Every review is kept in ``decisions`` (user, attributes, allowed, reason) for tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.harness.access_policies import Association, Request, granting

# (canonical ARN, unique id) -> the associations of the entry that maps that caller, or None.
AssociationLookup = Callable[[str, str], list[Association] | None]


@dataclass(frozen=True)
class Decision:
    user: str
    request: Request
    allowed: bool
    reason: str


@dataclass
class AccessPolicyAuthorizer:
    lookup: AssociationLookup
    decisions: list[Decision] = field(default_factory=list)

    def review(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The ``status`` of a SubjectAccessReview for this ``spec``."""
        request = _request(spec)
        user = str(spec.get("user", ""))
        allowed, reason = self._decide(spec, request)
        self.decisions.append(Decision(user, request, allowed, reason))
        return {"allowed": True, "reason": reason} if allowed else {"allowed": False, "reason": reason}

    def _decide(self, spec: dict[str, Any], request: Request) -> tuple[bool, str]:
        extra = {str(k).lower(): v for k, v in (spec.get("extra") or {}).items()}
        canonical, principal_id = _first(extra.get("canonicalarn")), _first(extra.get("principalid"))
        if not canonical or not principal_id:
            return False, "no opinion: no IAM identity in the user's extra (impersonated, or not from EKS)"
        associations = self.lookup(canonical, principal_id.split(":", 1)[0])
        if associations is None:
            return False, f"no opinion: no access entry maps {canonical}"
        found = granting(associations, request)
        if found is None:
            return False, f"no opinion: no associated access policy of {canonical} allows it"
        scope = "cluster" if found.scope_type == "cluster" else "namespaces " + ",".join(found.namespaces)
        return True, f"EKS access policy {found.policy_name} ({scope}) associated with {canonical}"


def _first(values: Any) -> str:
    return str(values[0]) if isinstance(values, list) and values else ""


def _request(spec: dict[str, Any]) -> Request:
    resource = spec.get("resourceAttributes")
    if isinstance(resource, dict):
        return Request(
            verb=str(resource.get("verb", "")),
            namespace=str(resource.get("namespace", "")),
            group=str(resource.get("group", "")),
            resource=str(resource.get("resource", "")),
            subresource=str(resource.get("subresource", "")),
        )
    other = spec.get("nonResourceAttributes") or {}
    return Request(verb=str(other.get("verb", "")), path=str(other.get("path", "")) or "/")


class AuthorizationWebhook:
    """Serves SubjectAccessReview on 127.0.0.1 for the apiserver's authorization webhook."""

    def __init__(self, authorizer: AccessPolicyAuthorizer) -> None:
        self.authorizer = authorizer
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(authorizer))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/authorize"

    def start(self) -> AuthorizationWebhook:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(authorizer: AccessPolicyAuthorizer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the apiserver keeps its connection to the webhook open
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            review = json.loads(self.rfile.read(length))
            status = authorizer.review(review.get("spec") or {})
            body = json.dumps(
                {"apiVersion": review.get("apiVersion"), "kind": "SubjectAccessReview", "status": status}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
