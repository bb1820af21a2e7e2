"""The faces' small promises: the form shown once as a cell's last line, the one-line magic's options."""


from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from yart_jupyter.emulator import Emulator
from yart_jupyter.notebook.magics.cell import split_line

from .conftest import FOLDER, KEY
from .helpers import run_cell


def test_form_as_last_line_is_displayed_once(tmp_path: Path) -> None:
    import nbformat

    from yart_jupyter.notebook.runner import run_notebook

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import yart_jupyter\n%load_ext yart_jupyter\n"
                                  "%config YandexArt.base_url = 'emulator'"),
        nbformat.v4.new_code_cell("yart_jupyter.form()"),
        nbformat.v4.new_code_cell("%yandexart form"),
    ]
    source = tmp_path / "form.ipynb"
    nbformat.write(notebook, source)
    executed = run_notebook(source, workdir=tmp_path, timeout=120)
    for cell in executed.cells[1:]:
        views = [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert len(views) == 1, cell.source


def test_one_line_prompt_may_contain_double_dash(shell: InteractiveShell) -> None:
    assert split_line("a cat -- at night --seed 3") == ("a cat -- at night", "--seed 3")
    assert split_line("a --seedless cat") == ("a --seedless cat", "")
    assert split_line("a cat --aspect=2:1") == ("a cat", "--aspect=2:1")
    run_cell(shell, "%yandexart a cat -- at night --seed 3")
    image = shell.user_ns["_"]
    assert image.prompt == "a cat -- at night" and image.seed == 3


def test_status_says_what_generations_would_use(shell: InteractiveShell, thread_emulator: Emulator,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``%yandexart status``: the endpoint, folder, credentials (redacted), model and store, and what
    stands in the way, with nothing sent to the service."""
    run_cell(shell, "%%yandexart --seed 3\na kite")
    result, captured = run_cell(shell, "%yandexart status")
    assert result.success, result.error_in_exec
    text = captured.outputs[-1].data["text/plain"]
    assert thread_emulator.url in text and FOLDER in text and "API key" in text and KEY not in text
    assert "\nversion      yart_jupyter " in text  # what a bug report needs
    assert "1 generation" in text and text.endswith("Ready: nothing stands in the way (the service may still "
                                                      "refuse the model or the key).")
    requests = thread_emulator.stats.requests
    monkeypatch.setenv("YANDEXART_DEFAULT_ASPECT", "16:9")  # ignored without a word until now
    text = run_cell(shell, "%yandexart status")[1].outputs[-1].data["text/plain"]
    assert "\nnote         YANDEXART_DEFAULT_ASPECT is set but read by nothing (did you mean YANDEXART_ASPECT?)" in text
    assert text.endswith("Ready: nothing stands in the way (the service may still refuse the model or the key).")
    monkeypatch.delenv("YC_FOLDER_ID")
    monkeypatch.delenv("YC_API_KEY")
    monkeypatch.setenv("PATH", "/nonexistent")  # no yc CLI either
    result, captured = run_cell(shell, "%yandexart status")
    text = captured.outputs[-1].data["text/plain"]
    assert "folder       not set (YC_FOLDER_ID)" in text and "credentials  none found" in text
    assert "problem      CredentialsNotFoundError" in text
    assert "problem      RequestValidationError: no folder_id" in text
    assert text.endswith("Not ready: 2 problems above.") and thread_emulator.stats.requests == requests


def test_yart_status_exit_code_says_whether_it_is_ready(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from yart_jupyter.cli.main import main

    for name in ("YC_API_KEY", "YC_FOLDER_ID", "YANDEXART_BASE_URL", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["status"]) == 2  # nothing set: two problems, and the note on the denied default model
    out = capsys.readouterr().out
    assert "credentials  none found" in out and "note         yandex-art/latest is reported denied" in out
    monkeypatch.setenv("YANDEXART_BASE_URL", "emulator")
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "credentials  API key *** from the embedded emulator" in out and "note" not in out
    monkeypatch.setenv("YANDEXART_BASE_URL", "http://yart.invalid")  # every request would be refused: said here
    assert main(["status"]) == 2
    assert "Refusing to send credentials over plain http to yart.invalid" in capsys.readouterr().out
    monkeypatch.setenv("YANDEXART_BASE_URL", "emulator")
    monkeypatch.setenv("YANDEXART_STORE", "postgresql://nobody:pw@127.0.0.1:1/db")  # a team's database out of reach
    assert main(["status"]) == 2
    out = capsys.readouterr().out
    assert "store        postgresql://nobody@127.0.0.1:1/db · cannot be read" in out
    assert "problem      StorageError" in out and ":pw@" not in out


async def test_status_from_python(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import yart_jupyter
    from yart_jupyter.clients.shared import close_shared_clients

    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    report = await yart_jupyter.status()
    assert report.ready and report.problems == [] and report.folder == FOLDER
    assert 'class="yart-status"' in report._repr_html_() and KEY not in str(report) + report._repr_html_()
    assert str(report).endswith("Ready: nothing stands in the way (the service may still refuse the model or the key).")
    assert repr(report) == str(report)  # a console shows the report, not a dataclass's fields
    monkeypatch.setenv("YANDEXART_MODEL_URI", "aliceai-image-art-3")  # sent as given, and refused: said first
    report = await yart_jupyter.status()
    assert ("aliceai-image-art-3 is not a model this version knows: did you mean aliceai-image-art-3.0?"
            in report.text()) and report.ready
    monkeypatch.delenv("YANDEXART_MODEL_URI")
    monkeypatch.delenv("YC_FOLDER_ID")
    report = await yart_jupyter.status()
    assert not report.ready and report.folder_problem is not None and "no folder_id" in report.folder_problem
    assert emulator.stats.requests == 0
    await close_shared_clients()
