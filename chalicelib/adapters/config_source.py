"""Where the configuration comes from: a file, an SSM parameter (``ssm:/path``, String or
SecureString, through Powertools Parameters with a short cache) or an S3 object (``s3://bucket/key``).
Returns the document's text; parsing and validation stay in chalicelib.config. Both remote readers
use the service's bounded clients (adapters/bounds.py): the configuration is read within the
invocation's deadline like everything else, not with botocore's defaults (60 s reads, 3 attempts)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import boto3
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from chalicelib.adapters.bounds import bounded_client
from chalicelib.config import MAX_CONFIG_BYTES
from chalicelib.config.settings import Timeouts, timeouts
from chalicelib.errors import Forbidden, NotFound, PermanentError, SyncError, TransientError

CACHE_SECONDS = 60  # a changed configuration is served within a minute; each run costs no extra read
_s3_cache: dict[str, tuple[float, str]] = {}
_ssm_providers: dict[Timeouts, parameters.SSMProvider] = {}
_lock = threading.Lock()


def read_source(source: str) -> str:
    if source.startswith("ssm:"):
        return _ssm(source.removeprefix("ssm:"))
    if source.startswith("s3://"):
        return _s3(source)
    return Path(source).read_text(encoding="utf-8")


def _ssm(name: str) -> str:
    try:
        value = _ssm_provider().get(name, decrypt=True, max_age=CACHE_SECONDS)
    except parameters.exceptions.GetParameterError as err:
        raise _translated(f"ssm:GetParameter {name}", err.__cause__ or err) from err
    if not isinstance(value, str):
        raise PermanentError(f"ssm:{name} did not hold text")
    if len(value.encode()) > MAX_CONFIG_BYTES:
        raise PermanentError(f"ssm:{name} is over {MAX_CONFIG_BYTES // 1024} KiB: not a configuration")
    return value


def _s3(source: str) -> str:
    bucket, _, key = source.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise PermanentError(f"{source}: give s3://BUCKET/KEY")
    with _lock:
        cached = _s3_cache.get(source)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
    try:
        found = bounded_client(boto3.Session(), "s3").get_object(Bucket=bucket, Key=key)
        body = found["Body"].read(MAX_CONFIG_BYTES + 1)
    except (ClientError, BotoCoreError) as err:
        raise _translated(f"s3:GetObject {source}", err) from err
    if len(body) > MAX_CONFIG_BYTES:
        raise PermanentError(f"{source} is over {MAX_CONFIG_BYTES // 1024} KiB: not a configuration")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as err:
        raise PermanentError(
            f"{source} is not UTF-8 text ({err.reason} at byte {err.start}): not a configuration"
        ) from err
    with _lock:
        _s3_cache[source] = (time.monotonic(), text)
    return text


def _ssm_provider() -> parameters.SSMProvider:
    """One provider (and its value cache) per set of timeouts: in practice one per execution environment."""
    bounds = timeouts()
    with _lock:
        if bounds not in _ssm_providers:
            _ssm_providers[bounds] = parameters.SSMProvider(boto3_client=bounded_client(boto3.Session(), "ssm"))
        return _ssm_providers[bounds]


def _translated(what: str, err: BaseException) -> SyncError:
    if isinstance(err, NoCredentialsError):
        return Forbidden(f"{what}: no AWS credentials found")
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in ("ParameterNotFound", "NoSuchKey", "NoSuchBucket") or status == 404:
            return NotFound(f"{what}: {code or 'not found'}")
        if code in ("AccessDenied", "AccessDeniedException") or status == 403:
            return Forbidden(f"{what}: {code}")
        if status >= 500 or status == 429 or "Throttl" in code:
            return TransientError(f"{what}: {code}")
        return PermanentError(f"{what}: {code}: {err}")
    return TransientError(f"{what}: {err}")
