"""The access report (``eks-iam-sync report``): who can reach which namespace, and why, as one
self-contained HTML page or JSON. ``model`` builds it from what the service layer read (pure),
``render`` turns it into HTML (Jinja2) or JSON, ``readonly`` wraps a cluster's ports so that the
reads are made once and no write can happen."""
