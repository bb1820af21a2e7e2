"""Secrets never leak; credentials go only where they belong; the emulator survives garbage."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.interactiveshell import InteractiveShell

from yart_jupyter import errors
from yart_jupyter.clients.client import YandexArtClient
from yart_jupyter.clients.credentials import OAuthToken
from yart_jupyter.core import settings as yart_settings
from yart_jupyter.emulator import Emulator, standalone

from .conftest import FOLDER, KEY

ROOT = Path(__file__).resolve().parent.parent
SECRET = "AQVNdistinctive-secret-api-key-7f3a9c"
WRONG = "AQVNdistinctive-wrong-key-b71e05"


def scan(folder: Path, needles: tuple[str, ...]) -> list[str]:
    """Files under ``folder`` that contain any needle."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found.extend(f"{path}: {n}" for n in needles if n.encode() in data)
    return found


@pytest.mark.timeout(300)
@pytest.mark.long
def test_quickstart_and_errors_leak_no_secret(tmp_path: Path, isolated_store: Path) -> None:
    """The quickstart and failing cells with distinctive credentials: the secret is nowhere."""
    import nbformat

    from yart_jupyter.notebook.runner import run_notebook

    with standalone("--duration", "0.3", "--images-duration", "0.3", "--api-key", SECRET) as url:
        notebook = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
        log_file = tmp_path / "debug.log"
        notebook.cells.insert(0, nbformat.v4.new_code_cell(
            f"import logging\nlogging.basicConfig(level=logging.DEBUG, filename={str(log_file)!r})"
        ))
        notebook.cells.append(nbformat.v4.new_code_cell(
            "os.environ['YC_API_KEY'] = os.environ['WRONG_KEY']\n"
            "from yart_jupyter.clients.shared import close_shared_clients\nawait close_shared_clients()"
        ))
        notebook.cells.append(nbformat.v4.new_code_cell("%%yandexart --seed 1\nthis fails with the wrong key"))
        notebook.cells.append(nbformat.v4.new_code_cell("print(repr(yart_jupyter.clients.shared.shared_client()))"))
        source = tmp_path / "secrets.ipynb"
        nbformat.write(notebook, source)
        env_backup = dict(os.environ)
        os.environ.update(YANDEXART_BASE_URL=url, YC_API_KEY=SECRET, YC_FOLDER_ID=FOLDER, WRONG_KEY=WRONG)
        try:
            executed = run_notebook(source, workdir=tmp_path, timeout=120, allow_errors=True)
        finally:
            os.environ.clear()
            os.environ.update(env_backup)
    saved = tmp_path / "executed.ipynb"
    nbformat.write(executed, saved)
    errors_seen = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert [e.ename for e in errors_seen] == ["AuthenticationError"], errors_seen  # the wrong key failed, clearly
    assert len(errors_seen[0].traceback) == 1
    assert log_file.stat().st_size > 0 and "DEBUG" in log_file.read_text()
    assert scan(tmp_path, (SECRET, WRONG)) == []
    assert scan(isolated_store, (SECRET, WRONG)) == []
    assert SECRET not in saved.read_text() and WRONG not in saved.read_text()


async def test_credentials_go_only_to_their_endpoints(
    make_client: Callable[..., YandexArtClient], emulator: Emulator
) -> None:
    oauth = "y0_only-for-the-iam-endpoint-123"
    emulator.config.oauth_tokens.add(oauth)
    async with make_client(api_key=None, credentials=OAuthToken(oauth, f"{emulator.url}/iam/v1/tokens")) as client:
        await client.generate("where do secrets go", seed=1)
    for _method, path, headers in emulator.recent:
        if path.startswith("/iam/"):
            assert "Authorization" not in headers  # the OAuth token travels in the body, to the IAM URL only
        else:
            assert headers["Authorization"].startswith("Bearer t1.emu.")
            assert oauth not in json.dumps(headers)


def test_magic_configuration_errors_send_nothing(
    shell: InteractiveShell, thread_emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    close = "from yart_jupyter.clients.shared import close_shared_clients\nawait close_shared_clients()"
    shell.run_cell(close)
    monkeypatch.delenv("YC_FOLDER_ID")
    result = shell.run_cell("%%yandexart --seed 1\nno folder")
    assert isinstance(result.error_in_exec, errors.RequestValidationError) and "YC_FOLDER_ID" in str(
        result.error_in_exec)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    for name in ("YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "YC_SERVICE_ACCOUNT_KEY_FILE", "YC_METADATA_ADDR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    shell.run_cell(close)
    result = shell.run_cell("%%yandexart --seed 1\nno credentials")
    assert isinstance(result.error_in_exec, errors.CredentialsNotFoundError)
    shell.run_cell("%config YandexArt.base_url = 'ftp://example.com'")  # refused at once, with the reason
    assert yart_settings.current().base_url == thread_emulator.url
    shell.run_cell("%config YandexArt.base_url = None")
    monkeypatch.setenv("YANDEXART_BASE_URL", "ftp://example.com")  # the environment is checked when used
    result = shell.run_cell("%%yandexart --seed 1\nbad url")
    assert isinstance(result.error_in_exec, errors.ConfigurationError) and "ftp://" in str(result.error_in_exec)
    shell.run_cell(f"%config YandexArt.base_url = {thread_emulator.url!r}")
    printed = capsys.readouterr()
    assert "Traceback" not in printed.out + printed.err
    assert thread_emulator.stats.requests == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/foundationModels/v1/imageGenerationAsync", "/operations/abc", "/operations/x:cancel",
                          "/iam/v1/tokens", "/computeMetadata/v1/instance/service-accounts/default/token", "/x"]),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    body=st.one_of(st.binary(max_size=300), st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode())),
    auth=st.sampled_from([None, f"Api-Key {KEY}", "Bearer nope", "garbage"]),
)
def test_emulator_survives_garbage(
    thread_emulator: Emulator, path: str, method: str, body: bytes, auth: str | None
) -> None:
    """Fuzz the emulator's endpoints: it answers every request, never with a crash."""

    async def poke() -> int:
        headers = {"Authorization": auth} if auth else {}
        async with aiohttp.ClientSession() as session, session.request(
            method, thread_emulator.url + path, data=body, headers=headers
        ) as response:
            await response.read()
            return response.status

    status = asyncio.run(poke())
    assert status < 500 or status in (503,), status
    logging.getLogger(__name__).debug("fuzz %s %s -> %s", method, path, status)
