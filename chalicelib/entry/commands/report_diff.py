"""``report diff OLD.json NEW.json``: access added and removed per principal and namespace, and new
grants made outside eks-iam-sync, between two reports written with ``--format json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chalicelib.entry.accessreport import diff as report_diff


class DiffError(Exception):
    """A report that cannot be read or is not an access report."""


@dataclass(frozen=True)
class Diffed:
    old: str
    new: str
    found: report_diff.ReportDiff

    @property
    def changed(self) -> bool:
        return not self.found.empty


def diff_files(old: str, new: str) -> Diffed:
    documents = []
    for name in (old, new):
        try:
            documents.append(json.loads(Path(name).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DiffError(f"cannot read {name}: {err}") from err
    try:
        found = report_diff.diff(*documents)
    except report_diff.NotAReport as err:
        raise DiffError(str(err).replace("OLD", old, 1).replace("NEW", new, 1)) from err
    return Diffed(old, new, found)
