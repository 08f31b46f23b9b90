"""sparsedge exporter: pure-Python tools that write models for the sparsedge runtime."""
