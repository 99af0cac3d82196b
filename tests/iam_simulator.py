"""IAM's evaluation of identity policies, for the operators the service's policies use: what
``iam:SimulatePrincipalPolicy`` answers, without an account (moto does not evaluate conditions).

The rules, as IAM's policy evaluation logic states them:
- an explicit Deny in any statement wins; otherwise an Allow is needed; otherwise the implicit deny;
- a statement applies when its Action and Resource match (``*`` and ``?`` wildcards, actions
  case-insensitively) and every condition operator in it holds (AND across operators and keys, OR
  across a key's values);
- a key absent from the request context: ``StringEquals``/``StringLike``/``ArnLike`` do not match,
  the negated operators (``StringNotEquals``, ``StringNotLike``) do; ``Null: true`` matches;
  ``ForAnyValue:`` does not match, ``ForAllValues:`` does; any ``...IfExists`` operator does;
- ``aws:ResourceTag/K`` is the tag the resource has before the request, ``aws:RequestTag/K`` a tag the
  request sets.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Context = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Context = field(default_factory=dict)


def decide(policy: Mapping[str, Any], request: Request) -> str:
    """``allowed``, ``explicitDeny`` or ``implicitDeny``."""
    applying = [s for s in policy.get("Statement", []) if _applies(s, request)]
    if any(s["Effect"] == "Deny" for s in applying):
        return "explicitDeny"
    return "allowed" if any(s["Effect"] == "Allow" for s in applying) else "implicitDeny"


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _like(pattern: str, value: str, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    if not any(_like(a, request.action, case=False) for a in _listed(statement["Action"])):
        return False
    if not any(_like(r, request.resource) for r in _listed(statement["Resource"])):
        return False
    return all(
        _holds(operator, key, _listed(values), request.context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
    )


def _holds(operator: str, key: str, wanted: list[str], context: Context) -> bool:
    present = {k.lower(): v for k, v in context.items()}.get(key.lower())
    qualifier, _, base = operator.rpartition(":")
    if base.endswith("IfExists") and base != "Null":
        base = base.removesuffix("IfExists")
        if present is None:
            return True
    if base not in ("StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "ArnLike", "Null"):
        raise ValueError(f"operator {operator} is not simulated")
    if base == "Null":
        return (present is None) == (wanted[0] == "true")
    if present is None:
        return base.startswith("StringNot") or qualifier == "ForAllValues"
    values = _listed(present)
    like = "Like" in base

    def match(value: str, pattern: str) -> bool:
        return _like(pattern, value) if like else value == pattern

    if qualifier == "ForAnyValue":
        return any(match(v, w) for v in values for w in wanted)
    if qualifier == "ForAllValues":
        return all(any(match(v, w) for w in wanted) for v in values)
    hit = any(match(values[0], w) for w in wanted)
    return not hit if base.startswith("StringNot") else hit
