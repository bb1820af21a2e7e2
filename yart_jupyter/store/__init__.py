"""The store: every generation recorded, every picture kept, before and after it is made."""

from .records import ExperimentRecord, History, Record, State, request_key
from .registry import get_store
from .store import Store

__all__ = ["ExperimentRecord", "History", "Record", "State", "Store", "get_store", "request_key"]
