"""Batch runs from a table: rows validated, generated within the quotas into a dataset folder."""

from .batches import BatchInputError, BatchResult, derived_seed, load_rows, plan_table, run_table

__all__ = ["BatchInputError", "BatchResult", "derived_seed", "load_rows", "plan_table", "run_table"]
