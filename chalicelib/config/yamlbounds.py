"""The one YAML composer of the service (aws-auth and configuration), bounded, on libyaml when present. Pure.

Events come from libyaml (``yaml.CParser``) where PyYAML was built with it, else from PyYAML's pure
scanner and parser; either way the node graph is built by PyYAML's own Python composer, subclassed
here, so both paths share one composer and differ only in the event source. The composer bounds
what a hostile document can cost before anything walks the graph:

- nesting depth: a node nested deeper than ``MAX_DEPTH`` is refused as it is met, so neither this
  composer nor any later walk can recurse out of the stack (a 2 000-deep document raised
  RecursionError through every caller);
- alias expansion: PyYAML shares an aliased node instead of copying it, so a 1 KB "billion laughs"
  is a small graph with an astronomical number of paths, expanded again by every later walk. The
  composer adds up, per node, how many nodes a full expansion visits, and a document whose expansion
  exceeds ``MULTIPLE`` times its distinct nodes plus ``SLACK`` (or that contains itself) is refused.

The pure reader is the reference. libyaml and PyYAML's scanner disagree on error messages and
marks, on surrogate escapes, and on a few texts one accepts and the other refuses (listed above
``_pure_only``, found by differential tests). A text that may hold one of those goes straight to the
pure path, and a text libyaml refuses is composed again by the pure path, whose verdict and message
stand. So a document that parses cleanly (the usual case, and the costly one) is composed once, by
libyaml; one that fails is composed by both. A leading byte-order mark is dropped before either sees
the text: both skip it, but count it differently in marks.

A text that has nothing to bound skips this composer: no anchor, alias, tag, flow collection,
complex or merge key, directive or document marker anywhere (not even quoted), and no line led by
``FLAT_LEAD`` or more spaces and dashes. Such a text expands to itself, and its nesting is bounded
by its lines' leads (a block collection starts within its line's lead of spaces and dashes, and each
column holds at most two levels: a mapping and the sequence that is its value), so at most
``2 * FLAT_LEAD + 1`` deep, under ``MAX_DEPTH``. libyaml composes it whole (``yaml.CSafeLoader``'s
own composer, in C): the same nodes, but for a plain scalar's style ('' rather than None). Such is
an aws-auth the service rendered (every value a quoted string, four levels), the common large case:
composed this way it costs ~0.65x the composer above. Checking costs a few milliseconds per MiB.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

MAX_DEPTH = 100  # real aws-auth documents nest 4 deep, configurations under 10
MULTIPLE = 10
SLACK = 1000  # small documents may reuse an anchor freely
_CAP = 1 << 62  # expansion sizes stop growing here: far past any limit, and ints stay small
_MERGE = "tag:yaml.org,2002:merge"
# What libyaml reads differently from PyYAML's scanner without failing, found by differential tests
# (tests/unit/awsauth/test_yaml_paths.py): a tab after a value, a colon or in a flow collection
# (PyYAML refuses it); a byte-order mark at the start of a later line (libyaml skips it, PyYAML reads
# text); `?` inside a plain scalar in a flow collection, `[a?b]`, and a tag ended by a flow
# indicator, `[!x,y]` (libyaml 0.2.5+ reads both, PyYAML refuses them); a comment right after a block
# scalar's indicator, `|#` (PyYAML refuses it). Texts that may hold one go to the pure path: tabs,
# inner byte-order marks, and `?` or `!` beside a flow collection are rare in aws-auth and
# configurations, and looking costs well under a millisecond on a 1 MiB text.
_BLOCK_HEADER_COMMENT = re.compile(r"[|>][-+0-9]*#")
# A text with any of these has something to bound, or is rare enough to go the bounded way (line
# breaks other than \n, which the lead check below would not see as such).
_NOT_FLAT = ("&", "*", "!", "[", "{", "?", "<<", "%", "\r", "\x85", "\u2028", "\u2029")
FLAT_LEAD = 32
_DEEP_LEAD = re.compile(rf"^[ -]{{{FLAT_LEAD}}}", re.MULTILINE)


def _flat(text: str) -> bool:
    """Whether ``text`` has nothing to bound (module docstring): libyaml may compose it alone."""
    if any(sign in text for sign in _NOT_FLAT):
        return False
    if text.startswith(("---", "...")) or "\n---" in text or "\n..." in text:
        return False
    return _DEEP_LEAD.search(text) is None


def _pure_only(text: str) -> bool:
    if "\t" in text or "\ufeff" in text:
        return True
    if ("?" in text or "!" in text) and ("[" in text or "{" in text):
        return True
    return ("|" in text or ">" in text) and _BLOCK_HEADER_COMMENT.search(text) is not None


class Refused(ValueError):
    """A document this composer will not build, for a reason a user can act on."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class AliasBomb(Refused):
    """The document expands far beyond its size through aliases, or contains itself."""


