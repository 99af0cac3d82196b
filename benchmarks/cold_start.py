"""The cold start as Lambda runs it: what importing the handlers and the first relevant event's code costs.

Both zips of the dev stage are unpacked into read-only folders and imported by a plain interpreter that
writes no bytecode and sees nothing but the zip and the standard library (``-I -S -B``), with the
function's environment (``LAMBDA_TASK_ROOT`` and the rest, so Powertools and the X-Ray SDK behave as
in Lambda):

- **the untrimmed zip** (the app and its dependencies as Chalice used to ship them, before ``make package``
  drops and compiles: every module compiled from source at every cold start), the baseline;
- **the packaged zip** (``make package``: unchecked-hash ``.pyc`` for the runtime, unused models dropped);
- **the floor**: ``import boto3, kubernetes.client`` from the packaged zip.

The first relevant event is an ``AddUserToGroup`` of the packaged configuration's first group: the
configuration read and validated, the event read (each pydantic model built when first used counts
here), then the imports of the run that reaches the cluster.

Beside the figures, one more run of each under ``python -X importtime`` says where the first event's
time beyond the floor goes: the own import time of every module the floor does not import, summed by
package, and what is no import at all, against the goal's budget (0.2x the floor).

Figures, not assertions. Goal (issue 18): the first relevant event's imports take at most 1.2x the floor,
measured in the same run (issue 14 asked for 0.4 s where the floor took ~0.23 s, a ratio of 1.74). Each
figure is the median and the minimum of several runs, interleaved, so that a busy machine slows all of
them alike; the ratio is given for both. Elapsed time is the figure of record (a cold start is
waited for); the same runs' CPU time is printed beside it, as on a machine shared with other work the
elapsed ratio swings with whoever else holds the cores (1.6x to 2.4x between two runs of one tree).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

from tools import package

RUNS = 7
GOAL_RATIO = 1.2
# What a cold start pays before any event: the handlers' module. Then what the first event that
# concerns a cluster adds: the runner, and through it the adapters with boto3 and the kubernetes client,
# and the engine of the identity backend its cluster uses (reconcile imports it when the cluster needs
# it): the aws-auth one, the larger of the two.
HANDLERS = ("app",)
# What the handler does first: the configuration read and validated, the event read.
READ_FIRST_EVENT = """exec:
import os, yaml
from chalicelib.engine.events import read_event
from chalicelib.entry.service import current_config
with open(os.environ["EKS_IAM_SYNC_CONFIG"]) as file:
    group = yaml.safe_load(file)["identities"]["groups"][0]["iamGroup"]
detail = {
    "eventID": "cold-start-1", "eventName": "AddUserToGroup", "eventSource": "iam.amazonaws.com",
    "requestParameters": {"groupName": group, "userName": "alice"},
    "userIdentity": {"arn": "arn:aws:iam::123456789012:user/admin"},
}
event = {"id": "1", "source": "aws.iam", "detail-type": "AWS API Call via CloudTrail", "detail": detail}
assert read_event(event, current_config()).scope.users, "the benchmark's event must be relevant"
"""
FIRST_EVENT = (
    READ_FIRST_EVENT,
    # The deployed stacks route events through the work queue: on_iam_events and reconcile_cluster
    # both take SQS batches with Powertools' BatchProcessor, which loads its event data classes.
    "aws_lambda_powertools.utilities.batch",
    "chalicelib.run.runner",
    "chalicelib.engine.awsauth.writer",
    "chalicelib.adapters.shell",
)
FLOOR = ("boto3", "kubernetes.client")

# Each group's steps: a module to import, or (``exec:``) code to run as the handler would. Marks: the
# elapsed time at the end of each group, then the process's CPU time at the same points.
TIMER = """
import importlib, json, sys, time
marks, cpu = [], []
started, cpu_started = time.perf_counter(), time.process_time()
for group in json.loads(sys.argv[2]):
    for step in group:
        if step.startswith("exec:"):
            exec(step[5:], {})
        else:
            importlib.import_module(step)
    marks.append(time.perf_counter() - started)
    cpu.append(time.process_time() - cpu_started)
print(json.dumps(marks + cpu))
"""


def unpack_read_only(archive: Path, into: Path) -> Path:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(into)
    for path in sorted(into.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    into.chmod(0o555)
    return into


def snapshot(tree: Path) -> set[str]:
    return {str(p.relative_to(tree)) for p in tree.rglob("*")}


def timed(tree: Path, env: dict[str, str], groups: tuple[tuple[str, ...], ...]) -> list[float]:
    argv = [*package.lambda_python(tree), TIMER, json.dumps(groups)]
    # lambda_python passes its script as argv[1]; the groups follow it.
    # Lambda's working directory is the task root: the configuration's relative path resolves there.
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tree, check=True)
    marks: list[float] = json.loads(out.stdout.strip().splitlines()[-1])
    return marks


def self_times(tree: Path, env: dict[str, str], groups: tuple[tuple[str, ...], ...]) -> tuple[dict[str, float], float]:
    """One run under ``-X importtime``: each module's own import time (s), and the run's elapsed total."""
    python, *flags = package.lambda_python(tree)
    argv = [python, "-X", "importtime", *flags, TIMER, json.dumps(groups)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tree, check=True)
    own: dict[str, float] = {}
    for line in out.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if line.startswith("import time:") and fields[0].strip().isdigit():
            own[fields[2].strip()] = int(fields[0]) / 1e6
    marks: list[float] = json.loads(out.stdout.strip().splitlines()[-1])
    return own, marks[len(groups) - 1]


# Packages counted together in the breakdown: a library and what it alone brings.
FAMILIES = {
    "pydantic_core": "pydantic",
    "annotated_types": "pydantic",
    "typing_inspection": "pydantic",
    "wrapt": "aws_xray_sdk",
}


def beyond_the_floor(tree: Path, env: dict[str, str]) -> tuple[list[tuple[str, float]], float, float]:
    """Where the first event's time beyond the floor goes: the own import time of the modules the floor
    does not import, by package (largest first); the rest of the event's time that is no import (the
    configuration read and validated, the event read); and the floor's own total in the same manner."""
    event, event_total = self_times(tree, env, (HANDLERS, FIRST_EVENT))
    floor, floor_total = self_times(tree, env, (FLOOR,))
    by_package: dict[str, float] = {}
    for module, seconds in event.items():
        if module not in floor:
            top = module.split(".")[0]
            family = FAMILIES.get(top, top)
            by_package[family] = by_package.get(family, 0.0) + seconds
    not_imports = max(event_total - sum(event.values()), 0.0)
    return sorted(by_package.items(), key=lambda item: -item[1]), not_imports, floor_total


