"""Parsers turn file bytes into sections of text, keeping structure that helps retrieval.

Each parser registers the content types and file extensions it reads; `parse` picks one.
"""

from __future__ import annotations

from openbotkit.ingestion.parsers import documents, markup, tabular  # registers the parsers
from openbotkit.ingestion.parsers.base import PARSERS, ParseLimits, Section, parse, register

__all__ = [
    "PARSERS",
    "ParseLimits",
    "Section",
    "documents",
    "markup",
    "parse",
    "register",
    "tabular",
]
