"""A local Amazon EKS control-plane API for tests: clusters and their access entries, spoken over
rest-json so that a plain ``boto3.client("eks")`` reaches it (through ``endpoint_url`` or the
standard ``AWS_ENDPOINT_URL_EKS``). moto's EKS has no access entries, hence this.

What it serves, and how faithfully (shared/docs/access-entries.md has the rules):

- DescribeCluster; CreateCluster, ListClusters, DeleteCluster, and UpdateClusterConfig/DescribeUpdate
  for the authentication mode only. Clusters are regional and belong to an account: a request signed
  for another region, or with the credentials of another account (moto's account of the access key:
  an assumed role's session acts in the role's account), does not see them.
- The access-entry API: Create/Describe/List/Update/DeleteAccessEntry, Associate/Disassociate/
  ListAssociatedAccessPolicies, ListAccessPolicies, and Tag/Untag/ListTagsForResource on entry (and
  cluster) ARNs, with EKS's validation rules, error codes, pagination and the per-cluster quota; the
  access-policy calls only on STANDARD entries, as in EKS.
- An entry records the principal's IAM unique id at creation, read from moto's in-process IAM by
  default (``principal_id``): a principal deleted and recreated under the same ARN leaves it stale.

Operations, methods and URIs are the ones in ``OPERATIONS``; request members are read by name and
location from botocore's EKS model, and tests check the table and every response against the model.

Test hooks: ``calls`` (every request: operation, cluster, principal, outcome, response body;
``calls_to("AssociateAccessPolicy", cluster=...)`` counts one operation's calls),
``delay_new_entries`` (EKS is eventually consistent: a new entry answers 404 and does not
authenticate for a while), ``fail_next`` (the next call to an operation answers an error), and
``source(cluster)``, the access-entry source the test authenticator reads (tests/harness/authenticator.py).

Access policies: associations are kept per entry exactly as EKS keeps them (one per policy; a
second AssociateAccessPolicy of the same policy replaces its scope in that one call — see
``_associate_access_policy`` for the documentation quoted), the catalogue ``ListAccessPolicies``
answers is tests/harness/access_policies.py's, and ``authorizing_associations`` is what the
integration tier's authorization webhook (tests/harness/authorizer.py) reads, so an association
grants its documented permissions on a control plane started with ``access_policies=True``.

Not emulated: request signatures, the cluster-creator admin entry EKS adds at CreateCluster, node
groups and the rest of EKS.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import get_account_id_from, iam_backends

from tests.harness.access_policies import CATALOGUE, Association, policy_arn
from tests.harness.authenticator import AUTHENTICATION_MODES, AccessEntryMapping, strip_role_path

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_EKS"

# operation -> (method, requestUri), as in botocore's eks/2017-11-01 model (a test keeps them equal).
OPERATIONS: dict[str, tuple[str, str]] = {
    "CreateCluster": ("POST", "/clusters"),
    "ListClusters": ("GET", "/clusters"),
    "DescribeCluster": ("GET", "/clusters/{name}"),
    "DeleteCluster": ("DELETE", "/clusters/{name}"),
    "UpdateClusterConfig": ("POST", "/clusters/{name}/update-config"),
    "DescribeUpdate": ("GET", "/clusters/{name}/updates/{updateId}"),
    "CreateAccessEntry": ("POST", "/clusters/{name}/access-entries"),
    "ListAccessEntries": ("GET", "/clusters/{name}/access-entries"),
    "DescribeAccessEntry": ("GET", "/clusters/{name}/access-entries/{principalArn}"),
    "UpdateAccessEntry": ("POST", "/clusters/{name}/access-entries/{principalArn}"),
    "DeleteAccessEntry": ("DELETE", "/clusters/{name}/access-entries/{principalArn}"),
    "AssociateAccessPolicy": ("POST", "/clusters/{name}/access-entries/{principalArn}/access-policies"),
    "ListAssociatedAccessPolicies": ("GET", "/clusters/{name}/access-entries/{principalArn}/access-policies"),
    "DisassociateAccessPolicy": (
        "DELETE",
        "/clusters/{name}/access-entries/{principalArn}/access-policies/{policyArn}",
    ),
    "ListAccessPolicies": ("GET", "/access-policies"),
    "TagResource": ("POST", "/tags/{resourceArn}"),
    "UntagResource": ("DELETE", "/tags/{resourceArn}"),
    "ListTagsForResource": ("GET", "/tags/{resourceArn}"),
}
ACCESS_ENTRY_OPERATIONS = frozenset(
    {
        "CreateAccessEntry",
        "ListAccessEntries",
        "DescribeAccessEntry",
        "UpdateAccessEntry",
        "DeleteAccessEntry",
        "AssociateAccessPolicy",
        "ListAssociatedAccessPolicies",
        "DisassociateAccessPolicy",
    }
)
# Calls naming one entry: while the entry is still propagating they answer 404.
BY_PRINCIPAL_OPERATIONS = ACCESS_ENTRY_OPERATIONS - {"CreateAccessEntry", "ListAccessEntries"}

NODE_TYPES = frozenset({"EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX", "EC2", "HYPERPOD_LINUX"})
ENTRY_TYPES = NODE_TYPES | {"STANDARD"}
RESERVED_USERNAME_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")
ENTRY_QUOTA = 3000  # per cluster, not adjustable
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 50, 128, 256
ACCESS_POLICIES = tuple((name, policy_arn(name)) for name in CATALOGUE)  # (name, ARN), ListAccessPolicies
STANDARD_ONLY = 'This operation can only be performed on Access Entries with a type of "STANDARD".'
CONFIG_MAP_REFUSAL = (
    "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation."
)
ERROR_STATUS = {
    "BadRequestException": 400,
    "InvalidParameterException": 400,
    "InvalidRequestException": 400,
    "NotFoundException": 404,
    "ResourceInUseException": 409,
    "ResourceLimitExceededException": 400,
    "ResourceNotFoundException": 404,
    "ServerException": 500,
    "UnknownOperationException": 404,
}
PRINCIPAL_ARN = re.compile(r"arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):(iam|sts)::(\d{12}):([\w+=,.@/-]+)")
CLUSTER_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9\-_]{0,99}")
CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/eks/aws4_request")
CREDENTIAL_KEY = re.compile(r"Credential=([^/]+)/")

T = TypeVar("T")


class EksError(Exception):
    """An error answer: EKS's code, its HTTP status and message (and clusterName when it has one)."""

    def __init__(self, code: str, message: str, cluster: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.cluster = cluster
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.cluster is not None:
            body["clusterName"] = self.cluster
        return body


def _invalid(message: str, cluster: str | None = None) -> EksError:
    return EksError("InvalidParameterException", message, cluster)


@dataclass
class PolicyAssociation:
    policy_arn: str
    scope_type: str  # cluster | namespace
    namespaces: list[str]
    associated_at: float
    modified_at: float

    def view(self) -> dict[str, Any]:
        return {
            "policyArn": self.policy_arn,
            "accessScope": {"type": self.scope_type, "namespaces": list(self.namespaces)},
            "associatedAt": self.associated_at,
            "modifiedAt": self.modified_at,
        }


@dataclass
class AccessEntry:
    cluster: str
    principal_arn: str
    principal_id: str  # the IAM unique id when the entry was created; never refreshed, as in EKS
    type: str
    username: str
    groups: list[str]
    arn: str
    created_at: float
    modified_at: float
    tags: dict[str, str] = field(default_factory=dict)
    client_request_token: str | None = None
    policies: dict[str, PolicyAssociation] = field(default_factory=dict)
    visible_at: float = 0.0  # before this (emulator clock), the entry is still propagating
    hidden_calls: int = 0  # ... or for this many more calls naming it

    def view(self) -> dict[str, Any]:
        return {
            "clusterName": self.cluster,
            "principalArn": self.principal_arn,
            "kubernetesGroups": list(self.groups),
            "accessEntryArn": self.arn,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": dict(self.tags),
            "username": self.username,
            "type": self.type,
        }


@dataclass
class ClusterState:
    name: str
    region: str
    account: str
    endpoint: str
    ca_data: str
    mode: str
    version: str
    created_at: float
    tags: dict[str, str] = field(default_factory=dict)
    entries: dict[str, AccessEntry] = field(default_factory=dict)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:eks:{self.region}:{self.account}:cluster/{self.name}"

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "createdAt": self.created_at,
            "version": self.version,
            "endpoint": self.endpoint,
            "status": "ACTIVE",
            "certificateAuthority": {"data": self.ca_data},
            "platformVersion": "eks.1",
            "tags": dict(self.tags),
            "accessConfig": {"authenticationMode": self.mode},
        }


