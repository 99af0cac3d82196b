"""What is wrong with a configuration: each problem with its key path and line, and the error that
carries them all."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.errors import PermanentError


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.path or '<top>'}: {self.message}"


class ConfigError(PermanentError):
    """A configuration file that must not be used; carries every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.render(source) for p in problems))
