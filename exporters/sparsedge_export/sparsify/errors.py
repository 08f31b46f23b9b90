"""Exceptions raised by the exporter; all derive from ExportError (a ValueError)."""

from __future__ import annotations

__all__ = ["CalibrationError", "ExportError", "InvalidPatternError", "InvalidSparsityError",
           "ModelNotFoundError", "NothingToPruneError", "UnsupportedModelError"]


class ExportError(ValueError):
    """Base class: the export cannot proceed; the message says what to change."""


class InvalidSparsityError(ExportError):
    """The sparsity target is outside [0, 1)."""


class InvalidPatternError(ExportError):
    """The block pattern is not one of '1x1', '2x1', '4x1', '8x1'."""


class CalibrationError(ExportError):
    """Calibration data is unreadable or does not match the model's input."""


class NothingToPruneError(ExportError):
    """After protection and the prunability rules, no layer is left to prune."""


class ModelNotFoundError(ExportError, FileNotFoundError):
    """The input model file does not exist."""


class UnsupportedModelError(ExportError):
    """The model uses an op or opset whose semantics the exporter cannot preserve."""
