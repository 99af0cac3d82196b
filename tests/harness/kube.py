"""A real control plane for tests: etcd (Debian's etcd-server) + kube-apiserver 1.20 built from
Debian's source package, RBAC on, an admin token, a token webhook for EKS tokens and, optionally, an
authorization webhook for EKS access policies.

Binaries are looked up in $KUBEBUILDER_ASSETS, then on PATH, then in ~/.cache/eks-iam-sync/bin; when
missing, ``build-kube-apiserver.sh`` obtains them (once, cached).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client

from tests.harness.authorizer import AccessPolicyAuthorizer

HERE = Path(__file__).parent
CACHE_BIN = Path(os.environ.get("EKS_IAM_SYNC_CACHE", Path.home() / ".cache" / "eks-iam-sync")) / "bin"
ADMIN_TOKEN = "eks-iam-sync-test-admin-token"


def find_binary(name: str) -> Path | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    candidates = [Path(assets) / name] if assets else []
    on_path = shutil.which(name)
    candidates += [Path(on_path)] if on_path else []
    candidates.append(CACHE_BIN / name)
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def ensure_binaries() -> tuple[Path, Path]:
    if find_binary("etcd") is None or find_binary("kube-apiserver") is None:
        subprocess.run(["bash", str(HERE / "build-kube-apiserver.sh")], check=True)
    etcd, apiserver = find_binary("etcd"), find_binary("kube-apiserver")
    if etcd is None or apiserver is None:
        raise RuntimeError("etcd or kube-apiserver still missing after build-kube-apiserver.sh")
    return etcd, apiserver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ControlPlane:
    endpoint: str
    ca_file: Path
    workdir: Path
    authorizer: AccessPolicyAuthorizer | None = None  # the access-policy webhook's, when it runs

    @property
    def ca_data(self) -> str:
        return base64.b64encode(self.ca_file.read_bytes()).decode()

    def client_for(self, token: str) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = self.endpoint
        configuration.ssl_ca_cert = str(self.ca_file)
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    def admin(self) -> client.ApiClient:
        return self.client_for(ADMIN_TOKEN)

    def admin_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig file reaching this control plane as its admin (the CLI's --kubeconfig)."""
        cluster = {"server": self.endpoint, "certificate-authority": str(self.ca_file)}
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": cluster}],
            "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
            "contexts": [{"name": "admin", "context": {"cluster": "test", "user": "admin"}}],
            "current-context": "admin",
        }
        path.write_text(json.dumps(document))
        return path


class _Process:
    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT)

    def alive_or_raise(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def _service_account_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _webhook_kubeconfig(path: Path, url: str, name: str = "eks-token-webhook") -> None:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: {name}\n  cluster:\n    server: {url}\n"
        "users:\n- name: apiserver\n  user: {}\n"
        f"contexts:\n- name: webhook\n  context:\n    cluster: {name}\n    user: apiserver\n"
        "current-context: webhook\n"
    )


def _authorization_flags(workdir: Path, url: str | None) -> list[str]:
    """RBAC alone, or (with the access-policy webhook's URL) Webhook then RBAC, as EKS chains them."""
    if url is None:
        return ["--authorization-mode=RBAC"]
    config = workdir / "authorization-webhook.kubeconfig"
    _webhook_kubeconfig(config, url, "eks-access-policy-webhook")
    return [
        "--authorization-mode=Webhook,RBAC",
        f"--authorization-webhook-config-file={config}",
        "--authorization-webhook-version=v1",
        # A changed association must be seen by the next request, as on EKS ("policy changes apply
        # from the next request"): 1 ms, as for the token webhook (0s does not turn a cache off in
        # 1.20). A probe that asks every 100 ms then sees every moment of a scope change.
        "--authorization-webhook-cache-authorized-ttl=1ms",
        "--authorization-webhook-cache-unauthorized-ttl=1ms",
    ]


def _wait_ready(plane: ControlPlane, processes: list[_Process], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    api = client.VersionApi(plane.admin())
    last: Exception | None = None
    while time.monotonic() < deadline:
        for process in processes:
            process.alive_or_raise()
        try:
            api.get_code(_request_timeout=2)
            # RBAC's bootstrap roles and the system namespaces appear shortly after /version answers.
            client.RbacAuthorizationV1Api(plane.admin()).read_cluster_role("cluster-admin", _request_timeout=2)
            core = client.CoreV1Api(plane.admin())
            for namespace in ("default", "kube-system"):
                core.read_namespace(namespace, _request_timeout=2)
            return
        except Exception as err:  # the server is still starting
            last = err
            time.sleep(0.25)
    raise RuntimeError(f"kube-apiserver not ready after {timeout} s: {last}")


def start_control_plane(stack: ExitStack, webhook_url: str, authorization_url: str | None = None) -> ControlPlane:
    """Starts etcd and kube-apiserver on free ports; both are stopped when ``stack`` closes. With
    ``authorization_url`` (tests/harness/authorizer.py's webhook) the apiserver asks it before RBAC."""
    etcd_bin, apiserver_bin = ensure_binaries()
    workdir = Path(tempfile.mkdtemp(prefix="eks-iam-sync-kube-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)

    client_port, peer_port = free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{client_port}"
    etcd = _Process(
        "etcd",
        [
            str(etcd_bin),
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",
        ],
        workdir / "etcd.log",
    )
    stack.callback(etcd.stop)

    sa_key = workdir / "sa.key"
    _service_account_key(sa_key)
    tokens = workdir / "tokens.csv"
    tokens.write_text(f'{ADMIN_TOKEN},test-admin,test-admin-uid,"system:masters"\n')
    webhook_config = workdir / "webhook.kubeconfig"
    _webhook_kubeconfig(webhook_config, webhook_url)
    cert_dir = workdir / "certs"
    port = free_port()
    apiserver = _Process(
        "kube-apiserver",
        [
            str(apiserver_bin),
            f"--etcd-servers={etcd_url}",
            f"--secure-port={port}",
            "--bind-address=127.0.0.1",
            f"--cert-dir={cert_dir}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            *_authorization_flags(workdir, authorization_url),
            f"--token-auth-file={tokens}",
            f"--authentication-token-webhook-config-file={webhook_config}",
            "--authentication-token-webhook-version=v1",
            # A revoked mapping must be seen at once. 0s does not turn this cache off in 1.20; 1ms
            # does. The apiserver still keeps each successful token for 10 s (fixed): tests
            # present a new token after a change, as a new kubectl call would.
            "--authentication-token-webhook-cache-ttl=1ms",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
            "--anonymous-auth=false",
        ],
        workdir / "kube-apiserver.log",
    )
    stack.callback(apiserver.stop)
    deadline = time.monotonic() + 30
    ca_file = cert_dir / "apiserver.crt"
    while not ca_file.exists():
        apiserver.alive_or_raise()
        etcd.alive_or_raise()
        if time.monotonic() > deadline:
            raise RuntimeError("kube-apiserver wrote no serving certificate")
        time.sleep(0.1)
    plane = ControlPlane(endpoint=f"https://127.0.0.1:{port}", ca_file=ca_file, workdir=workdir)
    _wait_ready(plane, [etcd, apiserver])
    return plane
