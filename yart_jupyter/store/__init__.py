"""The store: every generation recorded, every picture kept, before and after it is made."""

from .store import ExperimentRecord, Record, Store, get_store, request_key

__all__ = ["ExperimentRecord", "Record", "Store", "get_store", "request_key"]
