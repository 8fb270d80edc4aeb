"""One exception root. Every error can say where it came from (file and line)."""
from __future__ import annotations


class QAError(Exception):
    """Root of all qa_inspect errors; ``source`` is "file:line" when known."""

    def __init__(self, message: str, source: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


class AudioError(QAError):
    """An audio file cannot be decoded or is unusable (empty, silent, too long)."""


class InputError(QAError):
    """A manifest row or transcript line is malformed."""


class RuleError(QAError):
    """A rule pack is invalid."""


class ModelMissingError(QAError):
    """A model is not installed; the message names the package to install."""


class BudgetExceeded(QAError):
    """A call ran past its time budget (``qa_inspect.batch.budget``); the message names the stage.

    Stages that turn their own failures into warnings must re-raise this one."""
