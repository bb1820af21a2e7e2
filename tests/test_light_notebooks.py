"""Light notebooks: previews at the shown size, the inline setting, full size one click away, the
form's static copy, the progress bar with time left, and readable random seeds."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image

from yart_jupyter.clients.durations import LogNormal
from yart_jupyter.core.request import RANDOM_SEEDS, AspectRatio, Message, random_seed
from yart_jupyter.core.status import BatchStatus, about_left
from yart_jupyter.emulator import Emulator
from yart_jupyter.media.image import GeneratedImage
from yart_jupyter.media.pixels import preview
from yart_jupyter.present.pictures import images_bundle
from yart_jupyter.present.progress import progress_bundle

from .helpers import html_outputs, run_cell, run_cells
from .shared_data import PHOTO, photo_bytes

#: The issue's targets: bytes a picture adds to the saved notebook.
PER_IMAGE_IN_FOUR = 150_000
SINGLE_IMAGE = 250_000


def embedded(html: str) -> list[tuple[str, bytes]]:
    """Every data-URI picture in an HTML output: (mime, bytes)."""
    return [(m, base64.b64decode(d)) for m, d in re.findall(r'src="data:(image/\w+);base64,([^"]+)"', html)]


def photo_image(**changes: Any) -> GeneratedImage:
    data = photo_bytes()
    fields: dict[str, Any] = dict(image_bytes=data, mime_type="image/jpeg", seed=5, aspect=AspectRatio(1, 1),
                                  messages=(Message("a portrait"),), operation_id="op1")
    fields.update(changes)
    return GeneratedImage(**fields)


# -- previews ----------------------------------------------------------------------------------

def test_preview_is_smaller_and_at_twice_the_shown_size() -> None:
    data = photo_bytes()
    small, mime, size = preview(data, 680)
    assert mime == "image/jpeg" and size == (680, 680) and len(small) < len(data) / 4
    with Image.open(io.BytesIO(small)) as picture:
        assert picture.size == (680, 680)
    same, _, size = preview(data, 4096)  # never larger than the original, never upscaled
    assert size == (1024, 1024) and len(same) <= len(data)


def test_small_png_stays_png_and_large_png_becomes_jpeg() -> None:
    tiny = io.BytesIO()
    Image.new("RGB", (300, 300), (20, 120, 200)).save(tiny, "PNG")
    data, mime, _ = preview(tiny.getvalue(), 680)
    assert mime == "image/png"
    big = io.BytesIO()
    with Image.open(PHOTO) as picture:
        picture.save(big, "PNG")
    data, mime, size = preview(big.getvalue(), 680)
    assert mime == "image/jpeg" and size == (680, 680) and len(data) < 150_000


def test_grid_embeds_previews_and_says_so_while_the_image_keeps_the_service_bytes() -> None:
    images = [photo_image(seed=s, operation_id=f"op{s}") for s in range(4)]
    bundle = images_bundle(images)
    pictures = embedded(bundle["text/html"])
    assert len(pictures) == 4
    for mime, data in pictures:
        with Image.open(io.BytesIO(data)) as picture:
            assert mime == "image/jpeg" and picture.size == (680, 680)  # twice the 340 px it is shown at
    assert bundle["text/html"].count("preview 680×680") == 4
    assert all(image.image_bytes == photo_bytes() for image in images)
    single = embedded(images_bundle(images[:1])["text/html"])[0][1]
    assert len(single) < len(photo_bytes())
    full = embedded(images_bundle(images[:1], inline="full")["text/html"])[0][1]
    assert full == photo_bytes()
    none = images_bundle(images, inline="none")["text/html"]
    assert "<img" not in none and none.count("not embedded") == 4 and "seed 3" in none


def test_a_saved_picture_links_to_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    image = photo_image()
    image.save(tmp_path / "out" / "portrait.jpg")
    assert 'href="out/portrait.jpg"' in images_bundle([image])["text/html"]
    spaced = photo_image()
    spaced.save(tmp_path / "my pictures" / "a portrait.jpg")
    assert 'href="my%20pictures/a%20portrait.jpg"' in images_bundle([spaced])["text/html"]
    elsewhere = photo_image()
    elsewhere.saved.append(tmp_path.parent / "elsewhere.jpg")  # outside the notebook's folder: no link
    assert "href=" not in images_bundle([elsewhere])["text/html"]


def test_inline_setting_in_the_magic(shell: InteractiveShell, thread_emulator: Emulator,
                                    caplog: pytest.LogCaptureFixture) -> None:
    thread_emulator.config.photo = photo_bytes()
    try:
        _, captured = run_cell(shell, "%%yandexart --seed 1 2\na portrait")
        pictures = embedded(html_outputs(captured))
        assert len(pictures) == 2 and all(len(d) < len(photo_bytes()) / 4 for _, d in pictures)
        assert "preview" in html_outputs(captured)
        images = shell.user_ns["_"]
        assert all(image.image_bytes == photo_bytes() for image in images)  # the service's exact bytes

        run_cell(shell, '%config YandexArt.inline = "full"')
        _, captured = run_cell(shell, "%%yandexart --seed 3\na portrait")
        assert [d for _, d in embedded(html_outputs(captured))] == [photo_bytes()]

        run_cell(shell, '%config YandexArt.inline = "none"')
        _, captured = run_cell(shell, "%%yandexart --seed 4\na portrait")
        assert "<img" not in html_outputs(captured) and "seed 4" in html_outputs(captured)

        run_cell(shell, '%config YandexArt.inline = "huge"')
        assert "inline must be one of 'preview', 'full', 'none', not 'huge'" in caplog.text
        assert shell.run_cell("from yart_jupyter.core.settings import current\ncurrent().inline").result == "none"
    finally:
        thread_emulator.config.photo = None


# -- progress ----------------------------------------------------------------------------------

def test_progress_bar_counts_every_state_and_estimates_time_left() -> None:
    status = BatchStatus(6)
    status.estimate = LogNormal.from_median(10.0, 0.3).remaining
    for op in ("a", "b", "c", "d"):
        status.mark_started(op)
    status.finished_ids.add("a")
    status.failed, status.cached = 1, 1
    status.failed_ids.add("b")
    text = status.text()
    assert "2/6 done" in text and "2 running" in text and "1 from the store" in text and "1 failed" in text
    assert re.search(r"about (9|10) s left", text), text
    bundle = progress_bundle(status)
    assert bundle["text/html"].count("yart-bar-part") == 4
    assert bundle["text/plain"].startswith("[") and "2 running" in bundle["text/plain"]
    status.started = {op: time.monotonic() - 30 for op in status.started}  # well past the median
    assert "about" in status.text() and "s left" in status.text()
    assert about_left(0.4) == "about 1 s left" and about_left(150) == "about 2 min left"


def test_an_images_api_request_is_timed_by_the_answers_not_the_operations() -> None:
    """A synchronous request's time left comes from the Images API's answer times, counted from when
    it went out; an operation's from the operations' durations; both in one line's estimate."""
    status = BatchStatus(2)
    status.estimate = LogNormal.from_median(2.0, 0.3).remaining  # operations: about 2 s
    for key in ("k1", "k2"):
        status.queued(key, synchronous=True)
    assert "left" not in status.text()  # nothing learned about answers: no guess from the operations
    status.answer_estimate = LogNormal.from_median(20.0, 0.3).remaining
    assert re.search(r"about (19|20|21) s left", status.text()), status.text()
    for key in ("k1", "k2"):
        status.submitting(key, synchronous=True)
    status.sent = {key: time.monotonic() - 15 for key in status.sent}  # out 15 s: a few seconds more
    left = status.time_left()
    assert left is not None and 3 < left < 10, left
    status.answered("k1", "img-1")
    status.failed_item(key="k2", answer_lost=True)  # no longer awaited by the estimate
    assert status.sent == {} and status.queued_sync == set()
    assert status.time_left() is None  # img-1's picture is in hand: not an operation to wait for
    mixed = BatchStatus(2, estimate=status.estimate, answer_estimate=status.answer_estimate)
    mixed.mark_started("op")
    mixed.queued("k3", synchronous=True)
    assert re.search(r"about (19|20|21) s left", mixed.text()), mixed.text()  # the longer of the two


