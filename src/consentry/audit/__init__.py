"""Accountability: the DPO's report, the GDPR documents, from the policy and the ledger.

Library code only: the CLI (`consentry report`, `consentry documents`) is a thin face over it.
"""

from .documents import Controller, Documents, build_documents, ledger_facts, write_documents
from .log import VerifyResult, checkpoint, export_jsonl, require_intact
from .log import verify as verify_chain
from .report import Report, ReportFiles, build_report, print_pdf, render_html, write_report

__all__ = [
    "Controller",
    "Documents",
    "Report",
    "ReportFiles",
    "VerifyResult",
    "build_documents",
    "build_report",
    "checkpoint",
    "export_jsonl",
    "ledger_facts",
    "print_pdf",
    "render_html",
    "require_intact",
    "verify_chain",
    "write_documents",
    "write_report",
]
