"""An EKS token authenticator for the test apiserver: a TokenReview webhook that behaves like
aws-iam-authenticator, with the STS emulator (moto, in this process) standing in for STS.

It applies the real server's checks to ``k8s-aws-v1.`` tokens (shared/docs/aws-auth-rules.md),
verifies the SigV4 signature with the cluster ID it expects (so a token minted for another cluster,
or a forged one, fails as it would at STS), resolves the caller through the emulator with a normally
signed GetCallerIdentity (moto's server routes presigned GETs to S3), canonicalises assumed-role
ARNs, and maps the caller as the cluster's authentication mode says:

- ``CONFIG_MAP`` (the default, and the only mode without an access-entry source): the live aws-auth
  ConfigMap with the current consumer's (Gen C) rules;
- ``API``: access entries only, aws-auth ignored;
- ``API_AND_CONFIG_MAP``: the caller's access entry if it has one, else aws-auth.

Access entries are matched as the EKS-hosted authenticator's DynamicFile mapper does in its
UserID-strict mode: by the principal's unique id (the UserId of GetCallerIdentity; for a role
session, the ``AROA…`` part before the ``:``), and then the entry's ARN, role path stripped, must be
the caller's canonical ARN. So an entry left over from a deleted principal is stale for a principal
recreated with the same ARN (new id); it authenticates nobody. As in aws-iam-authenticator's
``doMapping``, a mapper that does not map the caller hands over to the next one, so in
``API_AND_CONFIG_MAP`` an aws-auth mapping of that principal still applies.

It is written independently of chalicelib so that it checks the service, not itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import yaml

TOKEN_PREFIX = "k8s-aws-v1."
MAX_TOKEN_BYTES = 4096
ALLOWED_QUERY_KEYS = {
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
}
MAX_AGE_SECONDS = 15 * 60
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TEMPLATE = re.compile(r"\{\{(AccountID|SessionName|SessionNameRaw|EC2PrivateDNSName|AccessKeyID)\}\}")
AUTHENTICATION_MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")  # in the only order a cluster may go
NODE_ENTRY_GROUPS = ("system:bootstrappers", "system:nodes")


class Rejected(Exception):
    """The token is not accepted; the message says which check failed."""


@dataclass(frozen=True)
class AccessEntryMapping:
    """What EKS hands its authenticator for one access entry (the dynamic mapping file's record)."""

    principal_arn: str  # as created: a role keeps its path
    principal_id: str  # the principal's unique id when the entry was created (AIDA…, AROA…)
    username: str  # may hold templates such as {{SessionName}}
    groups: tuple[str, ...]
    type: str = "STANDARD"


class AccessEntrySource(Protocol):
    """A cluster's authentication mode and its access entries, read at every review (changes apply
    at once, as the apiserver's webhook cache is off)."""

    def mode(self) -> str: ...

    def entries(self) -> Iterable[AccessEntryMapping]: ...


@dataclass(frozen=True)
class Identity:
    arn: str
    canonical_arn: str
    account: str
    user_id: str
    session_name: str
    access_key_id: str


@dataclass
class TokenAuthenticator:
    cluster_id: str
    sts_endpoint: str  # the emulator's URL, e.g. http://127.0.0.1:5000
    read_aws_auth: Callable[[], dict[str, str]]  # data of kube-system/aws-auth, {} when absent
    secret_for: Callable[[str], str | None]  # access key id -> secret, from the emulator
    clock: Callable[[], float] = time.time
    decisions: list[tuple[str, str]] = field(default_factory=list)
    access_entries: AccessEntrySource | None = None  # None: a CONFIG_MAP cluster

    def review(self, token: str) -> dict[str, Any]:
        try:
            identity = self._identify(token)
            user = self._map(identity)
        except Rejected as err:
            self.decisions.append(("rejected", str(err)))
            return {"authenticated": False, "error": str(err)}
        self.decisions.append(("accepted", identity.canonical_arn))
        return {"authenticated": True, "user": user}

    def _identify(self, token: str) -> Identity:
        url = self._check_token(token)
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
        access_key = query["X-Amz-Credential"][0].split("/")[0]
        secret = self.secret_for(access_key)
        if secret is None or not self._signature_valid(url, secret):
            raise Rejected("sts getCallerIdentity failed: the request signature does not match")
        session_token = query.get("X-Amz-Security-Token", [None])[0]
        sts = boto3.client(
            "sts",
            region_name=query["X-Amz-Credential"][0].split("/")[2],
            endpoint_url=self.sts_endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            aws_session_token=session_token,
        )
        caller = sts.get_caller_identity()
        arn = caller["Arn"]
        return Identity(
            arn=arn,
            canonical_arn=canonicalize(arn),
            account=caller["Account"],
            user_id=caller["UserId"],
            session_name=arn.split("/")[2] if ":assumed-role/" in arn else "",
            access_key_id=access_key,
        )

    def _check_token(self, token: str) -> str:
        """The real server's checks, in its order; returns the presigned URL."""
        url = self._decode(token)
        parts = urlsplit(url)
        emulator = urlsplit(self.sts_endpoint)
        if parts.netloc != emulator.netloc:
            raise Rejected(f"unexpected hostname {parts.netloc!r} in pre-signed URL")
        if parts.scheme not in ("https", emulator.scheme):
            raise Rejected(f"unexpected scheme {parts.scheme!r} in pre-signed URL")
        if parts.path != "/":
            raise Rejected("unexpected path in pre-signed URL")
        self._check_query(parse_qs(parts.query, keep_blank_values=True))
        return url

    @staticmethod
    def _decode(token: str) -> str:
        if len(token) > MAX_TOKEN_BYTES:
            raise Rejected("token is too large")
        if not token.startswith(TOKEN_PREFIX):
            raise Rejected('token is missing expected "k8s-aws-v1." prefix')
        body = token[len(TOKEN_PREFIX) :]
        try:
            if "=" in body:
                raise ValueError("padding")
            return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError) as err:
            raise Rejected(f"illegal base64: {err}") from err

    def _check_query(self, query: dict[str, list[str]]) -> None:
        lowered: dict[str, str] = {}
        for key, values in query.items():
            if key.lower() not in ALLOWED_QUERY_KEYS:
                raise Rejected(f"non-whitelisted query parameter {key!r}")
            if len(values) != 1 or key.lower() in lowered:
                raise Rejected(f"query parameter with multiple values not supported: {key!r}")
            lowered[key.lower()] = values[0]
        if lowered.get("action") != "GetCallerIdentity":
            raise Rejected("unexpected action parameter in pre-signed URL")
        if "x-k8s-aws-id" not in lowered.get("x-amz-signedheaders", "").split(";"):
            raise Rejected("client did not sign the x-k8s-aws-id header in the pre-signed URL")
        expires = lowered.get("x-amz-expires", "0")
        if not expires.isdigit() or not 0 <= int(expires) <= MAX_AGE_SECONDS:
            raise Rejected(f"invalid X-Amz-Expires parameter in pre-signed URL: {expires!r}")
        try:
            signed_at = datetime.strptime(lowered["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except (KeyError, ValueError) as err:
            raise Rejected("error parsing X-Amz-Date parameter") from err
        if self.clock() - signed_at.timestamp() > MAX_AGE_SECONDS:
            raise Rejected("X-Amz-Date parameter is expired (15 minute expiration)")
        for key in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-Algorithm"):
            if key not in query:
                raise Rejected(f"missing {key} in pre-signed URL")

    def _signature_valid(self, url: str, secret: str) -> bool:
        """Recomputes the SigV4 query signature with this cluster's ID as x-k8s-aws-id, as STS would."""
        parts = urlsplit(url)
        pairs = [(k, v) for k, v in _ordered_pairs(parts.query) if k != "X-Amz-Signature"]
        query = dict(_ordered_pairs(parts.query))
        canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs))
        headers = {"host": parts.netloc, "x-k8s-aws-id": self.cluster_id}
        names = query["X-Amz-SignedHeaders"].split(";")
        if any(name not in headers for name in names):
            return False
        canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in names)
        canonical_request = "\n".join(["GET", "/", canonical_query, canonical_headers, ";".join(names), EMPTY_SHA256])
        _, date, region, service, terminator = query["X-Amz-Credential"].split("/")
        scope = f"{date}/{region}/{service}/{terminator}"
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                query["X-Amz-Date"],
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        key = ("AWS4" + secret).encode()
        for part in (date, region, service, terminator):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, query["X-Amz-Signature"])

    def _map(self, identity: Identity) -> dict[str, Any]:
        mode = self.access_entries.mode() if self.access_entries is not None else "CONFIG_MAP"
        if mode not in AUTHENTICATION_MODES:
            raise Rejected(f"unknown authentication mode {mode!r}")
        mapped: tuple[str, list[str]] | None = None
        not_mapped = ""
        if mode != "CONFIG_MAP" and self.access_entries is not None:
            mapped, not_mapped = _from_access_entries(self.access_entries.entries(), identity)
        if mapped is None and mode != "API":
            mapped = self._from_aws_auth(identity)
        if mapped is None:
            if mode == "CONFIG_MAP":
                raise Rejected(f"ARN is not mapped: {identity.canonical_arn}")
            detail = f" ({not_mapped})" if not_mapped else ""
            raise Rejected(f"identity is not mapped: {identity.canonical_arn}{detail}")
        username, groups = mapped
        if not username:
            raise Rejected(f"mapped username for {identity.canonical_arn} is empty")
        return {
            "username": username,
            "uid": f"aws-iam-authenticator:{identity.account}:{identity.user_id}",
            "groups": groups,
            # As EKS fills them (seen with `kubectl rbac-tool whoami` on EKS): the authorization
            # webhook (authorizer.py) finds the caller's access entry from these.
            "extra": {
                "arn": [identity.arn],
                "canonicalArn": [identity.canonical_arn],
                "sessionName": [identity.session_name],
                "accessKeyId": [identity.access_key_id],
                "principalId": [identity.user_id],
                "sigs.k8s.io/aws-iam-authenticator/principalId": [identity.user_id],
            },
        }

    def _from_aws_auth(self, identity: Identity) -> tuple[str, list[str]] | None:
        data = self.read_aws_auth()
        arn = identity.canonical_arn.lower()
        match: dict[str, Any] | None = None
        for entry in _entries(data.get("mapRoles", ""), "rolearn"):
            if entry["rolearn"].lower() == arn:
                match = entry  # the last duplicate wins, as in the consumer
        if match is None:
            for entry in _entries(data.get("mapUsers", ""), "userarn"):
                if entry["userarn"].lower() == arn:
                    match = entry
        if match is not None:
            return _render(match["username"], identity), [str(g) for g in match["groups"]]
        if identity.account in _accounts(data.get("mapAccounts", "")):
            return identity.canonical_arn, []
        return None


