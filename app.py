"""eks-iam-sync's Lambda functions, deployed with Chalice. Wiring only: the logic lives in chalicelib/."""

from chalice.app import Chalice

app = Chalice(app_name="eks-iam-sync")
