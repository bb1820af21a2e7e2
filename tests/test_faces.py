"""The faces' small promises: the form shown once as a cell's last line, the one-line magic's options."""


from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell

from yart_jupyter.notebook.magics.cell import split_line

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