class TooDeep(Refused):
    """The document nests collections deeper than MAX_DEPTH."""


@dataclass(frozen=True)
class Document:
    root: Node | None
    more: bool  # something follows the first document: another one, or text that does not parse
    merge_keys: tuple[int, ...]  # 1-based lines of `<<` merge keys, which YAML 1.1 readers apply
    collection_keys: tuple[int, ...]  # 1-based lines of mapping keys that are collections (JSON has none)


class _Bounded(Composer, Resolver):
    """PyYAML's composer (same nodes, same errors) with the bounds applied node by node.

    Written out rather than extending Composer's methods, as this loop is most of the cost of
    reading a large aws-auth on the libyaml path."""

    check_event: Callable[..., bool]  # these three from the event source (PyYAML's Parser or CParser)
    get_event: Callable[[], Any]
    peek_event: Callable[[], Any]

    def __init__(self) -> None:
        Composer.__init__(self)
        Resolver.__init__(self)
        self._reset_bounds()

    def _reset_bounds(self) -> None:
        self._depth = 0
        self._totals = [0]  # the expansion size of each collection being composed, innermost last
        self._anchored: dict[str, int] = {}  # anchor -> expansion size, once its node is complete
        self._distinct = 0
        self._merge_keys: list[int] = []
        self._collection_keys: list[int] = []

    def compose_document(self) -> Node | None:
        self._reset_bounds()
        node = super().compose_document()
        expanded, distinct = self._totals[0], self._distinct
        if node is not None and expanded > MULTIPLE * distinct + SLACK:
            shown = expanded if expanded < _CAP else f"over {_CAP}"
            raise AliasBomb(
                f"aliases expand {distinct} YAML nodes to {shown}: "
                f"refused as an alias bomb (the limit is {MULTIPLE}x the document plus {SLACK})",
                None,  # the whole document: no one line to point at
            )
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.get_event()
        kind = event.__class__
        if kind is AliasEvent:
            return self._alias(event, parent, index)
        anchor = event.anchor
        self._check_before(event)
        if self.yaml_path_resolvers:  # never set by the service; kept for Composer's contract
            self.descend_resolver(parent, index)
        node: Node
        size = 1
        if kind is ScalarEvent:
            tag = event.tag
            if tag is None or tag == "!":
                tag = self.resolve(ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
            # libyaml marks a plain scalar "", PyYAML None
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style or None)
            if anchor is not None:
                self.anchors[anchor] = node
        else:
            node, size = self._collection(event, kind is MappingStartEvent)
        if self.yaml_path_resolvers:
            self.ascend_resolver()
        self._totals[-1] += size
        self._distinct += 1
        if anchor is not None:
            self._anchored[anchor] = size
        if index is None and parent.__class__ is MappingNode:
            self._note_key(node)
        return node

    def _check_before(self, event: Any) -> None:
        """What must hold before a node is composed: its anchor new, and the nesting bounded (the
        composer recurses, so the bound comes before it)."""
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self.anchors[anchor].start_mark,
                "second occurrence",
                event.start_mark,
            )
        if self._depth >= MAX_DEPTH:
            raise TooDeep(
                f"YAML nested deeper than {MAX_DEPTH} levels: refused (no real document comes near)",
                _line(event.start_mark),
            )

    def _collection(self, event: Any, mapping: bool) -> tuple[Node, int]:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolve(MappingNode if mapping else SequenceNode, None, event.implicit)  # type: ignore[no-untyped-call]
        node = (MappingNode if mapping else SequenceNode)(tag, [], event.start_mark, None, flow_style=event.flow_style)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        self._depth += 1
        self._totals.append(0)
        items = node.value
        end = MappingEndEvent if mapping else SequenceEndEvent
        position = 0
        while not self.check_event(end):
            if mapping:
                key = self.compose_node(node, None)
                items.append((key, self.compose_node(node, key)))
            else:
                items.append(self.compose_node(node, position))
                position += 1
        node.end_mark = self.get_event().end_mark
        self._depth -= 1
        return node, min(1 + self._totals.pop(), _CAP)

    def _alias(self, event: Any, parent: Node | None, index: Any) -> Node:
        anchor = event.anchor
        if anchor not in self.anchors:
            raise ComposerError(None, None, f"found undefined alias {anchor!r}", event.start_mark)
        size = self._anchored.get(anchor)
        if size is None:
            raise AliasBomb(
                "a YAML alias refers to a node that contains it (a recursive document)", _line(event.start_mark)
            )
        self._totals[-1] = min(self._totals[-1] + size, _CAP)
        node: Node = self.anchors[anchor]
        if index is None and parent.__class__ is MappingNode:
            self._note_key(node)
        return node

    def _note_key(self, node: Node) -> None:
        """``node`` is the key of a mapping (PyYAML's composer passes index None for a key)."""
        if not isinstance(node, ScalarNode):
            self._collection_keys.append(_line(node.start_mark))
        elif node.tag == _MERGE:
            self._merge_keys.append(_line(node.start_mark))


