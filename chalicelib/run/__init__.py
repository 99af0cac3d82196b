"""Running a reconciliation: the imperative shell (runner), reconcile, apply, results."""
