"""The platform the Lambda runs on, not the one that packages it (tools/package.py).

- ``Target``: a Lambda Python runtime and an architecture (``x86_64`` | ``arm64``), as the template says them,
  and what follows: pip's platform tag, the machine an ELF file names, the CPython version of wheels and bytecode.
- ``install_dependencies``: requirements.txt as pip resolves it for the target (``--platform manylinux2014_<arch>
  --python-version X.Y --implementation cp --only-binary=:all:``), into the zip's layout, from any host.
- ``runtime_interpreter``: an interpreter of the runtime's Python version on this host, if there is one; only it
  may compile the zip's bytecode and import the zip.
- ``foreign_binaries``: what in a tree would not load on the target (an ELF of another machine, an extension
  module built for another Python, a wheel tagged for another platform): the structural check that needs no
  Linux host of the target's architecture.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Lambda's Python runtimes this service supports: python3.11 reached its end of support on 30 Jun 2026;
# python3.12 is supported until 31 Oct 2028, python3.13 until 30 Jun 2029 (AWS Lambda, "Building Lambda
# functions with Python", supported runtimes).
RUNTIMES = ("python3.12", "python3.13")
DEFAULT_RUNTIME = "python3.13"
# Lambda's architecture name -> (pip's platform tag, the machine uname and the ELF header name).
ARCHITECTURES = {
    "x86_64": ("manylinux2014_x86_64", "x86_64", 0x3E),
    "arm64": ("manylinux2014_aarch64", "aarch64", 0xB7),
}
ELF_MAGIC = b"\x7fELF"
PURE_TAGS = re.compile(r"^py3\d*-none-any$|^py2\.py3-none-any$|^py3-none-any$")


class TargetError(Exception):
    """The target cannot be built for as asked; the message says why."""


@dataclass(frozen=True)
class Target:
    runtime: str = DEFAULT_RUNTIME
    architecture: str = "x86_64"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise TargetError(f"runtime {self.runtime!r} is not one of {', '.join(RUNTIMES)}")
        if self.architecture not in ARCHITECTURES:
            raise TargetError(f"architecture {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")

    @property
    def version(self) -> str:
        """``3.13`` for python3.13."""
        return self.runtime.removeprefix("python")

    @property
    def cpython(self) -> str:
        """``313``: the tag in wheel names and extension modules' file names."""
        return self.version.replace(".", "")

    @property
    def platform_tag(self) -> str:
        return ARCHITECTURES[self.architecture][0]

    @property
    def machine(self) -> str:
        return ARCHITECTURES[self.architecture][1]

    @property
    def elf_machine(self) -> int:
        return ARCHITECTURES[self.architecture][2]

    def host_runs_it(self) -> bool:
        """This host can load the target's compiled wheels (Linux on the same machine)."""
        return sys.platform.startswith("linux") and platform.machine() == self.machine


def pip_command(requirements: Path, tree: Path, target: Target) -> list[str]:
    return [
        *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"),
        *("--target", str(tree), "--requirement", str(requirements)),
        *("--platform", target.platform_tag, "--python-version", target.version),
        *("--implementation", "cp", "--only-binary=:all:"),
        "--no-compile",  # the host's bytecode is the host's Python's: compiled later for the runtime, or not at all
        "--no-warn-script-location",
    ]


def install_dependencies(requirements: Path, tree: Path, target: Target) -> None:
    done = subprocess.run(pip_command(requirements, tree, target), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TargetError(
            f"pip could not resolve {requirements.name} for {target.runtime} on {target.platform_tag} "
            f"(wheels only):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )


def _candidates(version: str) -> list[str]:
    """python3.X on PATH, then pyenv's and the usual prefixes' copies (a pyenv shim may refuse a version
    that is installed but not selected)."""
    found = [shutil.which(f"python{version}") or ""]
    home = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found += sorted(glob.glob(str(home / "versions" / f"{version}.*" / "bin" / f"python{version}")), reverse=True)
    found += [f"/usr/local/bin/python{version}", f"/usr/bin/python{version}", f"/opt/homebrew/bin/python{version}"]
    return [c for c in dict.fromkeys(found) if c and Path(c).is_file()]


def runtime_interpreter(target: Target) -> str | None:
    """An interpreter of the runtime's version that runs here (asked, not guessed from its name)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == target.version:
        return sys.executable
    for candidate in _candidates(target.version):
        try:
            done = subprocess.run(
                [candidate, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == target.version:
            return candidate
    return None


def _elf_machine(path: Path) -> int | None:
    with path.open("rb") as opened:
        header = opened.read(20)
    if len(header) < 20 or header[:4] != ELF_MAGIC:
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")  # EI_DATA: 1 little-endian


def _extension_problem(name: str, target: Target) -> str | None:
    """An extension module's name says which Python and machine it was built for (PEP 3149)."""
    tagged = re.search(r"\.cpython-(\d+)[a-z]*-([a-z0-9_]+)-linux-gnu\.so$", name)
    if tagged and (tagged[1], tagged[2]) != (target.cpython, target.machine):
        return f"built for cpython-{tagged[1]} on {tagged[2]}"
    if name.endswith((".pyd", ".dylib")) or re.search(r"\.cpython-\d+[a-z]*-darwin\.so$", name):
        return "not a Linux library"
    return None


def _wheel_problems(tree: Path, target: Target) -> list[str]:
    problems = []
    allowed = re.compile(
        rf"^(cp{target.cpython}-cp{target.cpython}|cp3\d*-abi3)-(manylinux\w*_{target.machine})$|{PURE_TAGS.pattern}"
    )
    for wheel in sorted(tree.glob("*.dist-info/WHEEL")):
        tags = re.findall(r"^Tag: (\S+)$", wheel.read_text(), re.M)
        foreign = [t for t in tags if not allowed.match(t)]
        if foreign and len(foreign) == len(tags):
            problems.append(f"{wheel.parent.name}: tagged {', '.join(tags)}")
    return problems


def foreign_binaries(tree: Path, target: Target) -> list[str]:
    """Every compiled file of the tree is an ELF for the target's machine, every extension module for the
    runtime's CPython, every wheel tagged for the target or pure: what does not hold, with why."""
    problems = _wheel_problems(tree, target)
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        name = path.name
        problem = _extension_problem(name, target)
        machine = _elf_machine(path)
        if problem is None and machine is not None and machine != target.elf_machine:
            problem = f"an ELF for machine {machine:#x}, not {target.machine} ({target.elf_machine:#x})"
        if problem is None and machine is None and re.search(r"\.so(\.\d+)*$", name):
            problem = "not an ELF file"
        if problem:
            problems.append(f"{path.relative_to(tree)}: {problem}")
    return problems


def compiled_files(tree: Path) -> int:
    """How many ELF files the tree holds (extension modules and the libraries wheels vendor)."""
    return sum(1 for p in tree.rglob("*") if p.is_file() and _elf_machine(p) is not None)
