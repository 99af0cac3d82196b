"""The real test environment: etcd + kube-apiserver, moto in server mode, and an EKS token webhook."""