def _from_access_entries(
    entries: Iterable[AccessEntryMapping], identity: Identity
) -> tuple[tuple[str, list[str]] | None, str]:
    """The caller's entry, looked up by unique id then checked by ARN (UserID-strict DynamicFile);
    otherwise None and why, for the decision log."""
    unique_id = identity.user_id.split(":")[0] if ":assumed-role/" in identity.arn else identity.user_id
    canonical = identity.canonical_arn.lower()
    why = ""
    for entry in entries:
        same_arn = strip_role_path(entry.principal_arn).lower() == canonical
        if entry.principal_id != unique_id:
            if same_arn:
                why = f"access entry {entry.principal_arn} belongs to a principal since deleted (stale)"
            continue
        if not same_arn:
            # The caller's id under another name (an IAM user renamed keeps its id): no match either.
            return None, f"ARN does not match User ID of access entry {entry.principal_arn}"
        if entry.type != "STANDARD":
            return (_render(entry.username, identity), list(NODE_ENTRY_GROUPS)), ""
        return (_render(entry.username, identity), list(entry.groups)), ""
    return None, why


def strip_role_path(arn: str) -> str:
    """arn:P:iam::ACCT:role/PATH/NAME -> arn:P:iam::ACCT:role/NAME; anything else unchanged."""
    fields = arn.split(":", 5)
    if len(fields) != 6 or not fields[5].startswith("role/"):
        return arn
    return ":".join([*fields[:5], "role/" + fields[5].rsplit("/", 1)[-1]])


