"""Real-shaped EventBridge events carrying IAM CloudTrail records (moto emits none)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def iam_event(
    event_name: str,
    request_parameters: dict[str, Any],
    actor: str = "arn:aws:iam::123456789012:user/console-admin",
    event_id: str | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEADMIN",
            "arn": actor,
            "accountId": "123456789012",
            "userName": actor.rsplit("/", 1)[-1],
        },
        "eventTime": now,
        "eventSource": "iam.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "AWS Internal",
        "requestParameters": request_parameters,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    }
    if error_code:
        detail["errorCode"] = error_code
        detail["errorMessage"] = "denied"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam",
        "account": "123456789012",
        "time": now,
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def scheduled_event() -> dict[str, Any]:
    """What EventBridge sends a rate() schedule target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/eks-iam-sync-dev-reconcile_all"],
        "detail": {},
    }


def identity_store_event(
    event_name: str,
    request_parameters: dict[str, Any] | None,
    event_source: str = "identitystore.amazonaws.com",
    region: str = "us-east-1",
    actor: str = "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/admin@example.com",
) -> dict[str, Any]:
    """An Identity Store change as EventBridge delivers it (IAM Identity Center's region and account):
    the API or console (``identitystore.amazonaws.com``), or SCIM provisioning
    (``identitystore-scim.amazonaws.com``, whose parameters CloudTrail hides)."""
    event = iam_event(event_name, request_parameters or {}, actor=actor)
    scim = event_source == "identitystore-scim.amazonaws.com"
    event["source"] = "aws.identitystore-scim" if scim else "aws.identitystore"
    event["region"] = region
    event["account"] = "111111111111"
    detail = event["detail"]
    detail.update(eventSource=event_source, awsRegion=region, recipientAccountId="111111111111")
    if scim:
        detail["userIdentity"] = {"type": "WebIdentityUser", "accountId": "111111111111", "accessKeyId": "xxxx"}
        detail["requestParameters"] = {"httpBody": {"schemas": ["HIDDEN_DUE_TO_SECURITY_REASONS"]}, "tenantId": "t"}
    return event
