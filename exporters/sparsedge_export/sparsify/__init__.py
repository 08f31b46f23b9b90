"""Group-sparse export of dense ONNX CNNs to the sparsedge format (docs/FORMAT.md).

Public API: :func:`export_sparse`, :class:`ExportReport`, :func:`report_from_model`,
the exceptions (all subclasses of :class:`ExportError`), and the BSR helpers
:func:`encode_bsr` / :func:`densify_bsr`.
"""

from .errors import (CalibrationError, ExportError, InvalidPatternError, InvalidSparsityError,
                     ModelNotFoundError, NothingToPruneError, UnsupportedModelError)
from .export import export_sparse
from .prune import ALLOCATIONS, PATTERNS
from .report import ExportReport, LayerReport, format_table, plot_report, report_from_model
from .writer import densify_bsr, encode_bsr

__all__ = ["ALLOCATIONS", "PATTERNS", "CalibrationError", "ExportError", "ExportReport", "InvalidPatternError",
           "InvalidSparsityError", "LayerReport", "ModelNotFoundError", "NothingToPruneError",
           "UnsupportedModelError", "densify_bsr", "encode_bsr", "export_sparse", "format_table",
           "plot_report", "report_from_model"]
