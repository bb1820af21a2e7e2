"""Settings: every setting reaches every face, one precedence, refusals with the reason."""


import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import yart_jupyter
from yart_jupyter import errors
from yart_jupyter.clients.shared import close_shared_clients
from yart_jupyter.core import config, settings
from yart_jupyter.core.config import CONNECTION_FIELDS, unread_variables
from yart_jupyter.emulator import Emulator

from .conftest import FOLDER, KEY

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
    with pytest.raises(errors.ConfigurationError, match=r"'defualt_aspect'; did you mean default_aspect\?"):
        settings.configure(defualt_aspect="16:9")
    assert settings.current().default_aspect == "1:1"


def test_a_mistyped_variable_is_named_with_the_one_meant() -> None:
    """A variable that looks like ours and is read by nothing would be ignored without a word; it is
    named with the one most likely meant (never its value)."""
    env = {"YANDEXART_DEFAULT_ASPECT": "wide", "YC_FOLDERID": "b1g", "YANDEXART_API_KEY": "secret-value",
           "YANDEXART_FROBNICATE": "1", "YC_TOKEN": "t", "YC_CLOUD_ID": "c", "YANDEXART_ASPECT": "1:1",
           "YC_FOLDER_ID": "b1g", "PATH": "/bin", "YANDEXART_TIMEOUT": "30"}
    assert unread_variables(env) == [
        "YANDEXART_API_KEY is set but read by nothing (did you mean YC_API_KEY?)",
        "YANDEXART_DEFAULT_ASPECT is set but read by nothing (did you mean YANDEXART_ASPECT?)",
        "YANDEXART_FROBNICATE is set but read by nothing (the settings and their variables: %config YandexArt)",
        "YANDEXART_TIMEOUT is set but read by nothing (did you mean YANDEXART_REQUEST_TIMEOUT or "
        "YANDEXART_WAIT_TIMEOUT?)",
        "YC_FOLDERID is set but read by nothing (did you mean YC_FOLDER_ID?)",
    ]


def test_every_variable_the_package_names_is_one_it_reads() -> None:
    """The list the check above rests on cannot go stale: every ``"YANDEXART_..."`` or ``"YC_..."``
    string in the package is a variable it reads (or one of other tools it knows it does not)."""
    package = Path(yart_jupyter.__file__).parent
    named = {m for f in package.rglob("*.py") for m in re.findall(r'"((?:YANDEXART|YC)_[A-Z_]+)"', f.read_text())}
    assert named - set(config.variables()) == set(config._THEIRS)