def test_the_line_says_starting_only_while_a_start_is_on_its_way() -> None:
    status = BatchStatus(1)
    status.queued("k")
    assert status.text().endswith("· starting")
    status.failed_item(key="k")  # e.g. no credentials: the one start failed before it went out
    assert "1 failed" in status.text() and "starting" not in status.text()


def test_an_interrupt_says_how_to_collect_in_the_faces_own_words() -> None:
    from yart_jupyter.core.status import CLI_COLLECT, PYTHON_COLLECT

    status = BatchStatus(2)
    for op in ("op1", "op2"):
        status.mark_started(op)
    assert status.interrupted_text()[1] == \
        "Collect with `%yandexart resume op1` (one id at a time, or `%yandexart resume --all`); running the cell " \
        "again collects them too"
    assert status.interrupted_text(CLI_COLLECT)[1] == \
        "Collect with `yart resume op1` (one id at a time, or `yart resume --all`)"
    assert status.interrupted_text(PYTHON_COLLECT)[1] == \
        "Collect with `await yart_jupyter.resume('op1')` (one id at a time)"
    lost = BatchStatus(1)
    lost.queued("k")
    lost.submitting("k", synchronous=True)
    assert lost.interrupted_text(CLI_COLLECT)[1] == \
        "yart pending lists it; `yart resume --all --resend-lost` sends it again if you decide to"


