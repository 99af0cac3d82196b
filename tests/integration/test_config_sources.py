"""The configuration from SSM Parameter Store and S3 (moto in server mode), read as the Lambdas and
the CLI read it: validated the same way; a bad new version is refused, counted, and the last good
one keeps serving."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from chalicelib import service
from chalicelib.adapters import config_source
from chalicelib.cli import main
from chalicelib.config import DEFAULT_CONFIG_PATH, ConfigError
from chalicelib.errors import NotFound

SEED = DEFAULT_CONFIG_PATH.read_text()
BAD = SEED.replace("rbac-bttrm-web-ro-group]", "system:masters]", 1)


@pytest.fixture
def aws(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(config_source, "CACHE_SECONDS", 0)  # every read reaches the emulator
    monkeypatch.setattr(config_source, "_s3_cache", {})
    service._config.clear()
    yield
    service._config.clear()


def parameter(text: str, secure: bool = False) -> str:
    name = f"/eks-iam-sync/{uuid.uuid4().hex[:8]}/config"
    kind = "SecureString" if secure else "String"
    boto3.client("ssm", region_name="us-east-1").put_parameter(Name=name, Value=text, Type=kind)
    return name


def s3_object(text: str) -> str:
    bucket = f"eks-iam-sync-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="config/eks-iam-sync.yaml", Body=text.encode())
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
