"""explain: which owned identity a query names. IAM names and ARNs compare as IAM compares them (ASCII
case only); Kubernetes usernames exactly, as the API server compares them."""

from __future__ import annotations

from chalicelib.config import DEFAULT_CONFIG_PATH, load_config
from chalicelib.engine.desired import desired_state
from chalicelib.engine.explain import explain
from chalicelib.model.snapshot import IamSnapshot, IamUser

SEED = load_config(DEFAULT_CONFIG_PATH)
KATE = IamUser("kate", "arn:aws:iam::111122223333:user/kate", ("iam-bttrm-web-ro-group",))
STATE = desired_state(SEED, IamSnapshot(users=(KATE,)), {"bttrm-web-proj-1-ns": {}, "bttrm-web-proj-2-ns": {}})


def found(query: str) -> list[str]:
    return [e.owned.iam_arn for e in explain(query, STATE, lambda _: True)]


def test_iam_names_and_arns_fold_ascii_case_only() -> None:
    assert found("KATE") == found(KATE.arn.upper().replace("ARN:AWS:IAM", "arn:aws:iam")) == [KATE.arn]
    assert found("\u212aate") == []  # KELVIN SIGN: str.lower() would make it "kate"


def test_a_kubernetes_username_matches_exactly() -> None:
    [explained] = explain("eks-iam-sync:user:kate", STATE, lambda _: True)
    assert explained.owned.iam_arn == KATE.arn and {g.binding.namespace for g in explained.grants} == {
        "bttrm-web-proj-1-ns",
        "bttrm-web-proj-2-ns",
    }
    assert found("EKS-IAM-SYNC:USER:KATE") == []
