"""The configuration from SSM Parameter Store and S3 (moto in server mode), read as the Lambdas and
the CLI read it: validated the same way; a bad new version is refused, counted, and the last good
one keeps serving."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest

from chalicelib.adapters import config_source
from chalicelib.config import DEFAULT_CONFIG_PATH, ConfigError
from chalicelib.entry import service
from chalicelib.entry.cli import main
from chalicelib.errors import NotFound, SyncError
from tests.harness import endpoints

SEED = DEFAULT_CONFIG_PATH.read_text()
BAD = SEED.replace("rbac-bttrm-web-ro-group]", "system:masters]", 1)


@pytest.fixture
def aws(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(config_source, "CACHE_SECONDS", 0)  # every read reaches the emulator
    monkeypatch.setattr(config_source, "_s3_cache", {})
    monkeypatch.setattr(config_source, "_ssm_providers", {})
    service._config.clear()
    yield
    service._config.clear()


def parameter(text: str, secure: bool = False) -> str:
    name = f"/eks-iam-sync/{uuid.uuid4().hex[:8]}/config"
    kind = "SecureString" if secure else "String"
    boto3.client("ssm", region_name="us-east-1").put_parameter(Name=name, Value=text, Type=kind)
    return name


def s3_object(text: str | bytes, bucket: str | None = None) -> str:
    bucket = bucket or f"eks-iam-sync-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name="us-east-1")
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    body = text.encode() if isinstance(text, str) else text
    s3.put_object(Bucket=bucket, Key="config/eks-iam-sync.yaml", Body=body)
    return f"s3://{bucket}/config/eks-iam-sync.yaml"


@pytest.mark.parametrize("secure", [False, True])
def test_validate_reads_an_ssm_parameter(aws: None, secure: bool, capsys: pytest.CaptureFixture[str]) -> None:
    source = f"ssm:{parameter(SEED, secure)}"
    assert main(["validate", source]) == 0
    assert capsys.readouterr().out.startswith(f"{source}: valid: 1 cluster")


def test_validate_reads_an_s3_object_and_reports_problems_with_their_lines(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--config", s3_object(SEED)]) == 0
    source = s3_object(BAD)
    assert main(["validate", source]) == 1
    err = capsys.readouterr().err
    assert f"{source}:9: identities.groups[0].kubernetesGroups[0]" in err and "never granted" in err


def test_a_missing_parameter_is_one_line_and_exit_1(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "ssm:/eks-iam-sync/nowhere"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("eks-iam-sync: error: ") and "ParameterNotFound" in err and "Traceback" not in err


def test_the_lambdas_keep_the_last_good_configuration_when_a_bad_one_arrives(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = parameter(SEED)
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", f"ssm:{name}")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    good = service.current_config()
    assert good.identities.groups[0].iam_group == "iam-bttrm-web-ro-group"
    boto3.client("ssm", region_name="us-east-1").put_parameter(Name=name, Value=BAD, Overwrite=True)
    assert service.current_config() is good  # refused, counted, and the last good one serves
    out = capsys.readouterr().out
    assert '"ConfigInvalid"' in out and "invalid new configuration refused" in out

    service._config.clear()  # a new execution environment has no last good one: it raises
    with pytest.raises(ConfigError):
        service.current_config()


def test_an_s3_object_that_does_not_exist_is_not_found(aws: None) -> None:
    with pytest.raises(NotFound):
        config_source.read_source("s3://no-such-bucket-here/config.yaml")


NOT_UTF8 = SEED.encode().replace(b"# ", "# \u00e9 ".encode("latin-1"), 1)  # one byte of Latin-1
NESTED = SEED + "\nnote: " + "[" * 1500 + "]" * 1500 + "\n"  # past the interpreter's recursion limit
NOT_A_DATE = SEED + "\nnote: 2001-13-01\n"  # YAML resolves a timestamp; PyYAML raises ValueError


def metrics(out: str, name: str) -> int:
    return sum(1 for line in out.splitlines() if line.startswith("{") and f'"{name}"' in line)


@pytest.mark.parametrize(
    ("where", "bad", "why"),
    [
        ("s3", NOT_UTF8, "is not UTF-8"),
        ("s3", NESTED, "nested|RecursionError"),
        ("ssm", NESTED, "nested|RecursionError"),
        ("ssm", NOT_A_DATE, "ValueError: month must be in 1..12"),
    ],
)
def test_any_read_error_of_a_new_version_is_refused_and_the_last_good_one_serves(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    bad: str | bytes,
    why: str,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    if where == "s3":
        source = s3_object(SEED)
        bucket = source.removeprefix("s3://").split("/", 1)[0]
    else:
        name = parameter(SEED)
        source = f"ssm:{name}"
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", source)
    good = service.current_config()
    if where == "s3":
        s3_object(bad, bucket)
    else:
        text = bad if isinstance(bad, str) else bad.decode()
        boto3.client("ssm", region_name="us-east-1").put_parameter(Name=name, Value=text, Overwrite=True)
    assert service.current_config() is good
    out = capsys.readouterr().out
    assert metrics(out, "ConfigInvalid") == 1 and "invalid new configuration refused" in out and re.search(why, out)

    service._config.clear()  # none ever read: a clean error, still counted
    with pytest.raises(SyncError, match=why):
        service.current_config()
    assert metrics(capsys.readouterr().out, "ConfigInvalid") == 1

    assert main(["validate", source]) == 1
    err = capsys.readouterr().err
    assert re.search(why, err) and "Traceback" not in err, err
    assert err.startswith(("eks-iam-sync: error: ", f"{source}:")), err


def test_validate_prints_one_line_for_a_configuration_that_is_not_utf8(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    source = s3_object(NOT_UTF8)
    assert main(["validate", source]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"eks-iam-sync: error: {source} is not UTF-8 text (invalid continuation byte at byte 2): not a configuration"
    ]


@pytest.mark.parametrize("where", ["ssm", "s3"])
def test_a_configuration_store_that_never_answers_costs_the_service_s_timeouts_not_botocore_s(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """SSM silent, S3 trickling its object a byte at a time: with 0.5 s connect and 1 s read
    timeouts each read ends within seconds (botocore's defaults: 60 s per read, 3 attempts; a
    trickle: never), the read is refused and counted, and the last good version serves."""
    monkeypatch.setenv("EKS_IAM_SYNC_CONNECT_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("EKS_IAM_SYNC_READ_TIMEOUT_SECONDS", "1")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    source = f"ssm:{parameter(SEED)}" if where == "ssm" else s3_object(SEED)
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", source)
    good = service.current_config()
    monkeypatch.setattr(config_source, "_ssm_providers", {})  # a client made after the endpoint moved
    with endpoints.silent() if where == "ssm" else endpoints.trickling() as broken:
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{where.upper()}", broken.url)
        started = time.monotonic()
        assert service.current_config() is good
        elapsed = time.monotonic() - started
    assert broken.requests and elapsed < 5, elapsed
    out = capsys.readouterr().out
    assert metrics(out, "ConfigInvalid") == 1 and "invalid new configuration refused" in out
