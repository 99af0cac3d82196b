"""Bounds on YAML alias expansion, checked on the composed node graph before anything walks it. Pure.

PyYAML's composer shares an aliased node instead of copying it, so a 1 KB "billion laughs" document
is a small graph with an astronomical number of paths: every later walk or construction expands it
again. ``expansion`` counts the nodes a full expansion would visit in linear time (memoised by node),
and ``check`` refuses a document whose expansion exceeds a small multiple of its own size, or that
refers to itself.
"""

from __future__ import annotations

import yaml

MULTIPLE = 10
SLACK = 1000  # small documents may reuse an anchor freely


class AliasBomb(ValueError):
    """The document expands far beyond its size through aliases, or contains itself."""


def check(root: yaml.Node | None) -> None:
    if root is None:
        return
    distinct = _distinct(root)
    expanded = expansion(root)
    if expanded > MULTIPLE * distinct + SLACK:
        raise AliasBomb(
            f"aliases expand {distinct} YAML nodes to {expanded}: refused as an alias bomb "
            f"(the limit is {MULTIPLE}x the document plus {SLACK})"
        )


def expansion(root: yaml.Node) -> int:
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            visiting.discard(key)
            continue
        if key in visiting:
            raise AliasBomb("a YAML alias refers to a node that contains it (a recursive document)")
        visiting.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in visiting:
                raise AliasBomb("a YAML alias refers to a node that contains it (a recursive document)")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _distinct(root: yaml.Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(_children(node))
    return len(seen)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
