"""The instance: this install's name, validated where the environment is read, and a dimension of every
metric the service emits (two installs in one account and region never trip each other's alarms)."""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.observability import LogObserver
from chalicelib.config import settings


@pytest.mark.parametrize("name", ["dev", "prod", "prod-eu-1", "a", "x" * 20, "0team"])
def test_an_instance_is_a_short_dns_label(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(settings.INSTANCE_VARIABLE, name)
    assert settings.instance() == name


@pytest.mark.parametrize("name", ["Prod", "prod_eu", "-prod", "prod-", "x" * 21, "prod eu", "prod.eu", "préprod"])
def test_anything_else_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(settings.INSTANCE_VARIABLE, name)
    with pytest.raises(ValueError, match=f"EKS_IAM_SYNC_INSTANCE must be .* not {name!r}"):
        settings.instance()


def test_unset_it_is_the_default_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.INSTANCE_VARIABLE, raising=False)
    assert settings.instance() == settings.DEFAULT_INSTANCE == "default"
    monkeypatch.setenv(settings.INSTANCE_VARIABLE, "")
    assert settings.instance() == "default"


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_every_metric_carries_the_instance_beside_service_and_cluster(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv(settings.INSTANCE_VARIABLE, "prod-eu")
    LogObserver("bttrm-eks-dev-0").count("Refusals", reason="denied-namespace")
    LogObserver("bttrm-eks-dev-0").milliseconds("ReconcileDuration", 12)
    LogObserver("bttrm-eks-dev-0").percent("AwsAuthSize", 50, limit="data")
    LogObserver("").count("FullRunsSucceeded")
    refusals, duration, size, heartbeat = emitted(capsys)
    for record, dimensions in (
        (refusals, {"service", "instance", "cluster", "reason"}),
        (duration, {"service", "instance", "cluster"}),
        (size, {"service", "instance", "cluster", "limit"}),
        (heartbeat, {"service", "instance"}),  # what the heartbeat alarm names, exactly
    ):
        [directive] = record["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
        assert set(directive["Dimensions"][0]) == dimensions
        assert record["instance"] == "prod-eu" and record["service"] == "eks-iam-sync"
