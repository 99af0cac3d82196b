"""aws-auth readings, each data value parsed once per execution environment. Pure.

Reading aws-auth is the one cost of an event that grows with the estate (5 000 users are ~0.7 MiB of
YAML), and an event used to read the same text several times: the current document, the post-image
(whose keys are mostly the current ones), the next event's current document (which is the previous
post-image). ``read`` parses each data key through ``parse.read_key`` at most once per distinct text,
keeping the last few in a small module-level LRU, so a warm Lambda environment re-parses only what
changed.

Keyed by the text itself, not by cluster, uid and resourceVersion: ``read_key`` is a pure function of
(key, text), so a hit is exactly what a fresh parse gives by construction, whichever cluster or
object the text came from, and a post-image the service just checked is already parsed when the next
event reads it back. The cost of the key is one hash of the text (well under a millisecond for
1 MiB) and one comparison on a hit. Entries, problems and readings are frozen, so sharing them is
safe.

``read`` must answer exactly what ``parse.read_aws_auth`` answers: the readings of the entry keys
plus what the rest of the data says (mapAccounts, misspelled keys). ``tests/unit/awsauth/
test_reading.py`` holds it to that over the parse corpus and the real-world documents.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from threading import Lock

from chalicelib.engine.awsauth import parse
from chalicelib.engine.awsauth.model import ENTRY_KEYS
from chalicelib.engine.awsauth.parse import KeyReading, Reading

# Two keys per cluster, each as read and as written by an event, for a couple of clusters. A reading
# of 5 000 entries takes a few MiB; a Lambda of 512 MB holds this many with room to spare.
MAX_KEYS = 8


class _KeyCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._readings: OrderedDict[tuple[str, str], KeyReading] = OrderedDict()
        self._lock = Lock()
        self.hits = 0
        self.misses = 0

    def read(self, key: str, raw: str) -> KeyReading:
        with self._lock:
            found = self._readings.get((key, raw))
            if found is not None:
                self._readings.move_to_end((key, raw))
                self.hits += 1
                return found
        reading = parse.read_key(key, raw)
        with self._lock:
            self.misses += 1
            self._readings[(key, raw)] = reading
            while len(self._readings) > self.size:
                self._readings.popitem(last=False)
        return reading

    def clear(self) -> None:
        with self._lock:
            self._readings.clear()
            self.hits = self.misses = 0


KEYS = _KeyCache(MAX_KEYS)


def read(data: Mapping[str, str] | None) -> Reading:
    """What ``parse.read_aws_auth(data)`` returns, each entry key parsed once per distinct text."""
    data = data or {}
    keys = {key: KEYS.read(key, data.get(key, "")) for key in ENTRY_KEYS}
    # The rest (mapAccounts, other keys) is small: read as the parser reads it, entry keys left empty.
    rest = parse.read_aws_auth({k: v for k, v in data.items() if k not in ENTRY_KEYS})
    empty = [p for key in ENTRY_KEYS for p in rest.keys[key].problems]
    problems = [p for k in keys.values() for p in k.problems] + list(rest.problems[len(empty) :])
    return Reading(keys=keys, accounts=rest.accounts, problems=tuple(problems))
