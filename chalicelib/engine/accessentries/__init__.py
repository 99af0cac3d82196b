"""The EKS access-entries identity backend: EKS's rules, the pure plan, and the backend that reads
and writes entries through the AccessEntryStore port."""