def canonicalize(arn: str) -> str:
    """arn:P:sts::ACCT:assumed-role/ROLE/SESSION -> arn:P:iam::ACCT:role/ROLE; IAM ARNs unchanged."""
    fields = arn.split(":", 5)
    if len(fields) != 6 or fields[0] != "arn":
        raise Rejected(f"arn {arn!r} is invalid")
    partition, service, account, resource = fields[1], fields[2], fields[4], fields[5]
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    if service == "iam":
        return arn
    raise Rejected(f"service {service!r} in arn {arn!r} is not a valid service for identities")


def _entries(raw: str, arn_field: str) -> list[dict[str, Any]]:
    """Gen C reading: YAML -> JSON -> case-insensitive fields; wrong types zeroed; no ARN, dropped;
    a document that does not load drops every entry of the key."""
    try:
        loader = yaml.SafeLoader(raw)
        try:
            document = loader.get_data() if loader.check_data() else None  # type: ignore[no-untyped-call]
        finally:
            loader.dispose()
    except yaml.YAMLError:
        return []
    if document is None:
        return []
    if not isinstance(document, list):
        return []
    entries = []
    for item in document:
        if not isinstance(item, dict):
            continue
        fields = {str(k).lower(): v for k, v in item.items()}
        arn = fields.get(arn_field)
        username = fields.get("username")
        groups = fields.get("groups")
        entry = {
            arn_field: arn if isinstance(arn, str) else "",
            "username": username if isinstance(username, str) else "",
            "groups": [g if isinstance(g, str) else "" for g in groups] if isinstance(groups, list) else [],
        }
        if entry[arn_field]:
            entries.append(entry)
    return entries


def _accounts(raw: str) -> set[str]:
    try:
        document = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        return set()
    return {str(a) for a in document} if isinstance(document, list) else set()


def _render(template: str, identity: Identity) -> str:
    values = {
        "AccountID": identity.account,
        "SessionName": identity.session_name.replace("@", "-"),
        "SessionNameRaw": identity.session_name,
        "AccessKeyID": identity.access_key_id,
        "EC2PrivateDNSName": "",
    }
    return TEMPLATE.sub(lambda m: values[m.group(1)], template)


def _ordered_pairs(query: str) -> list[tuple[str, str]]:
    return [(k, v[0]) for k, v in parse_qs(query, keep_blank_values=True).items()]


class WebhookServer:
    """Serves TokenReview (authentication.k8s.io/v1) on 127.0.0.1 for the apiserver's token webhook."""

    def __init__(self, authenticator: TokenAuthenticator) -> None:
        self.authenticator = authenticator
        handler = _handler_for(authenticator)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/authenticate"

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(authenticator: TokenAuthenticator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            review = json.loads(self.rfile.read(length))
            status = authenticator.review(review.get("spec", {}).get("token", ""))
            body = json.dumps({"apiVersion": review.get("apiVersion"), "kind": "TokenReview", "status": status})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