def measure(trees: dict[str, Path], template: dict[str, Any]) -> dict[str, list[list[float]]]:
    plans = {
        "chalice": (trees["chalice"], (HANDLERS, FIRST_EVENT)),
        "packaged": (trees["packaged"], (HANDLERS, FIRST_EVENT)),
        "floor": (trees["packaged"], (FLOOR,)),
    }
    samples: dict[str, list[list[float]]] = {name: [] for name in plans}
    for _ in range(RUNS):
        for name, (tree, groups) in plans.items():
            samples[name].append(timed(tree, package.lambda_env(template, tree), groups))
    return samples


def figure(samples: list[list[float]], index: int) -> tuple[float, float]:
    values = [run[index] for run in samples]
    return statistics.median(values), min(values)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="eks-iam-sync-cold-start-") as scratch:
        work = Path(scratch)
        built = package.build("dev", out=work / "dist", keep_chalice_zip=work / "chalice.zip")
        template = yaml.safe_load(built.template.read_text())
        trees = {
            "chalice": unpack_read_only(work / "chalice.zip", work / "chalice"),
            "packaged": unpack_read_only(built.zip, work / "packaged"),
        }
        before = {name: snapshot(tree) for name, tree in trees.items()}
        samples = measure(trees, template)
        breakdown = beyond_the_floor(trees["packaged"], package.lambda_env(template, trees["packaged"]))
        written = {name: sorted(snapshot(tree) - before[name])[:3] for name, tree in trees.items()}
        sizes = {"chalice": (work / "chalice.zip").stat().st_size, "packaged": built.zip.stat().st_size}
        for tree in trees.values():
            for path in [tree, *tree.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o755)
    floor, floor_min = figure(samples["floor"], 0)
    print(f"cold start as Lambda runs it (read-only folder, -I -S -B, function environment; median (min) of {RUNS})")
    print(f"  {'':44} {'import app':>18} {'+ first relevant event':>24}")
    for name, label in (
        ("chalice", "the untrimmed zip, no bytecode (baseline)"),
        ("packaged", "make package (bytecode, slimmed)"),
    ):
        app, app_min = figure(samples[name], 0)
        first, first_min = figure(samples[name], 1)
        print(f"  {label:44} {app:7.3f} s ({app_min:.3f}) {first:11.3f} s ({first_min:.3f})")
    print(f"  {'floor: import boto3, kubernetes.client':44} {floor:7.3f} s ({floor_min:.3f})")
    packaged, packaged_min = figure(samples["packaged"], 1)
    baseline, _ = figure(samples["chalice"], 1)
    ratio, ratio_min = packaged / floor, packaged_min / floor_min
    print(
        f"  first relevant event: {packaged:.3f} s = {ratio:.2f}x the floor (minimums: {ratio_min:.2f}x), "
        f"{baseline / packaged:.1f}x faster than the baseline"
    )
    verdicts = f"{_met(ratio <= GOAL_RATIO)} (median), {_met(ratio_min <= GOAL_RATIO)} (min)"
    print(f"  goal: <= {GOAL_RATIO}x the floor: {verdicts}")
    # The same runs' CPU time: what a busy machine's waiting for a core does not inflate.
    cpu_floor, cpu_floor_min = figure(samples["floor"], 1)
    cpu_first, cpu_first_min = figure(samples["packaged"], 3)
    print(
        f"  CPU time of the same runs: first relevant event {cpu_first / cpu_floor:.2f}x the floor "
        f"(minimums: {cpu_first_min / cpu_floor_min:.2f}x)"
    )
    _print_breakdown(*breakdown)
    mib = 1024 * 1024
    print(f"  zip: {sizes['chalice'] / mib:.1f} MiB (untrimmed) -> {sizes['packaged'] / mib:.1f} MiB (packaged)")
    if any(written.values()):
        print(f"  WARNING: files appeared in a read-only folder: {written}")


def _print_breakdown(by_package: list[tuple[str, float]], not_imports: float, floor: float) -> None:
    beyond = sum(seconds for _, seconds in by_package) + not_imports
    budget = (GOAL_RATIO - 1) * floor
    print(
        f"  beyond the floor, one run under -X importtime: {beyond * 1000:.0f} ms "
        f"(the goal's budget: {budget * 1000:.0f} ms = {GOAL_RATIO - 1:.1f}x its floor of {floor * 1000:.0f} ms)"
    )
    shown = [f"{name} {seconds * 1000:.0f}" for name, seconds in by_package if seconds >= 0.002]
    print(f"    imports the floor does not make, own time by package (ms): {', '.join(shown)}")
    print(f"    not imports (the configuration read and validated, the event read): {not_imports * 1000:.0f} ms")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


if __name__ == "__main__":
    main()
