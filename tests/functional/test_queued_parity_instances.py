"""The tests of tests/functional/test_instances.py that invoke the handlers, through the queued path
(tests/functional/queued_lambdas.py: its ``lambdas`` fixture replaces conftest's here): a cluster
another instance manages fails its work item (permanent: retried up to the work queue's
maxReceiveCount, then its DLQ), and nothing is written there."""

from tests.functional import test_instances
from tests.functional.queued_lambdas import lambdas, through_the_queue

globals().update(through_the_queue(test_instances))
__all__ = ["lambdas"]
