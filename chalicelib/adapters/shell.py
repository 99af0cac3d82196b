"""The one factory of adapters: what the service layer asks for the ports of a run.

``AwsShell`` reaches IAM and STS with the standard credential chain and each cluster as the caller
itself (EKS token + DescribeCluster, unless the configuration gives the endpoint); with a kubeconfig
(the CLI's ``--kubeconfig/--context``) the cluster is reached through it instead. A cluster with
``roleArn`` is reached as that role (DescribeCluster, access entries, the EKS token), and IAM is read
as ``iam.roleArn`` when configured (``adapters/assumed.py``).
"""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from kubernetes import client
from kubernetes import config as kubeconfig
from kubernetes.config.config_exception import ConfigException

from chalicelib.adapters.access_entries import AccessEntries, eks_client
from chalicelib.adapters.assumed import assumed_session
from chalicelib.adapters.bounds import bounded_client
from chalicelib.adapters.configmaps import ConfigMaps
from chalicelib.adapters.eks import BoundedApiClient, api_client, cluster_access, described_cluster
from chalicelib.adapters.eks_token import TokenSource
from chalicelib.adapters.iam import IamReader, iam_client
from chalicelib.adapters.iam_activity import IamActivity
from chalicelib.adapters.identity_store import IdentityStore, identity_store_client
from chalicelib.adapters.rbac_reader import RbacReader
from chalicelib.adapters.rolebindings import ClusterRoles, RoleBindings
from chalicelib.config import Cluster, IdentityCenter, RoleToAssume
from chalicelib.config.settings import timeouts
from chalicelib.errors import Forbidden, PermanentError, TransientError
from chalicelib.model import arns
from chalicelib.model.ports import ClusterPorts

TOKENS = TokenSource()
_own_arns: dict[str, str] = {}


class AwsShell:
    def __init__(self, session: boto3.Session | None = None) -> None:
        self.session = session or boto3.Session()

    def iam(self, role: RoleToAssume | None) -> IamReader:
        if role is None:
            return IamReader(iam_client(self.session))
        return IamReader(iam_client(assumed_session(self.session, role, "reading IAM (iam.roleArn)").session))

    def iam_activity(self, role: RoleToAssume | None) -> IamActivity:
        """IAM's last-used records (the access report's evidence of use), read as ``iam`` reads IAM."""
        if role is None:
            return IamActivity(iam_client(self.session))
        return IamActivity(iam_client(assumed_session(self.session, role, "reading IAM (iam.roleArn)").session))

    def identity_store(self, settings: IdentityCenter) -> IdentityStore:
        """The Identity Store in the Identity Center instance's region, as ``identityCenter.roleArn`` if given."""
        role, session = settings.assumed_role, self.session
        if role is not None:
            purpose = "reading the Identity Store (identityCenter.roleArn)"
            session = assumed_session(self.session, role, purpose, settings.region).session
        return IdentityStore(identity_store_client(session, settings.region), settings.identity_store_id)

    def own_arn(self) -> str:
        credentials = self.session.get_credentials()
        if credentials is None:
            raise Forbidden("no AWS credentials found (set AWS_PROFILE, or run `aws configure` / `aws sso login`)")
        key = credentials.access_key
        if key not in _own_arns:
            try:
                caller = bounded_client(self.session, "sts").get_caller_identity()
            except (ClientError, NoCredentialsError) as err:
                raise Forbidden(f"sts:GetCallerIdentity: {err}") from err
            except BotoCoreError as err:
                raise TransientError(f"sts:GetCallerIdentity: {err}") from err
            _own_arns[key] = arns.canonical(caller["Arn"])
        return _own_arns[key]

    def cluster(self, cluster: Cluster) -> ClusterPorts:
        session, tokens, caller = self._reach(cluster)
        access = cluster_access(cluster, session)
        entries = AccessEntries(eks_client(session, cluster.region), cluster.name)
        return ports_for(cluster.name, api_client(access, tokens), access.authentication_mode, entries, caller)

    def _reach(self, cluster: Cluster) -> tuple[boto3.Session, TokenSource, str | None]:
        """The session, token source and identity (None: the shell's own) that ``cluster`` is reached as."""
        role = cluster.assumed_role
        if role is None:
            return self.session, TOKENS, None
        assumed = assumed_session(self.session, role, f"cluster {cluster.name}", cluster.region)
        return assumed.session, assumed.tokens, assumed.caller_arn


class KubeconfigShell(AwsShell):
    """IAM through AWS credentials, the one cluster through a kubeconfig context."""

    def __init__(self, kubeconfig_file: str | None, context: str | None, session: boto3.Session | None = None) -> None:
        super().__init__(session)
        self.kubeconfig_file, self.context = kubeconfig_file, context

    def cluster(self, cluster: Cluster) -> ClusterPorts:
        try:
            configuration = client.Configuration()
            kubeconfig.load_kube_config(
                config_file=self.kubeconfig_file, context=self.context, client_configuration=configuration
            )
            api = BoundedApiClient(configuration, timeouts())
        except (ConfigException, OSError) as err:
            where = self.kubeconfig_file or "~/.kube/config"
            raise PermanentError(f"cannot use kubeconfig {where} (context {self.context or 'current'}): {err}") from err
        session, _, caller = self._reach(cluster)
        mode = None if cluster.backend == "configMap" else described_cluster(cluster, session).authentication_mode
        entries = AccessEntries(eks_client(session, cluster.region), cluster.name)
        return ports_for(cluster.name, api, mode, entries, caller)


def ports_for(
    name: str,
    api: client.ApiClient,
    authentication_mode: str | None,
    entries: AccessEntries | None = None,
    caller_arn: str | None = None,
) -> ClusterPorts:
    return ClusterPorts(
        name,
        ConfigMaps(api),
        RoleBindings(api),
        ClusterRoles(api),
        authentication_mode,
        entries,
        caller_arn,
        rbac=RbacReader(api),
        access_policies=entries,
    )
