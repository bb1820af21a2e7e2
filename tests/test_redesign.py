"""Regression tests for the defects the redesign fixed, and every setting reaching every face."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import warnings
import weakref
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import yart_jupyter
from yart_jupyter import errors
from yart_jupyter.clients.shared import _clients, close_shared_clients
from yart_jupyter.core import settings
from yart_jupyter.core.config import CONNECTION_FIELDS
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.engine.jobs import JOBS
from yart_jupyter.notebook.magics.cell import split_line
from yart_jupyter.store import Store

from .conftest import FOLDER, KEY
from .helpers import run_cell

# -- 1. one owner: every setting reaches every face -------------------------------------------

#: (setting, a value other than its default)
SETTINGS_TABLE: list[tuple[str, Any]] = [
    ("default_aspect", "16:9"),
    ("mime_type", "image/png"),
    ("model_uri", "art://other-folder/yandex-art/latest"),
    ("max_images", 3),
    ("wait_timeout", 123.0),
    ("request_timeout", 7.0),
    ("generations_per_minute", 42),
    ("reads_per_second", 9),
    ("data_logging", False),
    ("folder_id", "folder-from-config"),
]


@pytest.mark.parametrize(("name", "value"), SETTINGS_TABLE, ids=[row[0] for row in SETTINGS_TABLE])
def test_every_setting_reaches_every_face(shell: InteractiveShell, name: str, value: Any) -> None:
    shell.run_cell(f"%config YandexArt.{name} = {value!r}")
    source = textwrap.dedent("""
        await __import__("asyncio").sleep(0)  # run on the loop, as a notebook cell with the magic does
        import yart_jupyter
        from yart_jupyter.core import settings as _s
        from yart_jupyter.notebook.magics import cell as _cell
        from yart_jupyter.notebook.magics.face import Face as _Face
        from yart_jupyter.clients.shared import shared_client as _shared
        _face = _Face(get_ipython())
        _magic_request = _cell.plan(_face, "", "a probe").requests[0]
        _magic_settings = _face.client().settings
        _form = yart_jupyter.form()
        _form.prompt.value = "a probe"
        _form_request = _form._requests(_s.current())[0]
        _api_settings = _shared(_s.current()).settings
    """)
    result = shell.run_cell(source)
    assert result.success, result.error_in_exec
    ns = shell.user_ns
    form = ns["_form"]
    current = settings.current()
    assert getattr(current, name) == value
    if name in CONNECTION_FIELDS:  # the client each face talks through was made with it
        for face in ("_magic_settings", "_api_settings"):
            assert getattr(ns[face], name) == value, face
    for face in ("_magic_request", "_form_request"):
        request = ns[face]
        if name == "default_aspect":
            assert str(request.aspect) == value, face
        if name == "mime_type":
            assert request.mime_type == value, face
        if name == "model_uri":
            assert request.model_uri == value, face
        if name == "folder_id":
            assert request.model_uri == f"art://{value}/yandex-art/latest", face
    if name == "default_aspect":
        assert form.aspect.value == value
    if name == "max_images":
        assert form.count.max == value
        bad = shell.run_cell("%%yandexart --count 4\ntoo many")
        assert isinstance(bad.error_in_exec, errors.RequestValidationError) and "max_images" in str(bad.error_in_exec)


async def test_generate_uses_configured_aspect(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YC_API_KEY", KEY)
    settings.configure(base_url=emulator.url, folder_id=FOLDER, default_aspect="16:9")
    try:
        image = await yart_jupyter.generate("a cat", seed=1)
        assert str(image.aspect) == "16:9"
        image = await yart_jupyter.generate("a cat", seed=1, aspect="1:1")  # an argument beats the setting
        assert str(image.aspect) == "1:1"
    finally:
        settings.configure(base_url=None, folder_id=None, default_aspect=None)
        await close_shared_clients()


def test_precedence_argument_config_environment_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YANDEXART_ASPECT", raising=False)
    assert settings.current().default_aspect == "1:1"
    monkeypatch.setenv("YANDEXART_ASPECT", "2:1")
    assert settings.current().default_aspect == "2:1"
    settings.configure(default_aspect="3:2")
    try:
        assert settings.current().default_aspect == "3:2"
        assert settings.current(default_aspect="4:3").default_aspect == "4:3"
    finally:
        settings.configure(default_aspect=None)
    assert settings.current().default_aspect == "2:1"


def test_data_dir_beats_yandexart_home(tmp_path: Path, isolated_store: Path) -> None:
    assert settings.current().home == isolated_store
    settings.configure(data_dir=str(tmp_path / "configured"))
    try:
        assert settings.current().home == tmp_path / "configured"
    finally:
        settings.configure(data_dir=None)


def test_invalid_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(errors.ConfigurationError, match="default_aspect"):
        settings.configure(default_aspect="7:1")
    with pytest.raises(errors.ConfigurationError, match="unknown setting"):
        settings.configure(api_key="x")
    assert settings.current().default_aspect == "1:1"


# -- 2. cancellation passes through ------------------------------------------------------------

@pytest.fixture
async def slow_api(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("YC_API_KEY", KEY)
    emulator.config.duration = Duration("fixed", 30)
    settings.configure(base_url=emulator.url, folder_id=FOLDER)
    yield emulator
    settings.configure(base_url=None, folder_id=None)
    await close_shared_clients()


async def test_wait_for_raises_timeout_error(slow_api: Emulator, isolated_store: Path) -> None:
    with pytest.raises(asyncio.TimeoutError):  # the builtin TimeoutError from 3.11 on
        await asyncio.wait_for(yart_jupyter.generate("a cat", seed=1), 0.5)
    await asyncio.sleep(0.1)
    pending = Store(isolated_store).pending()  # nothing lost: the operation is recorded as pending
    assert [r.operation_id for r in pending] == list(slow_api.operations)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout and TaskGroup are Python 3.11+")
async def test_timeout_context_and_task_group(slow_api: Emulator) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):  # type: ignore[attr-defined,unused-ignore]
            await yart_jupyter.generate("a cat", seed=2)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):  # type: ignore[attr-defined,unused-ignore]
            async with asyncio.TaskGroup() as group:  # type: ignore[attr-defined,unused-ignore]
                group.create_task(yart_jupyter.generate("a cat", seed=3))
                group.create_task(yart_jupyter.generate("a cat", seed=4))


async def test_plain_cancel_is_cancelled_error(slow_api: Emulator) -> None:
    task = asyncio.ensure_future(yart_jupyter.generate("a cat", seed=5))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- 3 and 7. sessions: closed when the loop ends, one per client even when raced -------------

def _script(emulator: Emulator, tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(f"""
        import asyncio, gc, os, warnings
        warnings.simplefilter("always")
        os.environ.update(YC_API_KEY={KEY!r}, YC_FOLDER_ID={FOLDER!r}, YANDEXART_BASE_URL={emulator.url!r},
                          YANDEXART_HOME={str(tmp_path / 'home')!r})
        import yart_jupyter
        {body}
        gc.collect()
    """)
    return subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=60)


def test_plain_script_leaks_no_session(thread_emulator: Emulator, tmp_path: Path) -> None:
    result = _script(thread_emulator, tmp_path, textwrap.dedent("""
        async def main():
            return await yart_jupyter.generate("a cat", seed=1)
        print(asyncio.run(main()).operation_id)
    """).replace("\n", "\n        "))
    assert result.returncode == 0, result.stderr
    assert "Unclosed" not in result.stderr and "unclosed" not in result.stderr, result.stderr


def test_concurrent_first_calls_open_one_session(thread_emulator: Emulator, tmp_path: Path) -> None:
    result = _script(thread_emulator, tmp_path, textwrap.dedent("""
        import aiohttp
        opened = []
        original = aiohttp.ClientSession.__init__
        def counting(self, *a, **k):
            opened.append(self)
            original(self, *a, **k)
        aiohttp.ClientSession.__init__ = counting
        async def main():
            await asyncio.gather(*(yart_jupyter.generate("a cat", seed=s) for s in range(1, 6)))
        asyncio.run(main())
        print("sessions", len(opened))
    """).replace("\n", "\n        "))
    assert result.returncode == 0, result.stderr
    assert "sessions 1" in result.stdout, result.stdout
    assert "Unclosed" not in result.stderr, result.stderr


def test_first_cell_with_several_seeds_opens_one_session(shell: InteractiveShell) -> None:
    from IPython.core.async_helpers import get_asyncio_loop

    shell.run_cell("from yart_jupyter.clients.shared import close_shared_clients\nawait close_shared_clients()")
    run_cell(shell, "%%yandexart --seed 1-4\nfour at once")
    clients = list(_clients[get_asyncio_loop()].values())  # type: ignore[no-untyped-call]
    assert len(clients) == 1 and clients[0].connection.is_open


# -- 4. the form shows once ---------------------------------------------------------------------

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


# -- 5. the one-line magic knows its options --------------------------------------------------

def test_one_line_prompt_may_contain_double_dash(shell: InteractiveShell) -> None:
    assert split_line("a cat -- at night --seed 3") == ("a cat -- at night", "--seed 3")
    assert split_line("a --seedless cat") == ("a --seedless cat", "")
    assert split_line("a cat --aspect=2:1") == ("a cat", "--aspect=2:1")
    run_cell(shell, "%yandexart a cat -- at night --seed 3")
    image = shell.user_ns["_"]
    assert image.prompt == "a cat -- at night" and image.seed == 3


# -- 6. finished jobs free their images ----------------------------------------------------------

async def test_finished_background_job_frees_its_images(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from yart_jupyter.core.status import BatchStatus

    monkeypatch.setenv("YC_API_KEY", KEY)
    settings.configure(base_url=emulator.url, folder_id=FOLDER)
    try:
        job = JOBS.submit(yart_jupyter.generate("freed later", seed=11), "one image", BatchStatus(1))
        await job
        await asyncio.sleep(0)  # the done callback runs
        job_ref, image_ref = weakref.ref(job), weakref.ref(job.result())
        assert job.id not in JOBS.jobs and JOBS.finished[-1].id == job.id  # a summary line, not the job
        assert JOBS.finished[-1].state == "done"
        del job
        gc.collect()
        assert job_ref() is None and image_ref() is None
    finally:
        settings.configure(base_url=None, folder_id=None)
        await close_shared_clients()


# -- 8. messages, prune, docs --------------------------------------------------------------------

def test_no_credentials_message_names_only_real_settings() -> None:
    from yart_jupyter.clients.credentials import HOW_TO_PROVIDE

    assert "%config YandexArt.api_key" not in HOW_TO_PROVIDE
    for name in ("YC_API_KEY", "YC_IAM_TOKEN", "YC_FOLDER_ID"):
        assert name in HOW_TO_PROVIDE


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


def test_readme_and_help_come_from_the_parsers() -> None:
    from yart_jupyter.notebook.magics import YandexArtMagics
    from yart_jupyter.notebook.magics.commands import markdown, usage

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert markdown() in readme, "README.s option table is stale: run `make reference`"
    assert YandexArtMagics.yandexart_cell.__doc__ == usage()
    for option in ("--seed", "--aspect", "--no-cache", "--background", "resume", "prune"):
        assert option in usage()


def test_no_resource_warnings_from_the_store(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = Store(tmp_path / "s")
        store.history(5)
        store.pending()
        del store
        gc.collect()


@pytest.mark.skipif(__import__("importlib").util.find_spec("mkdocs") is None, reason="needs the docs extra")
def test_docs_build_fails_on_a_broken_link_or_a_fence_that_is_not_code(tmp_path: Path) -> None:
    import shutil

    root = Path(__file__).parent.parent
    shutil.copytree(root / "docs", tmp_path / "docs")
    shutil.copy(root / "mkdocs.yml", tmp_path)
    (tmp_path / "demo-output").mkdir()  # what make demo writes (make docs makes it first)
    (tmp_path / "demo-output" / "quickstart.html").write_text("<html><body>the quickstart</body></html>")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    env = {**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"}
    assert subprocess.run(build, cwd=tmp_path, capture_output=True, env=env, timeout=120).returncode == 0
    page = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "--no-cache" in page and "default_aspect" in page  # the generated reference is there
    page = (tmp_path / "site" / "experiments" / "index.html").read_text()
    before = page[:page.index('<pre><span></span><code>%%yandexart --seed 7 --vary ar=')]
    assert before.rfind("<li>") > before.rfind("</li>")  # the fence is a code block inside its list item
    page = (tmp_path / "site" / "provenance" / "index.html").read_text()
    assert 'src="../images/info-light.jpg#only-light"' in page  # the page shows its output
    assert "the quickstart" in (tmp_path / "site" / "quickstart" / "notebook.html").read_text()
    clean = (tmp_path / "docs" / "tests.md").read_text()
    inline = "\n> ```\n> %%yandexart --seed 1\na fence that renders inline\n```\n"
    (tmp_path / "docs" / "tests.md").write_text(clean + inline)
    fenced = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert fenced.returncode != 0 and "fenced blocks but" in fenced.stderr
    (tmp_path / "docs" / "tests.md").write_text(clean + "\n- an item\n\n  ```\n  %%yandexart --seed 1\n  ```\n")
    shallow = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert shallow.returncode != 0 and "indented less than 4 spaces" in shallow.stderr
    (tmp_path / "docs" / "tests.md").write_text(clean)
    (tmp_path / "docs" / "images" / "info-dark.jpg").unlink()
    gone = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert gone.returncode != 0 and "info-dark.jpg does not exist" in gone.stderr
    shutil.copy(root / "docs" / "images" / "info-dark.jpg", tmp_path / "docs" / "images")
    (tmp_path / "docs" / "tests.md").write_text(clean + "\n[a broken link](nowhere.md)\n")
    assert subprocess.run(build, cwd=tmp_path, capture_output=True, env=env, timeout=120).returncode != 0
