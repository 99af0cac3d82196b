"""eks-iam-sync: keeps Amazon EKS access (aws-auth and namespace RoleBindings) in step with AWS IAM."""
