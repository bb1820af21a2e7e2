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


def test_copy_from_a_folder_without_a_store_says_so(shell: InteractiveShell, isolated_store: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped source is not opened as a new, empty store (which would copy nothing and leave a
    store folder behind): one line, exit code 2, nothing made."""
    from yart_jupyter.cli.main import main

    assert main(["store", "copy", str(tmp_path / "nowhere"), str(tmp_path / "copy")]) == 2
    assert "holds no store" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "copy").exists()
    run_cell(shell, "%%yandexart --seed 22\nto be copied")
    assert main(["store", "copy", str(isolated_store), f"{isolated_store}/"]) == 2  # one store named twice
    assert "are the same store. Nothing was copied" in capsys.readouterr().err
    assert main(["store", "copy", str(isolated_store), str(tmp_path / "copy")]) == 0
    assert "copied 1 record (1 picture)" in capsys.readouterr().out
    assert Store(tmp_path / "copy").history(None)[0].prompt == "to be copied"
