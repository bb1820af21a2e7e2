"""The recipe in every image file: writers, real-world readers, pixel identity, notebooks, hostile files."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image

import yart_jupyter
from yart_jupyter import errors
from yart_jupyter.core.provenance import (
    ProvenanceError,
    embed,
    info,
    read_recipe,
)
from yart_jupyter.core.request import AspectRatio, Message
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.media.image import GeneratedImage

from .conftest import FOLDER, KEY
from .helpers import one_line_error, picture_data, run_cell
from .shared_data import PHOTO, photo_bytes


@pytest.fixture(autouse=True)
def _photo_is_there() -> None:
    photo_bytes()


def photo_png() -> bytes:
    out = io.BytesIO()
    with Image.open(PHOTO) as picture:
        picture.convert("RGB").save(out, "PNG")
    return out.getvalue()


def make(data: bytes, mime: str) -> GeneratedImage:
    return GeneratedImage(
        image_bytes=data, mime_type=mime, seed=1863, aspect=AspectRatio(2, 1),
        messages=(Message("a pattern of succulents, {curly} & <b>", 1.0), Message("soft watercolour", 0.3)),
        operation_id="fbvt38u3kmbosuqp10bg", model_version="yandex-art-2.5", model_uri="art://f1/yandex-art/latest",
        submitted_at=datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc),
        done_at=datetime(2026, 12, 1, 10, 0, 14, tzinfo=timezone.utc),
    )


@pytest.fixture(params=["image/jpeg", "image/png"])
def image(request: pytest.FixtureRequest) -> GeneratedImage:
    return make(PHOTO.read_bytes() if request.param == "image/jpeg" else photo_png(), request.param)


def test_save_round_trip_keeps_the_pixels(image: GeneratedImage, tmp_path: Path) -> None:
    path = image.save(tmp_path / "out")
    written = path.read_bytes()
    recipe = read_recipe(written)
    assert recipe == image.recipe() == info(path)
    assert recipe["seed"] == 1863 and recipe["aspect"] == "2:1" and recipe["model_version"] == "yandex-art-2.5"
    assert [m["weight"] for m in recipe["messages"]] == [1.0, 0.3]
    assert recipe["submitted_at"] == "2026-12-01T10:00:00Z" and recipe["generator"].startswith("yart_jupyter ")
    assert picture_data(written) == picture_data(image.image_bytes)  # the compressed picture, byte for byte
    with Image.open(path) as after, Image.open(io.BytesIO(image.image_bytes)) as before:
        assert after.tobytes() == before.tobytes()  # and the decoded pixels
    assert image.image_bytes[:4] != written[:4] or len(written) > len(image.image_bytes)


def test_real_world_readers(image: GeneratedImage, tmp_path: Path) -> None:
    path = image.save(tmp_path / "out")
    with Image.open(path) as picture:  # Pillow
        if image.mime_type == "image/png":
            assert "Seed: 1863" in picture.info["parameters"]
            assert "yart:recipe" in picture.info["XML:com.adobe.xmp"]
        else:
            assert b"yart:recipe" in picture.info["xmp"]
            comment = picture.getexif().get_ifd(0x8769)[0x9286]
            assert b"S\x00e\x00e\x00d\x00:\x00 \x001\x008\x006\x003" in comment
    exiftool = shutil.which("exiftool")
    assert exiftool, "exiftool is needed (Debian's libimage-exiftool-perl; .ci/run installs it)"
    found = json.loads(subprocess.run([exiftool, "-j", "-XMP:all", "-EXIF:UserComment", "-PNG:all", str(path)],
                                      capture_output=True, text=True, check=True).stdout)[0]
    assert found["Seed"] == 1863 and found["OperationId"] == "fbvt38u3kmbosuqp10bg"
    assert json.loads(found["Recipe"]) == image.recipe()
    line = found.get("UserComment") or found.get("Parameters")
    assert line.startswith("a pattern of succulents") and "Seed: 1863, Aspect: 2:1" in line


def test_every_writer_embeds_the_recipe(shell: InteractiveShell, tmp_path: Path) -> None:
    run_cell(shell, f"%%yandexart --seed 5 6 --out {tmp_path}/cell-{{seed}}.jpg\na fox in the snow")
    for seed in (5, 6):
        recipe = info(tmp_path / f"cell-{seed}.jpg")
        assert isinstance(recipe, dict) and recipe["seed"] == seed
        assert recipe["messages"][0]["text"] == "a fox in the snow"
    result = shell.run_cell(
        "import asyncio\nawait asyncio.sleep(0)\nimport yart_jupyter\n"
        f"_f = yart_jupyter.form()\n_f.save_folder.value = {str(tmp_path / 'form')!r}\n"
        "_f.prompt.value = 'from the form'\n_f.seed.value = '8'\n_f.keep_seed.value = True\n"
        "_imgs = await _f.generate()\n_saved = _f.gallery.children[0].images.children[0].save()"
    )
    assert result.success, result.error_in_exec
    recipe = info(shell.user_ns["_saved"])
    assert isinstance(recipe, dict) and recipe["seed"] == 8


@pytest.mark.long
def test_notebook_and_exported_html_keep_every_recipe(tmp_path: Path) -> None:
    import nbformat

    from yart_jupyter.notebook.runner import run_notebook, write_outputs

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext yart_jupyter\n%config YandexArt.base_url = 'emulator'"),
        nbformat.v4.new_code_cell("%%yandexart --seed 3 4\na lighthouse"),
    ]
    source = tmp_path / "recipes.ipynb"
    nbformat.write(notebook, source)
    executed = run_notebook(source, workdir=tmp_path, timeout=120)
    ipynb, page = write_outputs(executed, tmp_path / "out", "recipes")
    for document in (ipynb, page):
        recipes = info(document)
        assert isinstance(recipes, list) and sorted(r["seed"] for r in recipes) == [3, 4], document
        assert all(r["messages"][0]["text"] == "a lighthouse" for r in recipes)


# -- hostile and broken input: one line each, bounded, nothing written or sent ------------------

def _png_with(chunk_type: bytes, payload: bytes) -> bytes:
    data = photo_png()
    end = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
    chunk = struct.pack(">I", len(payload)) + chunk_type + payload + struct.pack(">I", zlib.crc32(chunk_type + payload))
    return data[:end] + chunk + data[end:]


BOMB = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><x:xmpmeta xmlns:yart="https://yart-jupyter.github.io/ns/recipe/1.0/">'
        b"<yart:recipe>&c;</yart:recipe></x:xmpmeta>")


def hostile_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = embed(PHOTO.read_bytes(), make(PHOTO.read_bytes(), "image/jpeg").recipe())
    damaged = good.replace(b'"seed": 1863', b'"seed": 18!!')
    files = {
        "no recipe": (PHOTO.read_bytes(), "no yart_jupyter recipe"),
        "damaged recipe": (damaged, "damaged"),
        "truncated": (_png_with(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + b"x" * 100)[:200], "truncated"),
        "not an image": (b"hello, I am text\n" * 10, "not a JPEG or PNG"),
        "huge packet": (_png_with(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + b"<x/>" * 2_000_000),
                        "more than is ever written"),
        "entity expansion": (_png_with(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + BOMB), "DTD or entities"),
    }
    out = {}
    for name, (data, message) in files.items():
        path = tmp_path / (name.replace(" ", "-") + ".img")
        path.write_bytes(data)
        out[name] = (path, message)
    out["missing file"] = (tmp_path / "nope.jpg", "Cannot read")
    return out


def test_hostile_and_broken_files_are_one_line(tmp_path: Path) -> None:
    for name, (path, message) in hostile_files(tmp_path).items():
        started = time.monotonic()
        with pytest.raises(ProvenanceError) as caught:
            info(path)
        assert time.monotonic() - started < 2, name
        text = str(caught.value)
        assert message in text and "\n" not in text, (name, text)


def test_info_magic_errors_send_nothing(shell: InteractiveShell, thread_emulator: Emulator, tmp_path: Path) -> None:
    before = thread_emulator.stats.requests
    for name, (path, message) in hostile_files(tmp_path).items():
        result = shell.run_cell(f"%yandexart info {path}")
        assert isinstance(result.error_in_exec, errors.YandexArtError), name
        assert message in str(result.error_in_exec)
        assert result.error_in_exec._render_traceback_()[0].count("\n") == 0
    assert thread_emulator.stats.requests == before
    assert not list(tmp_path.glob("*.part"))


# -- info, rerun and the reproducibility guard --------------------------------------------------

def test_info_shows_the_cell_that_makes_it_again(shell: InteractiveShell, tmp_path: Path) -> None:
    path = make(PHOTO.read_bytes(), "image/jpeg").save(tmp_path / "made.jpg")
    _result, captured = run_cell(shell, f"%yandexart info {path}")
    html = captured.outputs[-1].data["text/html"]
    assert "%%yandexart --seed 1863 --aspect 2:1" in html and "--- 0.3" in html and "{{curly}}" in html
    assert "yandex-art-2.5" in html and "<img" in html


def test_the_cell_that_makes_it_again_names_its_model() -> None:
    """On the same model whatever the reader's default: a catalogue model by its short name (the
    reader's folder fills it in), another by its URI."""
    from yart_jupyter.core.provenance import cell_text

    recipe = {"seed": 5, "aspect": "1:1", "messages": [{"text": "a crane", "weight": 1}]}
    assert cell_text(recipe) == "%%yandexart --seed 5 --aspect 1:1\na crane"
    assert cell_text({**recipe, "model_uri": "art://b1gfolder/yandex-art-2.0"}).splitlines()[0] == \
        "%%yandexart --seed 5 --aspect 1:1 --model yandex-art-2.0"
    assert cell_text({**recipe, "seed": None, "model_uri": "art://b1gfolder/aliceai-image-art-3.0"}).splitlines()[0] \
        == "%%yandexart --aspect 1:1 --model aliceai-image-art-3.0"
    assert cell_text({**recipe, "model_uri": "art://b1gfolder/brand-new"}).splitlines()[0].endswith(
        "--model art://b1gfolder/brand-new")


