"""Errors of the LLM exporter."""

from ..sparsify.errors import ExportError


class LlmExportError(ValueError):
    """A GGUF file cannot be turned into a sparsedge decoder (bad file, unsupported model, missing data)."""


class LlmPruneError(ExportError, LlmExportError):
    """A pruned decoder cannot be exported as asked (bad sparsity or pattern, unknown method, no calibration text)."""
