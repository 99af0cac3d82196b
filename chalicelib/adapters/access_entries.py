"""The AccessEntryStore port with boto3's EKS client (standard retry mode): one cluster's access
entries. EKS errors become the service's own: ResourceNotFound -> NotFound, ResourceInUse ->
WriteConflict, InvalidParameter / InvalidRequest / ResourceLimitExceeded -> Rejected, access denied
-> Forbidden, throttling and 5xx -> TransientError."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from chalicelib.adapters.bounds import bounded_client
from chalicelib.errors import Forbidden, NotFound, PermanentError, Rejected, SyncError, TransientError, WriteConflict
from chalicelib.model.ports import AssociatedPolicy, ObservedAccessEntry

T = TypeVar("T")
_REJECTED = {"InvalidParameterException", "InvalidRequestException", "ResourceLimitExceededException"}
_FORBIDDEN = {"AccessDeniedException", "UnrecognizedClientException", "NotAuthorizedException"}


def eks_client(session: boto3.Session, region: str) -> Any:
    return bounded_client(session, "eks", region)


class AccessEntries:
    def __init__(self, client: Any, cluster: str) -> None:
        self._eks = client
        self.cluster = cluster

    def list_principals(self) -> list[str]:
        def every_page() -> list[str]:
            pages = self._eks.get_paginator("list_access_entries").paginate(clusterName=self.cluster)
            return [arn for page in pages for arn in page.get("accessEntries", [])]

        return self._call("ListAccessEntries", every_page)

    def describe(self, principal_arn: str) -> ObservedAccessEntry | None:
        try:
            found = self._call(
                f"DescribeAccessEntry {principal_arn}",
                lambda: self._eks.describe_access_entry(clusterName=self.cluster, principalArn=principal_arn),
            )
        except NotFound:
            return None
        entry = found["accessEntry"]
        return ObservedAccessEntry(
            principal_arn=entry["principalArn"],
            username=entry.get("username", ""),
            kubernetes_groups=tuple(entry.get("kubernetesGroups", [])),
            type=entry.get("type", "STANDARD"),
            tags=dict(entry.get("tags") or {}),
            entry_arn=entry.get("accessEntryArn", ""),
        )

    def associated_policies(self, principal_arn: str) -> list[AssociatedPolicy]:
        """The access policies of the principal's entry (all pages): the report's read, and a plan's for an
        owned entry that has or should have policies."""

        def every_page() -> list[AssociatedPolicy]:
            found: list[AssociatedPolicy] = []
            token: str | None = None
            while True:
                page = self._eks.list_associated_access_policies(
                    clusterName=self.cluster, principalArn=principal_arn, **({"nextToken": token} if token else {})
                )
                for association in page.get("associatedAccessPolicies", []):
                    scope = association.get("accessScope") or {}
                    namespaces = tuple(scope.get("namespaces") or ())
                    found.append(AssociatedPolicy(association["policyArn"], scope.get("type", ""), namespaces))
                token = page.get("nextToken")
                if not token:
                    return found

        return self._call(f"ListAssociatedAccessPolicies {principal_arn}", every_page)

    def offered_policies(self) -> list[str]:
        def every_page() -> list[str]:
            pages = self._eks.get_paginator("list_access_policies").paginate()
            return [policy["name"] for page in pages for policy in page.get("accessPolicies", [])]

        return self._call("ListAccessPolicies", every_page)

    def associate(self, principal_arn: str, policy_arn: str, namespaces: tuple[str, ...]) -> None:
        """AssociateAccessPolicy: associating a policy again replaces its scope, in this one call."""
        scope: dict[str, Any] = (
            {"type": "namespace", "namespaces": list(namespaces)} if namespaces else {"type": "cluster"}
        )
        self._call(
            f"AssociateAccessPolicy {principal_arn} {policy_arn}",
            lambda: self._eks.associate_access_policy(
                clusterName=self.cluster, principalArn=principal_arn, policyArn=policy_arn, accessScope=scope
            ),
        )

    def disassociate(self, principal_arn: str, policy_arn: str) -> None:
        self._call(
            f"DisassociateAccessPolicy {principal_arn} {policy_arn}",
            lambda: self._eks.disassociate_access_policy(
                clusterName=self.cluster, principalArn=principal_arn, policyArn=policy_arn
            ),
        )

    def create(self, principal_arn: str, username: str, groups: tuple[str, ...], tags: Mapping[str, str]) -> None:
        self._call(
            f"CreateAccessEntry {principal_arn}",
            lambda: self._eks.create_access_entry(
                clusterName=self.cluster,
                principalArn=principal_arn,
                username=username,
                kubernetesGroups=list(groups),
                type="STANDARD",
                tags=dict(tags),
            ),
        )

    def update(self, principal_arn: str, username: str, groups: tuple[str, ...]) -> None:
        self._call(
            f"UpdateAccessEntry {principal_arn}",
            lambda: self._eks.update_access_entry(
                clusterName=self.cluster, principalArn=principal_arn, username=username, kubernetesGroups=list(groups)
            ),
        )

    def tag(self, entry_arn: str, tags: Mapping[str, str]) -> None:
        self._call(f"TagResource {entry_arn}", lambda: self._eks.tag_resource(resourceArn=entry_arn, tags=dict(tags)))

    def delete(self, principal_arn: str) -> None:
        self._call(
            f"DeleteAccessEntry {principal_arn}",
            lambda: self._eks.delete_access_entry(clusterName=self.cluster, principalArn=principal_arn),
        )

    def _call(self, what: str, request: Callable[[], T]) -> T:
        try:
            return request()
        except ClientError as err:
            raise translate(f"eks:{what} on {self.cluster}", err) from err
        except NoCredentialsError as err:
            raise Forbidden(f"eks:{what} on {self.cluster}: no AWS credentials found") from err
        except BotoCoreError as err:
            raise TransientError(f"eks:{what} on {self.cluster}: {err}") from err


def translate(what: str, err: ClientError) -> SyncError:
    code = err.response.get("Error", {}).get("Code", "")
    message = err.response.get("Error", {}).get("Message", "")
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    detail = f"{what}: {code}: {message}"
    if code == "ResourceNotFoundException":
        return NotFound(detail)
    if code == "ResourceInUseException":
        return WriteConflict(detail)
    if code in _REJECTED:
        return Rejected(detail)
    if code in _FORBIDDEN or status == 403:
        return Forbidden(detail)
    if status >= 500 or status == 429 or "Throttl" in code:
        return TransientError(detail)
    return PermanentError(detail)
