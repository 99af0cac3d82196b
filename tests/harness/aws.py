"""moto in server mode, in this process, reached by boto3 through AWS_ENDPOINT_URL."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from moto.iam.models import iam_backends
from moto.server import ThreadedMotoServer
from moto.sts.models import sts_backends

from tests.harness.kube import free_port

TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """Yields the endpoint URL; sets AWS_ENDPOINT_URL and dummy credentials while it runs."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in [*TEST_ENVIRONMENT, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update(TEST_ENVIRONMENT, AWS_ENDPOINT_URL=endpoint)
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def secret_for(access_key_id: str) -> str | None:
    """The emulator's secret for an access key: an IAM user's key or an assumed-role session's."""
    for account in list(iam_backends.values()):
        for backend in list(account.values()):
            key = backend.access_keys.get(access_key_id)
            if key is not None and getattr(key, "secret_access_key", None):
                return str(key.secret_access_key)
    for sts_account in list(sts_backends.values()):
        for sts in list(sts_account.values()):
            for role in sts.assumed_roles:
                if role.access_key_id == access_key_id:
                    return str(role.secret_access_key)
    return None
