"""Diagnostics of rules files, shown as `path:line:col: message`, the line and a caret."""

from __future__ import annotations

import attrs


@attrs.frozen
class Diagnostic:
    """One finding in a rules file."""

    path: str
    line: int
    column: int
    message: str
    hint: str | None = None
    end_column: int | None = None
    # "error": the file is refused; "warning": it loads and runs, but something in it
    # does not do what it seems to (a clause the engine ignores).
    severity: str = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.message)

    def format(self, source: str | None = None) -> str:
        """`path:line:col: message`, then the source line and a caret (and the hint)."""
        prefix = "" if self.is_error else f"{self.severity}: "
        out = [f"{self.path}:{self.line}:{self.column}: {prefix}{self.message}"]
        lines = source.splitlines() if source is not None else []
        if 1 <= self.line <= len(lines):
            text = lines[self.line - 1].expandtabs(1)
            out.append(f"    {text}")
            width = 1
            if self.end_column and self.end_column > self.column:
                width = min(self.end_column - self.column, max(1, len(text) - self.column + 1))
            out.append("    " + " " * (self.column - 1) + "^" * width)
        if self.hint:
            out.append(f"    hint: {self.hint}")
        return "\n".join(out)


def at(span, message: str, hint: str | None = None, severity: str = "error") -> Diagnostic:
    """A diagnostic at an AST span."""
    end = span.end_column if span.end_line == span.line else None
    return Diagnostic(span.path, span.line, span.column, message, hint, end, severity)


class RulesError(Exception):
    """Raised when a rules file has syntax or semantic errors; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.sources = sources or {}
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.format(self.sources.get(d.path)) for d in self.diagnostics)


class RunError(Exception):
    """Raised when a run cannot go on (an award amount that is not a whole number, ...)."""