class RecordingView:
    """A BatchView that keeps every progress text and bar it was shown."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.bars: list[str] = []

    def progress(self, status: BatchStatus) -> None:
        self.texts.append(status.text())
        self.bars.append(progress_bundle(status)["text/plain"])

    def prepare_picture(self, image: Any) -> None:
        pass

    def prepare_finish(self, images: Any) -> list[str]:
        return []

    def item(self, event: Any) -> None:
        pass

    def finished(self, images: Any, failures: Any, notes: Any) -> None:
        self.texts.append("finished")

    def stopped(self, status: BatchStatus) -> None:
        self.texts.append("stopped")


async def test_running_batch_shows_running_and_time_left(client: Any, emulator: Emulator,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from yart_jupyter.clients.durations import DurationModel
    from yart_jupyter.core.request import build_request
    from yart_jupyter.emulator import Duration
    from yart_jupyter.engine import Batch, run_in_view, views

    model = DurationModel()
    monkeypatch.setattr(views, "DURATIONS", model)
    assert views.time_left(1.0) is None  # nothing finished yet: no guess from the prior
    model.observe(2.5, "1:1", "m")
    emulator.config.duration = Duration("fixed", 2.5)
    view = RecordingView()
    requests = [build_request("a slow one", seed=s, folder_id="emulator-folder") for s in (1, 2)]
    images = await run_in_view(client, None, Batch(requests), view)
    assert len(images) == 2 and view.texts[-1] == "finished"
    running = [t for t in view.texts if "2 running" in t]
    assert running and any(re.search(r"about \d+ s left", t) for t in running), view.texts
    assert any(bar.startswith("[====") for bar in view.bars)  # the running part of the bar


def test_glyphs_are_the_few_that_render() -> None:
    from yart_jupyter.present import html as display

    bundle = progress_bundle(BatchStatus(3))
    assert "⏳" not in json.dumps(bundle, ensure_ascii=False)
    assert {display.FAILED, display.WARNING, display.BULLET} == {"✖", "⚠", "•"}


# -- seeds -------------------------------------------------------------------------------------

def test_random_seeds_are_short_and_distinct_in_a_batch(shell: InteractiveShell) -> None:
    seeds = {random_seed() for _ in range(2000)}
    assert all(1 <= s <= RANDOM_SEEDS for s in seeds) and len(str(RANDOM_SEEDS)) == 6
    assert random_seed(avoid=set(range(1, RANDOM_SEEDS))) == RANDOM_SEEDS
    run_cell(shell, "%%yandexart --count 8\na fox")
    drawn = [image.seed for image in shell.user_ns["_"]]
    assert len(set(drawn)) == 8 and all(len(str(s)) <= 6 for s in drawn)


# -- in a real kernel (nbclient) -------------------------------------------------------------

def cell_weight(notebook: Any, index: int) -> int:
    """The bytes cell ``index``'s outputs add to the saved notebook."""
    import nbformat

    without = nbformat.from_dict(json.loads(nbformat.writes(notebook)))
    without.cells[index].outputs = []
    return len(nbformat.writes(notebook).encode()) - len(nbformat.writes(without).encode())


