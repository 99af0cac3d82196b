"""The access report (``eks-iam-sync report``): who can reach which namespace, and why, as one
self-contained HTML page, JSON or CSV, and the difference between two reports. ``model`` builds it
(``data`` its types, ``grants`` who grants what, ``rbac`` what rules allow and their risk,
``findings``, ``provenance``) from what the service layer read (pure); ``render``, ``jsonform`` and
``csvform`` write it; ``diff`` compares two; ``readonly`` wraps a cluster's ports so that the reads are
made once and no write can happen."""
