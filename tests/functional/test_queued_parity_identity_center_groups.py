"""The tests of tests/functional/test_identity_center_groups.py that invoke the handlers, through the queued
path (tests/functional/queued_lambdas.py: its ``lambdas`` fixture replaces conftest's here)."""

from tests.functional import test_identity_center_groups
from tests.functional.queued_lambdas import lambdas, through_the_queue

globals().update(through_the_queue(test_identity_center_groups))
__all__ = ["lambdas"]