@dataclass(frozen=True)
class Call:
    """One request as the emulator answered it."""

    operation: str
    cluster: str | None
    principal_arn: str | None
    status: int
    error_code: str | None
    response: dict[str, Any]
    region: str | None


@dataclass
class _Fault:
    code: str
    status: int
    message: str
    times: int


def moto_principal_id(principal_arn: str) -> str | None:
    """The unique id moto's IAM holds for this user or role ARN (path included), or None."""
    match = PRINCIPAL_ARN.fullmatch(principal_arn)
    if match is None or match.group(2) != "iam":
        return None
    partition, account, resource = match.group(1), match.group(3), match.group(4)
    backend = iam_backends[account][partition]
    if resource.startswith("user/"):
        user = backend.users.get(resource.rsplit("/", 1)[-1])
        return str(user.id) if user is not None and user.arn == principal_arn else None
    if resource.startswith("role/"):
        for role in list(backend.roles.values()):
            if role.arn == principal_arn:
                return str(role.id)
    return None


class ClusterAccessEntries:
    """One cluster's mode and entries as its authenticator sees them (an AccessEntrySource)."""

    def __init__(self, emulator: EksEmulator, cluster: str) -> None:
        self._emulator = emulator
        self.cluster = cluster

    def mode(self) -> str:
        return self._emulator.mode(self.cluster)

    def entries(self) -> list[AccessEntryMapping]:
        return self._emulator.mappings(self.cluster)


