"""The audit trail (issue 22, item 1): every change the service makes is recorded whatever the
stage's log level. The prod stage logs at WARNING; its change records (principal, before and after,
rule, actor, eventID) must still be written, by their own logger, with the event's context."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from chalicelib.adapters.observability import AUDIT_SERVICE, audit_logger, logger
from tests.functional.fakes import GROUP, FakeShell, user_arn


def records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"level"')]


def test_a_stage_that_logs_only_warnings_still_records_every_change(
    shell: FakeShell, lambdas: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    logger.setLevel("WARNING")  # what POWERTOOLS_LOG_LEVEL=WARNING (the prod stage) makes of it
    shell.iam_port.add_user("alice", groups=[GROUP])
    capsys.readouterr()
    result = lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")
    lines = records(capsys.readouterr().out)
    assert lines and all(line["service"] == AUDIT_SERVICE for line in lines)  # nothing else at INFO
    changed = [line for line in lines if line["message"] == "aws-auth entry changed"]
    assert sorted(line["cluster"] for line in changed) == sorted(result["clusters"])  # each once
    for line in changed:
        assert line["principal"] == user_arn("alice") and line["action"] == "add"
        assert "before" not in line and "rbac-bttrm-web-ro-group" in line["after"]  # None fields are left out
        assert line["source"] == f"identities.groups[{GROUP}]"
        assert line["correlation_id"] == result["eventId"] and line["actor"].endswith("console-admin")
    written = {line["message"] for line in lines}
    assert {"aws-auth written", "rolebinding changed"} <= written


def test_the_audit_logger_s_level_is_its_own() -> None:
    """Powertools gives a level passed to the constructor precedence over POWERTOOLS_LOG_LEVEL
    (below Lambda's advanced logging controls, which the template does not set): the audit logger
    is built that way, and a stage's level reaches only the service logger."""
    assert audit_logger.log_level == logging.INFO
    assert audit_logger.name != logger.name


def test_a_level_given_to_the_constructor_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    assert Logger(service="audit-precedence-check", level="INFO").log_level == logging.INFO
    assert Logger(service="audit-precedence-check-env").log_level == logging.WARNING
