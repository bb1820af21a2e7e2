"""The store's upkeep: prune keeps files when the delete fails, no resource warnings."""


import gc
import warnings
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from yart_jupyter import errors
from yart_jupyter.store import Store

from .helpers import run_cell


def test_prune_keeps_files_when_the_delete_fails(shell: InteractiveShell, isolated_store: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run_cell(shell, "%%yandexart --seed 21\nto be pruned")
    store = Store(isolated_store)
    record = store.history(1)[0]
    assert record.image_path is not None and record.image_path.exists()

    def broken(action: Any) -> Any:
        raise errors.StorageError("disk on fire")

    monkeypatch.setattr(store, "_retry", broken)
    with pytest.raises(errors.StorageError):
        store.prune(older_than=0)
    assert record.image_path.exists()  # the record still points at a file that is there
    monkeypatch.undo()
    assert store.prune(older_than=0)[0] == 1 and not record.image_path.exists()


def test_no_resource_warnings_from_the_store(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = Store(tmp_path / "s")
        store.history(5)
        store.pending()
        del store
        gc.collect()