class EksEmulator:
    """The EKS API on 127.0.0.1 (``start()``, ``url``, ``stop()``), and its state for tests."""

    def __init__(
        self,
        *,
        entry_quota: int = ENTRY_QUOTA,
        principal_id: Callable[[str], str | None] = moto_principal_id,
        clock: Callable[[], float] = time.time,
        account_of: Callable[[str], str] = get_account_id_from,
    ) -> None:
        self.entry_quota = entry_quota
        self.principal_id = principal_id
        self.account_of = account_of  # access key id -> the account its requests act in
        self._caller_account: str | None = None  # the request being served's (None: unsigned, or a test hook)
        self.clock = clock
        self._clusters: dict[str, ClusterState] = {}
        self._calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._delay_seconds = 0.0
        self._delay_calls = 0
        self._lock = threading.RLock()
        self._model = ServiceModel(Loader().load_service_model("eks", "service-2"), "eks")
        self._routes = [(name, method, _route_pattern(uri)) for name, (method, uri) in OPERATIONS.items()]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll: stop() (shutdown) waits out one poll interval.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> EksEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- clusters, programmatically --------------------------------------------------------------

    def add_cluster(
        self,
        name: str,
        *,
        region: str,
        endpoint: str,
        ca_data: str,
        mode: str = "API_AND_CONFIG_MAP",
        account: str = DEFAULT_ACCOUNT_ID,
        version: str = "1.20",
    ) -> None:
        if mode not in AUTHENTICATION_MODES:
            raise ValueError(f"unknown authentication mode {mode!r}")
        with self._lock:
            if name in self._clusters:
                raise ValueError(f"cluster {name} is already registered")
            self._clusters[name] = ClusterState(name, region, account, endpoint, ca_data, mode, version, self.clock())

    def remove_cluster(self, name: str) -> None:
        with self._lock:
            self._clusters.pop(name, None)

    def mode(self, cluster: str) -> str:
        with self._lock:
            return self._cluster(cluster).mode

    def set_mode(self, cluster: str, mode: str) -> None:
        """CONFIG_MAP -> API_AND_CONFIG_MAP -> API, never back (as UpdateClusterConfig)."""
        with self._lock:
            state = self._cluster(cluster)
            if mode not in AUTHENTICATION_MODES:
                raise ValueError(f"unknown authentication mode {mode!r}")
            if AUTHENTICATION_MODES.index(mode) < AUTHENTICATION_MODES.index(state.mode):
                raise ValueError(f"the authentication mode cannot go back from {state.mode} to {mode}")
            state.mode = mode

    # -- entries, for tests and the authenticator ------------------------------------------------

    def entry_for(self, cluster: str, principal_arn: str) -> AccessEntry | None:
        """A copy of the entry for this principal ARN, propagated or not; a role's canonical ARN (no
        path, as STS reports it) finds the entry of that role whatever its path."""
        with self._lock:
            entries = self._cluster(cluster).entries
            entry = entries.get(principal_arn) or next(
                (e for e in entries.values() if strip_role_path(e.principal_arn) == principal_arn), None
            )
            return copy.deepcopy(entry)

    def entries(self, cluster: str) -> list[AccessEntry]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._cluster(cluster).entries.values()]

    def mappings(self, cluster: str) -> list[AccessEntryMapping]:
        """The propagated entries, in the form the authenticator maps from."""
        with self._lock:
            now = self.clock()
            return [
                AccessEntryMapping(e.principal_arn, e.principal_id, e.username, tuple(e.groups), e.type)
                for e in self._cluster(cluster).entries.values()
                if not _pending(e, now)
            ]

    def source(self, cluster: str) -> ClusterAccessEntries:
        return ClusterAccessEntries(self, cluster)

    # -- access-policy associations, for tests and the authorizer --------------------------------

    def associations(self, cluster: str, principal_arn: str) -> list[Association]:
        """The entry's associations (by policy ARN), propagated or not; [] without an entry."""
        entry = self.entry_for(cluster, principal_arn)
        if entry is None:
            return []
        return [
            Association(a.policy_arn, a.scope_type, tuple(a.namespaces))
            for a in sorted(entry.policies.values(), key=lambda a: a.policy_arn)
        ]

    def add_association(
        self,
        cluster: str,
        principal_arn: str,
        policy: str,
        scope_type: str = "cluster",
        namespaces: tuple[str, ...] = (),
    ) -> None:
        """Associates as another writer would, on any entry type (EKS itself associates
        AmazonEKSAutoNodePolicy with Auto Mode's ``EC2`` entries, which the API refuses to list for
        callers): test setup for associations the service must leave alone. Not logged as a call."""
        with self._lock:
            state = self._cluster(cluster)
            entry = state.entries.get(principal_arn)
            if entry is None:
                raise ValueError(f"no access entry for {principal_arn} in {cluster}")
            now = self.clock()
            entry.policies[policy] = PolicyAssociation(policy, scope_type, list(namespaces), now, now)

    def authorizing_associations(self, cluster: str, canonical_arn: str, unique_id: str) -> list[Association] | None:
        """The associations that apply to a caller the authenticator mapped from an access entry: the
        propagated entry whose principal has this unique id and (role path stripped) this canonical
        ARN, as the authenticator matches it. None when no entry maps the caller (an aws-auth
        mapping, a stale or still propagating entry, a CONFIG_MAP cluster, an unknown cluster)."""
        with self._lock:
            state = self._clusters.get(cluster)
            if state is None or state.mode == "CONFIG_MAP":
                return None
            now = self.clock()
            for entry in state.entries.values():
                same = strip_role_path(entry.principal_arn).lower() == canonical_arn.lower()
                if same and entry.principal_id == unique_id and not _pending(entry, now):
                    return [
                        Association(a.policy_arn, a.scope_type, tuple(a.namespaces)) for a in entry.policies.values()
                    ]
            return None

    # -- test hooks ------------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, *operations: str, cluster: str | None = None) -> list[Call]:
        """The calls to these operations (all when none given), for one cluster when given."""
        return [
            c
            for c in self.calls
            if (not operations or c.operation in operations) and (cluster is None or c.cluster == cluster)
        ]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def delay_new_entries(self, seconds: float = 0.0, calls: int = 0) -> None:
        """Entries created from now on answer 404 to calls naming them (and do not authenticate, nor
        show in ListAccessEntries) until ``seconds`` have passed and ``calls`` such calls were refused.
        Zero for both turns the delay off."""
        with self._lock:
            self._delay_seconds, self._delay_calls = seconds, calls

    def fail_next(
        self,
        operation: str,
        code: str = "ServerException",
        status: int | None = None,
        message: str = "An internal error occurred (injected).",
        times: int = 1,
    ) -> None:
        """The next ``times`` calls to ``operation`` answer this error instead of being served.
        botocore retries 5xx and throttling answers by itself: a test that wants to see the error uses a
        client without retries (``retries={"total_max_attempts": 1}``) or more ``times``."""
        if operation not in OPERATIONS:
            raise ValueError(f"the emulator does not serve {operation}")
        fault = _Fault(code, status if status is not None else ERROR_STATUS.get(code, 400), message, times)
        with self._lock:
            self._faults.setdefault(operation, []).append(fault)

    def reset_hooks(self) -> None:
        """No delay, no pending faults, an empty call log."""
        with self._lock:
            self._faults.clear()
            self._calls.clear()
            self._delay_seconds, self._delay_calls = 0.0, 0

    # -- HTTP ------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Answers one request: (HTTP status, JSON body); an error's code goes in x-amzn-ErrorType."""
        parts = urlsplit(target)
        found = self._route(method, parts.path)
        if found is None:
            error = EksError("UnknownOperationException", f"No operation at {method} {parts.path}")
            self._record(Call("Unknown", None, None, error.status, error.code, error.body(), None))
            return error.status, {**error.body(), "__type": error.code}
        operation, path_params = found
        region = _region(headers)
        params: dict[str, Any] = {}
        cluster: str | None = None
        principal: str | None = None
        try:
            params = self._params(self._model.operation_model(operation), path_params, parts.query, body)
            cluster = params.get("clusterName", params.get("name"))
            principal = params.get("principalArn") if isinstance(params.get("principalArn"), str) else None
            with self._lock:
                self._inject_fault(operation, cluster)
                self._caller_account = _caller_account(headers, self.account_of)
                try:
                    response = getattr(self, "_" + _snake(operation))(params, region)
                finally:
                    self._caller_account = None
        except EksError as error:
            if error.cluster is None and error.code not in ("NotFoundException", "BadRequestException"):
                error.cluster = cluster  # EKS names the cluster in every error its shape has room for
            self._record(Call(operation, cluster, principal, error.status, error.code, error.body(), region))
            return error.status, {**error.body(), "__type": error.code}
        self._record(Call(operation, cluster, principal, 200, None, response, region))
        return 200, response

    def _route(self, method: str, raw_path: str) -> tuple[str, dict[str, str]] | None:
        for name, route_method, pattern in self._routes:
            match = pattern.fullmatch(raw_path)
            if route_method == method and match is not None:
                # Split before decoding: the ARNs in the path are percent-encoded, "/" included.
                return name, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    def _params(self, model: OperationModel, path: dict[str, str], query: str, body: bytes) -> dict[str, Any]:
        """The request's members by name, each read from where the model says it travels."""
        try:
            document = json.loads(body) if body.strip() else {}
        except ValueError as err:
            raise EksError("BadRequestException", f"The request body is not JSON: {err}") from err
        if not isinstance(document, dict):
            raise EksError("BadRequestException", "The request body is not a JSON object")
        params: dict[str, Any] = dict(document)  # unknown body members kept, for the checks that want them
        values = parse_qs(query, keep_blank_values=True)
        shape = model.input_shape
        for name, member in (shape.members if shape is not None else {}).items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                params[name] = path[wire]
            elif location == "querystring" and wire in values:
                params[name] = _query_value(name, member, values[wire])
        return params

    def _inject_fault(self, operation: str, cluster: str | None) -> None:
        queue = self._faults.get(operation)
        if not queue:
            return
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        raise EksError(fault.code, fault.message, cluster, fault.status)

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    # -- state helpers ---------------------------------------------------------------------------

    def _cluster(self, name: str, region: str | None = None) -> ClusterState:
        state = self._clusters.get(name)
        # Clusters are regional and per account; an unsigned request (no region, no key) sees them all.
        if state is None or (region is not None and state.region != region) or not self._visible(state):
            raise EksError("ResourceNotFoundException", f"No cluster found for name: {name}.", name)
        return state

    def _visible(self, state: ClusterState) -> bool:
        return self._caller_account in (None, state.account)

    def _entry_cluster(self, params: dict[str, Any], region: str | None) -> ClusterState:
        state = self._cluster(params["clusterName"], region)
        if state.mode == "CONFIG_MAP":
            raise EksError("InvalidRequestException", CONFIG_MAP_REFUSAL, state.name)
        return state

    def _entry(self, state: ClusterState, principal_arn: str) -> AccessEntry:
        entry = state.entries.get(principal_arn)
        if entry is not None and _pending(entry, self.clock()):
            entry.hidden_calls = max(0, entry.hidden_calls - 1)
            entry = None
        if entry is None:
            raise EksError(
                "ResourceNotFoundException",
                f"The specified access entry resource is not found: {principal_arn}.",
                state.name,
            )
        return entry

    def _standard_entry(self, state: ClusterState, principal_arn: str) -> AccessEntry:
        entry = self._entry(state, principal_arn)
        if entry.type != "STANDARD":
            raise _invalid(STANDARD_ONLY, state.name)
        return entry

    # -- clusters --------------------------------------------------------------------------------

    def _create_cluster(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        name = str(params.get("name", ""))
        if not CLUSTER_NAME.fullmatch(name):
            raise _invalid(f"The cluster name {name!r} is invalid.")
        mode = (params.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP")
        if mode not in AUTHENTICATION_MODES:
            raise _invalid(f"Unsupported authentication mode {mode}.", name)
        if name in self._clusters:
            raise EksError("ResourceInUseException", f"Cluster already exists with name: {name}", name)
        region = region or "us-east-1"
        host = uuid.uuid4().hex.upper()
        ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nEMULATED\n-----END CERTIFICATE-----\n").decode()
        state = ClusterState(
            name,
            region,
            self._caller_account or DEFAULT_ACCOUNT_ID,
            f"https://{host}.gr7.{region}.eks.amazonaws.com",
            ca,
            mode,
            str(params.get("version") or "1.20"),
            self.clock(),
            dict(params.get("tags") or {}),
        )
        self._clusters[name] = state
        return {"cluster": state.view()}

    def _list_clusters(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        names = sorted(n for n, c in self._clusters.items() if region in (None, c.region) and self._visible(c))
        page, token = _page(names, str, params.get("maxResults"), params.get("nextToken"))
        return _without_none({"clusters": page, "nextToken": token})

    def _describe_cluster(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        return {"cluster": self._cluster(params["name"], region).view()}

    def _delete_cluster(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        state = self._cluster(params["name"], region)
        del self._clusters[state.name]
        return {"cluster": {**state.view(), "status": "DELETING"}}

    def _update_cluster_config(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        state = self._cluster(params["name"], region)
        others = sorted(k for k in params if k not in ("name", "clientRequestToken", "accessConfig"))
        if others or "accessConfig" not in params:
            raise _invalid(f"The emulator updates accessConfig only, not {others}.", state.name)
        mode = (params["accessConfig"] or {}).get("authenticationMode")
        order = AUTHENTICATION_MODES
        if mode not in order or order.index(mode) <= order.index(state.mode):
            raise _invalid(f"Unsupported authentication mode update from {state.mode} to {mode}", state.name)
        state.mode = mode
        update_id = str(uuid.uuid4())
        update: dict[str, Any] = {
            "id": update_id,
            "status": "InProgress",
            "type": "AccessConfigUpdate",
            "params": [{"type": "AuthenticationMode", "value": mode}],
            "createdAt": self.clock(),
            "errors": [],
        }
        # Applied at once; DescribeUpdate then reports it done, so callers that wait do not hang.
        state.updates[update_id] = {**update, "status": "Successful"}
        return {"update": update}

    def _describe_update(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        state = self._cluster(params["name"], region)
        update = state.updates.get(params["updateId"])
        if update is None:
            raise EksError("ResourceNotFoundException", f"No update found for ID: {params['updateId']}", state.name)
        return {"update": update}

    # -- access entries --------------------------------------------------------------------------

    def _create_access_entry(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        state = self._entry_cluster(params, region)
        principal = str(params.get("principalArn", ""))
        kind, principal_account, name = _principal(principal, state.name)
        entry_type = params.get("type") or "STANDARD"
        if entry_type not in ENTRY_TYPES:
            raise _invalid(f"The type {entry_type} is invalid, valid types are {sorted(ENTRY_TYPES)}.", state.name)
        groups = params.get("kubernetesGroups")
        username = params.get("username")
        if entry_type in NODE_TYPES:
            if kind != "role" or principal_account != state.account:
                raise _invalid(f"Access entries of type {entry_type} need a role of account {state.account}.")
            if groups or username is not None:
                raise _invalid(f"kubernetesGroups and username cannot be set for type {entry_type}.", state.name)
        _check_groups(groups or [], state.name)
        if username is not None:
            _check_username(username, state.name)
        tags = dict(params.get("tags") or {})
        problem = _tag_problem(tags)
        if problem:
            raise _invalid(problem, state.name)
        token = params.get("clientRequestToken")
        existing = state.entries.get(principal)
        if existing is not None:
            if token is not None and token == existing.client_request_token:
                return {"accessEntry": existing.view()}  # an idempotent retry
            raise EksError(
                "ResourceInUseException",
                f"The specified access entry resource is already in use: {principal}.",
                state.name,
            )
        principal_id = self.principal_id(principal)
        if principal_id is None:
            raise _invalid("The specified principalArn is invalid: invalid principal.", state.name)
        if len(state.entries) >= self.entry_quota:
            raise EksError(
                "ResourceLimitExceededException",
                f"You have reached the limit of {self.entry_quota} access entries for cluster {state.name}.",
                state.name,
            )
        partition = principal.split(":")[1]
        if entry_type in NODE_TYPES:
            node = "{{SessionName}}" if entry_type == "FARGATE_LINUX" else "{{EC2PrivateDNSName}}"
            username, groups = f"system:node:{node}", ["system:nodes"]
        elif username is None:
            username = (
                principal
                if kind == "user"
                else f"arn:{partition}:sts::{principal_account}:assumed-role/{name}/{{{{SessionName}}}}"
            )
        now = self.clock()
        entry = AccessEntry(
            cluster=state.name,
            principal_arn=principal,
            principal_id=principal_id,
            type=entry_type,
            username=username,
            groups=list(groups or []),
            arn=f"arn:aws:eks:{state.region}:{state.account}:access-entry/{state.name}/{kind}/{principal_account}/{name}/{uuid.uuid4()}",
            created_at=now,
            modified_at=now,
            tags=tags,
            client_request_token=token,
            visible_at=now + self._delay_seconds,
            hidden_calls=self._delay_calls,
        )
        state.entries[principal] = entry
        return {"accessEntry": entry.view()}

    def _describe_access_entry(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        state = self._entry_cluster(params, region)
        return {"accessEntry": self._entry(state, params["principalArn"]).view()}

    def _list_access_entries(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        state = self._entry_cluster(params, region)
        now = self.clock()
        policy = params.get("associatedPolicyArn")
        arns = sorted(
            arn
            for arn, entry in state.entries.items()
            if not _pending(entry, now) and (policy is None or policy in entry.policies)
        )
        page, token = _page(arns, str, params.get("maxResults"), params.get("nextToken"))
        return _without_none({"accessEntries": page, "nextToken": token})

    def _update_access_entry(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        state = self._entry_cluster(params, region)
        entry = self._entry(state, params["principalArn"])
        if params.get("type") not in (None, entry.type):
            raise _invalid("The type of an access entry cannot be changed.", state.name)
        groups, username = params.get("kubernetesGroups"), params.get("username")
        if entry.type in NODE_TYPES and (groups is not None or username is not None):
            raise _invalid(f"kubernetesGroups and username cannot be set for type {entry.type}.", state.name)
        if groups is not None:
            _check_groups(groups, state.name)
        if username is not None:
            _check_username(username, state.name)
            entry.username = username
        if groups is not None:
            entry.groups = list(groups)
        entry.modified_at = self.clock()
        return {"accessEntry": entry.view()}

    def _delete_access_entry(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        state = self._entry_cluster(params, region)
        entry = self._entry(state, params["principalArn"])
        del state.entries[entry.principal_arn]  # its policy associations go with it
        return {}

    def _associate_access_policy(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        """One association per (entry, policy); associating a policy the entry already has REPLACES
        its scope in this one call: the association stays (``associatedAt`` kept, ``modifiedAt``
        moved), and at no moment does the entry lack it.

        The sources. botocore's model (eks 2017-11-01, ``AssociateAccessPolicy``): "Associates an
        access policy and its scope to an access entry", refers to the user guide's "Associating and
        disassociating access policies to and from access entries", and its ``AccessScope`` says of
        ``namespaces``: "A value is required if you specified namespace for Type". That page
        (docs.aws.amazon.com/eks/latest/userguide/access-policies.html): "you can only associate each
        policy to an access entry once"; "You can change the access scope for an access policy after
        you associate it to an access entry. If you've scoped the access policy to Kubernetes
        namespaces, you can add and remove namespaces for the association, as necessary"; and, under
        the CLI steps: "If you later want to change the scope of an associated access policy, run the
        previous command again with the new scope. For example, if you wanted to remove
        my-namespace2, you'd run the command again using type=namespace,namespaces=my-namespace1 only.
        If you wanted to change the scope from namespace to cluster, you'd run the command again using
        type=cluster". The EKS API reference for AssociateAccessPolicy says no more than botocore.

        Refusals, in EKS's order: the cluster and its mode, the entry (404, also while it
        propagates), its type ("You can assign one or more access policies to access entries of type
        STANDARD"; EKS answers InvalidParameterException with ``STANDARD_ONLY``, as reported from
        the ACK controller's calls on a node role's entry), then the policy ARN and the scope."""
        state = self._entry_cluster(params, region)
        entry = self._standard_entry(state, params["principalArn"])
        policy = str(params.get("policyArn", ""))
        if policy not in {arn for _, arn in ACCESS_POLICIES}:
            raise _invalid(f"The specified policyArn is invalid: {policy}.", state.name)
        scope_type, namespaces = _scope(params.get("accessScope"), state.name)
        now = self.clock()
        found = entry.policies.get(policy)
        if found is None:
            found = entry.policies[policy] = PolicyAssociation(policy, scope_type, namespaces, now, now)
        else:  # associating again replaces the scope, in place
            found.scope_type, found.namespaces, found.modified_at = scope_type, namespaces, now
        return {"clusterName": state.name, "principalArn": entry.principal_arn, "associatedAccessPolicy": found.view()}

    def _disassociate_access_policy(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        state = self._entry_cluster(params, region)
        entry = self._standard_entry(state, params["principalArn"])
        if entry.policies.pop(params["policyArn"], None) is None:
            raise EksError(
                "ResourceNotFoundException", f"The policy {params['policyArn']} is not associated.", state.name
            )
        return {}

    def _list_associated_access_policies(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        """Pages of 1-100 (default 100) by policy ARN. On an entry that is not STANDARD, EKS answers
        400 InvalidParameterException ``STANDARD_ONLY`` (an error botocore's model does not declare
        for this operation; seen by the ACK controller reading a node role's entry)."""
        state = self._entry_cluster(params, region)
        entry = self._standard_entry(state, params["principalArn"])
        associations = sorted(entry.policies.values(), key=lambda a: a.policy_arn)
        page, token = _page(associations, lambda a: a.policy_arn, params.get("maxResults"), params.get("nextToken"))
        return _without_none(
            {
                "clusterName": state.name,
                "principalArn": entry.principal_arn,
                "nextToken": token,
                "associatedAccessPolicies": [a.view() for a in page],
            }
        )

    def _list_access_policies(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        policies = sorted(ACCESS_POLICIES, key=lambda p: p[1])
        page, token = _page(policies, lambda p: p[1], params.get("maxResults"), params.get("nextToken"))
        return _without_none({"accessPolicies": [{"name": n, "arn": a} for n, a in page], "nextToken": token})

    # -- tags ------------------------------------------------------------------------------------

    def _tagged(self, resource_arn: str) -> dict[str, str]:
        for state in self._clusters.values():
            if not self._visible(state):
                continue
            if state.arn == resource_arn:
                return state.tags
            for entry in state.entries.values():
                if entry.arn == resource_arn:
                    return entry.tags
        raise EksError("NotFoundException", f"Resource not found: {resource_arn}")

    def _tag_resource(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        tags = self._tagged(params["resourceArn"])
        merged = {**tags, **dict(params.get("tags") or {})}
        problem = _tag_problem(merged)
        if problem:
            raise EksError("BadRequestException", problem)
        tags.update(merged)
        return {}

    def _untag_resource(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        tags = self._tagged(params["resourceArn"])
        for key in params.get("tagKeys") or []:
            tags.pop(key, None)
        return {}

    def _list_tags_for_resource(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        return {"tags": dict(self._tagged(params["resourceArn"]))}


@contextmanager
def eks_emulator(**options: Any) -> Iterator[EksEmulator]:
    """A running emulator that boto3 reaches by default (``AWS_ENDPOINT_URL_EKS``) while it runs."""
    emulator = EksEmulator(**options).start()
    saved = os.environ.get(ENDPOINT_VARIABLE)
    os.environ[ENDPOINT_VARIABLE] = emulator.url
    try:
        yield emulator
    finally:
        if saved is None:
            os.environ.pop(ENDPOINT_VARIABLE, None)
        else:
            os.environ[ENDPOINT_VARIABLE] = saved
        emulator.stop()


def _principal(arn: str, cluster: str) -> tuple[str, str, str]:
    """(user|role, account, name) of a principal ARN EKS accepts, else InvalidParameterException."""
    match = PRINCIPAL_ARN.fullmatch(arn)
    if match is None:
        raise _invalid(f"The specified principalArn is invalid: {arn!r} is not an IAM user or role ARN.", cluster)
    service, account, resource = match.group(2), match.group(3), match.group(4)
    if service == "sts":
        raise _invalid(
            "The specified principalArn is invalid: an assumed-role (STS session) ARN; give the role's ARN.", cluster
        )
    kind, _, rest = resource.partition("/")
    if kind not in ("user", "role") or not rest or rest.endswith("/"):
        raise _invalid(f"The specified principalArn is invalid: {arn!r} is not an IAM user or role ARN.", cluster)
    if kind == "role" and rest.startswith("aws-service-role/"):
        raise _invalid("The specified principalArn is invalid: service-linked roles are not supported.", cluster)
    return kind, account, rest.rsplit("/", 1)[-1]


def _scope(scope: Any, cluster: str) -> tuple[str, list[str]]:
    """(type, namespaces) of an accessScope EKS accepts, else InvalidParameterException."""
    scope = scope if isinstance(scope, dict) else {}
    scope_type, namespaces = scope.get("type"), list(scope.get("namespaces") or [])
    if scope_type not in ("cluster", "namespace"):
        raise _invalid(f"The accessScope type {scope_type} is invalid.", cluster)
    if scope_type == "namespace" and not namespaces:
        raise _invalid("An accessScope of type namespace needs at least one namespace.", cluster)
    if scope_type == "cluster" and namespaces:
        raise _invalid("An accessScope of type cluster cannot have namespaces.", cluster)
    if any(not isinstance(n, str) or not n for n in namespaces):
        raise _invalid("A namespace in accessScope cannot be empty.", cluster)
    return scope_type, namespaces


def _check_groups(groups: list[str], cluster: str) -> None:
    for group in groups:
        if not group:
            raise _invalid("A kubernetes group name cannot be empty.", cluster)
        if group.startswith("system:"):
            raise _invalid(f"The kubernetes group name {group} is invalid, it cannot start with system:", cluster)


def _check_username(username: str, cluster: str) -> None:
    if not username:
        raise _invalid("The username cannot be empty.", cluster)
    for prefix in RESERVED_USERNAME_PREFIXES:
        if username.startswith(prefix):
            raise _invalid(f"The username {username} is invalid, it cannot start with {prefix}", cluster)
    session = username.find("{{SessionName")
    if session != -1 and ":" not in username[:session]:
        raise _invalid(
            f"The username {username} is invalid: {{{{SessionName}}}} must come after a ':' in the username.",
            cluster,
        )


def _tag_problem(tags: dict[str, str]) -> str:
    if len(tags) > MAX_TAGS:
        return f"A resource can have at most {MAX_TAGS} tags."
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            return f"The tag {key!r} is invalid: keys take 1 to {MAX_TAG_KEY} characters, values up to {MAX_TAG_VALUE}."
        if key.lower().startswith("aws:"):
            return f"The tag key {key!r} is invalid: the aws: prefix is reserved."
    return ""


def _pending(entry: AccessEntry, now: float) -> bool:
    return now < entry.visible_at or entry.hidden_calls > 0


def _page(
    items: list[T], key: Callable[[T], str], max_results: int | None, next_token: str | None
) -> tuple[list[T], str | None]:
    """One page of ``items`` (sorted by ``key``); the token names the last key handed out."""
    limit = 100 if max_results is None else max_results
    if not 1 <= limit <= 100:
        raise _invalid(f"maxResults must be between 1 and 100, got {limit}.")
    start = 0
    if next_token is not None:
        try:
            after = json.loads(base64.urlsafe_b64decode(next_token.encode()))["after"]
        except (ValueError, KeyError, TypeError, binascii.Error) as err:
            raise _invalid("The nextToken is invalid.") from err
        start = next((i for i, item in enumerate(items) if key(item) > after), len(items))
    page = items[start : start + limit]
    more = start + limit < len(items)
    token = base64.urlsafe_b64encode(json.dumps({"after": key(page[-1])}).encode()).decode() if more else None
    return page, token


def _query_value(name: str, member: Shape, values: list[str]) -> Any:
    if member.type_name == "list":
        return values
    if member.type_name == "integer":
        try:
            return int(values[0])
        except ValueError as err:
            raise _invalid(f"{name} must be an integer, got {values[0]!r}.") from err
    return values[0]


def _route_pattern(uri: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(uri))
    return re.compile(pattern)


def _caller_account(headers: dict[str, str], account_of: Callable[[str], str]) -> str | None:
    match = CREDENTIAL_KEY.search(headers.get("authorization", ""))
    return account_of(match.group(1)) if match else None


def _region(headers: dict[str, str]) -> str | None:
    match = CREDENTIAL_REGION.search(headers.get("authorization", ""))
    return match.group(1) if match else None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _without_none(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if v is not None}


def _handler_for(emulator: EksEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects
        disable_nagle_algorithm = True  # else headers and body, written apart, wait out a delayed ACK

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, document = emulator.handle(self.command, self.path, headers, body)
            code = document.pop("__type", None)
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            if code is not None:
                self.send_header("x-amzn-ErrorType", str(code))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