class _Pure(Reader, Scanner, Parser, _Bounded):
    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Bounded.__init__(self)


def _libyaml_class() -> Callable[[str], _Bounded] | None:
    if getattr(yaml, "CSafeLoader", None) is None:  # PyYAML built without libyaml
        return None
    from yaml._yaml import CParser  # noqa: PLC0415 - importable only where libyaml is

    c_parser: Any = CParser

    class _Libyaml(_Bounded, c_parser):  # type: ignore[misc]
        def __init__(self, text: str) -> None:
            c_parser.__init__(self, text)
            _Bounded.__init__(self)

    return _Libyaml


def _flat_class() -> Callable[[str], Any] | None:
    """libyaml's own composer, with PyYAML's resolver: ``yaml.CSafeLoader`` without its constructor."""
    if getattr(yaml, "CSafeLoader", None) is None:
        return None
    from yaml._yaml import CParser  # noqa: PLC0415 - importable only where libyaml is

    c_parser: Any = CParser

    class _Flat(c_parser, Resolver):  # type: ignore[misc]
        def __init__(self, text: str) -> None:
            c_parser.__init__(self, text)
            Resolver.__init__(self)

    return _Flat


# Tests set this to None to run the pure path where libyaml is installed.
LIBYAML: Callable[[str], _Bounded] | None = _libyaml_class()
FLAT: Callable[[str], Any] | None = _flat_class()


def compose(text: str, *, single: bool = False) -> Document:
    """The first document of ``text`` (``single``: the only one, else a ComposerError).

    Raises yaml.YAMLError for text that does not parse and Refused for a document too deep or too
    expansive."""
    text = text.removeprefix("\ufeff")
    if LIBYAML is not None and not _pure_only(text):
        try:
            if FLAT is not None and _flat(text):
                return _compose_flat(FLAT, text)
            return _compose(LIBYAML, text, single=single, rest_must_parse=True)
        except yaml.YAMLError:
            pass  # the pure reader's verdict and message are the reference (module docstring)
    return _compose(_Pure, text, single=single, rest_must_parse=False)


def _compose(cls: Callable[[str], _Bounded], text: str, *, single: bool, rest_must_parse: bool) -> Document:
    loader: Any = cls(text)
    try:
        if single:
            root = loader.get_single_node()
            return Document(root, False, tuple(loader._merge_keys), tuple(loader._collection_keys))
        if loader.check_event(StreamStartEvent):
            loader.get_event()
        root = None if loader.check_event(StreamEndEvent) else loader.compose_document()
        try:
            more = root is not None and not loader.check_event(StreamEndEvent)
        except yaml.YAMLError:
            if rest_must_parse:
                raise
            more = True
        return Document(root, more, tuple(loader._merge_keys), tuple(loader._collection_keys))
    finally:
        loader.dispose()


def _compose_flat(cls: Callable[[str], Any], text: str) -> Document:
    """A text ``_flat`` admits: one document at most (no marker can start another), no merge key, no
    collection as a key (only a flow collection or a complex key can be one)."""
    loader = cls(text)
    try:
        return Document(loader.get_single_node(), False, (), ())
    finally:
        loader.dispose()


def _line(mark: Any) -> int:
    return int(mark.line) + 1  # a node's or an event's start mark, which both event sources always set
