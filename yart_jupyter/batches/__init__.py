"""Batch runs from a table: every row validated first, then generated within the quotas into files and a
``metadata.jsonl`` (the Hugging Face ``imagefolder`` layout); resumable, and never paid twice.

A row's seed, unless given, is derived from the row itself (its values and its prompt), so running
the same batch again asks for the same pictures: rows already made come from the store or their
files, rows still on the server are collected, and only rows never sent are started. Nothing here
knows of IPython; the notebook (:func:`yart_jupyter.batch`) and the ``yart`` command are faces.
"""

from .plan import TablePlan, derived_seed, plan_table
from .preview import BatchPreview, preview_table
from .result import BatchResult, row_lines
from .run import run_table
from .table import BatchInputError, load_rows

__all__ = ["BatchInputError", "BatchPreview", "BatchResult", "TablePlan", "derived_seed", "load_rows", "plan_table",
           "preview_table", "row_lines", "run_table"]
