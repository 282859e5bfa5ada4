"""Accountability: the DPO's report, the GDPR documents, from the policy and the ledger.

Library code only: the CLI (`consentry report`, `consentry documents`) is a thin face over it.
"""

from .documents import Controller, Documents, build_documents, write_documents
from .report import Report, ReportFiles, build_report, print_pdf, render_html, write_report

__all__ = [
    "Controller",
    "Documents",
    "Report",
    "ReportFiles",
    "build_documents",
    "build_report",
    "print_pdf",
    "render_html",
    "write_documents",
    "write_report",
]