def test_rerun_of_a_colleagues_file_runs_in_my_folder(shell: InteractiveShell, tmp_path: Path) -> None:
    """A picture made in another folder (its recipe says art://f1/...): the rerun asks for the same
    model in the reader's folder, not in one the reader has no access to."""
    path = make(PHOTO.read_bytes(), "image/jpeg").save(tmp_path / "theirs.jpg")
    result, _ = run_cell(shell, f"%yandexart rerun {path} --no-cache")
    assert result.success, result.error_in_exec
    assert shell.user_ns["_"].model_uri == f"art://{FOLDER}/yandex-art/latest"


def test_rerun_from_a_file_and_from_an_operation(shell: InteractiveShell, thread_emulator: Emulator,
                                                 tmp_path: Path) -> None:
    thread_emulator.config.model_version = "v1"
    run_cell(shell, f"%%yandexart --seed 12 --out {tmp_path}/first.jpg\na heron")
    first = shell.user_ns["_"]
    _, captured = run_cell(shell, f"%yandexart rerun {tmp_path}/first.jpg")
    assert "answered from the local store" in captured.outputs[-1].data["text/plain"]
    _, captured = run_cell(shell, f"%yandexart rerun {first.operation_id} --no-cache")
    assert "identical" in captured.outputs[-1].data["text/plain"]
    assert shell.user_ns["_"].operation_id != first.operation_id  # made again, really
    thread_emulator.config.model_version = "v2"
    _, captured = run_cell(shell, f"%yandexart rerun {tmp_path}/first.jpg --no-cache")
    assert "model version v1 then, v2 now" in captured.outputs[-1].data["text/plain"]
    newest = shell.user_ns["_"]
    _, captured = run_cell(shell, "%yandexart rerun #1")  # a history entry, as compare takes them
    assert f"Rerun of {newest.operation_id}: answered from the local store" in captured.outputs[-1].data["text/plain"]
    result, captured = run_cell(shell, "%yandexart rerun #9")
    assert one_line_error(result, captured) == \
        "RerunError: %yandexart rerun: history has no entry #9 (it has 3); %yandexart history lists them."


