"""eks-iam-sync: keeps Amazon EKS access (aws-auth or EKS access entries, and namespace
RoleBindings) in step with AWS IAM."""