@pytest.mark.long
def test_notebook_with_the_photograph_stays_light(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    import nbformat

    monkeypatch.setenv("YANDEXART_EMULATOR_PHOTO", str(PHOTO))
    monkeypatch.setenv("YANDEXART_EMULATOR_DURATION", "0.3")
    monkeypatch.setenv("YANDEXART_BASE_URL", "emulator")
    cells = [
        "import yart_jupyter\n%load_ext yart_jupyter",
        "%%yandexart --seed 1-4\na portrait",
        "%%yandexart --seed 9\na portrait",
        f"img = _\nassert img.image_bytes == open({str(PHOTO)!r}, 'rb').read()\n"
        "img.path.read_bytes() == img.image_bytes",
        "f = yart_jupyter.form()\nf",
        "f.prompt.value = 'a portrait'\nf.seed.value = '77'\nf.keep_seed.value = True\njob = f.generate()",
        "await job.task",
        '%config YandexArt.inline = "full"',
        "%%yandexart --seed 9\na portrait",
    ]
    executed = run_cells(cells, tmp_path / "light.ipynb", timeout=180)
    nbformat.write(executed, tmp_path / "executed.ipynb")
    assert not [o for c in executed.cells for o in c.outputs if o.output_type == "error"]

    four, single, full = cell_weight(executed, 1) / 4, cell_weight(executed, 2), cell_weight(executed, 8)
    print(f"\nbytes added per image: 4-image cell {four:.0f}, single {single}, inline=full {full}")
    assert four <= PER_IMAGE_IN_FOUR and single <= SINGLE_IMAGE
    assert full > len(photo_bytes()) * 4 / 3  # full restores the service's bytes, base64

    html = "".join(o.get("data", {}).get("text/html", "") for o in executed.cells[1].outputs)
    assert len(embedded(html)) == 4 and "preview 680×680" in html
    assert executed.cells[3].outputs[0]["data"]["text/plain"] == "True"  # the store has the full file
    views = [o for o in executed.cells[2].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1  # the full-size button under the preview

    form_outputs = executed.cells[4].outputs
    copy = "".join(o.get("data", {}).get("text/html", "") for o in form_outputs)
    assert "yart-static-copy" in copy and "seed 77" in copy and len(embedded(copy)) == 1
    assert len(embedded(copy)[0][1]) < len(photo_bytes()) / 4
    assert "text/plain" in form_outputs[0]["data"]  # the widget view has a fallback too


def test_static_copy_keeps_the_newest_and_the_live_form_hides_it() -> None:
    from yart_jupyter.present.pictures import STATIC_COPY_LIMIT, hide_static_copy, static_copy_bundle

    images = [photo_image(seed=s, operation_id=f"op{s}") for s in range(STATIC_COPY_LIMIT + 2)]
    copy = static_copy_bundle(images, "abc")["text/html"]
    assert copy.count("<figure") == STATIC_COPY_LIMIT and "2 older ones are in %yandexart history" in copy
    assert 'data-form="abc"' in copy and 'seed 0 ' in copy and f"seed {STATIC_COPY_LIMIT + 1}" not in copy
    assert '.yart-static-copy[data-form="abc"]{display:none}' in hide_static_copy("abc")
    assert static_copy_bundle([], "abc") == {"text/plain": ""}


def test_a_forms_copy_shown_again_embeds_as_the_inline_setting_says(shell: InteractiveShell) -> None:
    """A form displayed again after its pictures came shows its copy as ``inline`` says, as the
    copy's updates do (it was built with the default, previews, whatever the setting)."""
    from IPython.utils.capture import capture_output

    from yart_jupyter.present.live import StaticCopy

    copy = StaticCopy()
    copy.pictures = [photo_image(seed=5)]
    shell.run_cell('%config YandexArt.inline = "full"')
    with capture_output() as captured:
        copy.show()
    html = captured.outputs[0].data["text/html"]
    assert "yart-static-copy" in html and embedded(html)[0][1] == photo_bytes()


def test_full_size_buttons_read_the_stored_file(tmp_path: Path) -> None:
    from yart_jupyter.present.fullsize import full_size

    stored = tmp_path / "op1.jpg"
    stored.write_bytes(photo_bytes())
    viewer = full_size([photo_image(path=stored), photo_image(seed=6, operation_id="op2")])
    assert [b.description for b in viewer.buttons] == ["seed 5", "seed 6"]
    viewer.toggle(0)
    assert viewer.picture.value == photo_bytes() and viewer.picture.layout.display == "block"
    viewer.toggle(0)
    assert viewer.picture.value == b"" and viewer.picture.layout.display == "none"  # hidden and freed
    stored.unlink()
    viewer.toggle(0)
    assert "cannot be read" in viewer.note.value and viewer.picture.layout.display == "none"
    assert "live kernel" in repr(viewer)