def test_info_of_a_history_entry_or_an_operation(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    """info takes what rerun and compare take: #N or an operation id shows the store's recipe and the
    cell that makes it; a generation that made no picture says why above its recipe."""
    run_cell(shell, "%%yandexart --seed 12 --aspect 2:1\na heron")
    heron = shell.user_ns["_"]
    for reference in ("#1", "1", heron.operation_id):
        result, captured = run_cell(shell, f"%yandexart info {reference}")
        assert result.success, result.error_in_exec
        html = captured.outputs[-1].data["text/html"]
        assert "%%yandexart --seed 12 --aspect 2:1 --model yandex-art/latest\na heron" in html and "<img" in html
        assert shell.user_ns["_"]["operation_id"] == heron.operation_id
    thread_emulator.inject("fail", "start", message="the GPU melted")
    run_cell(shell, "%%yandexart --seed 13\na heron at dusk")
    _, captured = run_cell(shell, "%yandexart info #1")
    text = captured.outputs[-1].data["text/plain"]
    assert text.startswith("• #1: failed: ") and "The cell below makes it." in text, text
    assert "%%yandexart --seed 13 --aspect 1:1" in text and "<img" not in captured.outputs[-1].data["text/html"]
    duration = thread_emulator.config.duration
    thread_emulator.config.duration = Duration("fixed", 30)
    try:  # one still running: collect it, not run its cell (another picture, paid for)
        run_cell(shell, "%%yandexart --seed 14 --timeout 0.2\na heron at night")
        _, captured = run_cell(shell, "%yandexart info #1")
    finally:
        thread_emulator.config.duration = duration
    assert captured.outputs[-1].data["text/plain"].startswith(
        "• #1: pending, still on its way: collect it rather than run the cell below")
    result, captured = run_cell(shell, "%yandexart info #7")
    assert one_line_error(result, captured) == \
        "RerunError: %yandexart info: history has no entry #7 (it has 3); %yandexart history lists them."
    result, captured = run_cell(shell, "%yandexart info no-such.jpg")  # a name that is no entry: the file's error
    assert one_line_error(result, captured) == "ProvenanceError: Cannot read no-such.jpg: No such file or directory."


async def test_rerun_in_python(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """yart_jupyter.rerun(): the same sources as the magic's, the new picture and whether its pixels
    match; a source naming nothing is a LookupError that says where to look, and nothing is sent."""
    from yart_jupyter.clients.shared import close_shared_clients
    from yart_jupyter.experiments.rerun import RerunError

    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    try:
        first = await yart_jupyter.generate("a heron in reeds", seed=31)
        path = first.save(tmp_path / "heron.jpg")
        cached = await yart_jupyter.rerun(path)
        assert cached.same and cached.image.cached and "answered from the local store" in repr(cached)
        made = await yart_jupyter.rerun("#1", cache=False)
        assert made.same is True and not made.image.cached and made.image.operation_id != first.operation_id
        assert repr(made) == f"Rerun of {first.operation_id}: the new pixels are identical to the old ones."
        shown, _ = made._repr_mimebundle_()  # in a notebook: the verdict over the picture
        assert shown["text/html"].startswith('<div class="yart-rerun"') and "<img" in shown["text/html"]
        sample = await yart_jupyter.generate("a heron", model="aliceai-image-art-3.0")
        again = await yart_jupyter.rerun(sample.operation_id)
        assert again.same is False and "the model takes no seed" in again.verdict
        requests = emulator.stats.requests
        with pytest.raises(LookupError) as raised:
            await yart_jupyter.rerun("#9")
        assert isinstance(raised.value, RerunError) and str(raised.value).startswith(
            "yart_jupyter.rerun(): history has no entry #9 (it has 4); yart_jupyter.history() lists them")
        assert emulator.stats.requests == requests
    finally:
        await close_shared_clients()


def test_mixed_model_versions_are_noted(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.config.model_version = "v1"
    run_cell(shell, "%%yandexart --seed 21\na crane")
    thread_emulator.config.model_version = "v2"
    _, captured = run_cell(shell, "%%yandexart --seed 21 22\na crane")  # 21 from the store (v1), 22 made by v2
    text = captured.outputs[-1].data["text/plain"]
    assert "2 model versions (v1, v2)" in text and "answered from the store" in text
