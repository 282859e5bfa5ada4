"""Synthetic platform exports for demos, tests and benchmarks."""

from .export import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]
