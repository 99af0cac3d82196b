"""The tests of tests/functional/test_access_entries.py that invoke the handlers, through the queued path
(tests/functional/queued_lambdas.py: its ``lambdas`` fixture replaces conftest's here)."""

from tests.functional import test_access_entries
from tests.functional.queued_lambdas import lambdas, through_the_queue

globals().update(through_the_queue(test_access_entries))
__all__ = ["lambdas"]
