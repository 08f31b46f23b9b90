"""The one error type of the LLM exporter."""


class LlmExportError(ValueError):
    """A GGUF file cannot be turned into a sparsedge decoder (bad file, unsupported model, missing data)."""
