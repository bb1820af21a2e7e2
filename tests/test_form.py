"""The form's logic in-process: values, clicks, jobs, gallery, store, validation, no secrets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import ipywidgets as w
import pytest
from ipywidgets.widgets.widget import _instances

from yart_jupyter.clients.shared import close_shared_clients
from yart_jupyter.core.provenance import read_recipe
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.notebook.cards import cell_text
from yart_jupyter.notebook.widget import YandexArtForm
from yart_jupyter.store import get_store

from .conftest import FOLDER, KEY
from .helpers import click_and_wait, picture_data


async def test_setup_line_is_redacted(form: YandexArtForm, emulator: Emulator) -> None:
    assert emulator.url in form.setup.value and FOLDER in form.setup.value
    assert "API key" in form.setup.value and "YC_API_KEY" in form.setup.value
    assert KEY not in form.setup.value


async def test_generate_shows_gallery_and_records(form: YandexArtForm, emulator: Emulator) -> None:
    form.prompt.value = "a grey heron in the reeds"
    form.seed.value = "42"
    form.keep_seed.value = True
    form.aspect.value = "16:9"
    cards = await click_and_wait(form)
    assert len(cards) == 1 and cards[0].image.seed == 42 and str(cards[0].image.aspect) == "16:9"
    assert "seed 42" in cards[0].caption.value and "a grey heron" in cards[0].caption.value
    assert isinstance(cards[0].picture, w.Image) and cards[0].picture.value[:2] == b"\xff\xd8"
    record = get_store().get(cards[0].image.operation_id)
    assert record is not None and record.status == "done"
    assert "1/1 done" in form.gallery.children[0].progress_line.value
    created = emulator.stats.operations_created
    cards = await click_and_wait(form)  # same seed, same prompt: from the store
    assert cards[0].image.cached and emulator.stats.operations_created == created
    assert "cached" in cards[0].caption.value
    assert len(form.gallery.children) == 2  # newest first
    assert form.seed.value == "42"


async def test_generate_does_not_block(form: YandexArtForm, emulator: Emulator) -> None:
    emulator.config.duration = Duration("fixed", 30)
    form.prompt.value = "slow"
    form.generate_button.click()  # returns at once: the job runs as a task
    job = form.jobs[-1]
    assert job.state == "running" and not form.cancel_button.disabled
    await asyncio.sleep(0.5)
    form.cancel_button.click()
    await asyncio.gather(job.task, return_exceptions=True)
    await asyncio.sleep(0.2)
    assert job.state == "cancelled"
    op = job.status.operation_ids[0]
    assert emulator.operations[op].cancelled
    assert get_store().get(op).status == "cancelled"  # type: ignore[union-attr]
    assert "Cancelled" in form.gallery.children[0].progress_line.value
    assert form.cancel_button.disabled


async def test_count_and_fresh_seeds(form: YandexArtForm) -> None:
    form.prompt.value = "three foxes"
    form.count.value = 3
    cards = await click_and_wait(form)
    seeds = [c.image.seed for c in cards]
    assert len(cards) == 3 and seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
    cards2 = await click_and_wait(form)  # keep seed is off: a new random seed
    assert cards2[0].image.seed != seeds[0]


async def test_weighted_messages(form: YandexArtForm, emulator: Emulator) -> None:
    form.prompt.value = "a cat"
    row = form.add_message_row()
    row.text.value = "in watercolour"
    row.weight.value = 0.3
    cards = await click_and_wait(form)
    sent = emulator.operations[cards[0].image.operation_id].messages
    assert sent == [{"text": "a cat", "weight": 1.0}, {"text": "in watercolour", "weight": 0.3}]
    row.remove.click()
    assert form.messages.children == ()


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("prompt", "", "empty"),
        ("prompt", "x" * 501, "at most 500"),
        ("prompt", "a\x00b", "control character"),
        ("seed", "abc", "seed"),
        ("seed", "-1", "seed"),
        ("seed", str(2**63), "seed"),
    ],
)
async def test_invalid_input_disables_generate(
    form: YandexArtForm, emulator: Emulator, field: str, value: str, needle: str
) -> None:
    form.prompt.value = "fine"
    getattr(form, field).value = value
    assert form.generate_button.disabled and needle in form.problem.value
    form.generate_button.click()
    assert form.jobs == [] and emulator.stats.requests == 0


async def test_invalid_aspect_and_weights(form: YandexArtForm, emulator: Emulator) -> None:
    form.prompt.value = "fine"
    form.aspect.value = "custom W:H"  # its field still empty: not sent as the default ratio
    assert form.generate_button.disabled and "write the custom ratio as W:H" in form.problem.value
    for bad in ("0:1", "1:0", "abc", "100000:1", "  "):
        form.custom_aspect.value = bad
        assert form.generate_button.disabled and "aspect" in form.problem.value
    form.custom_aspect.value = "3:1"
    assert not form.generate_button.disabled
    row = form.add_message_row()
    row.text.value = "style"
    for weight in (0, -1, float("nan")):
        row.weight.value = weight
        assert form.generate_button.disabled and "weight" in form.problem.value
    assert emulator.stats.requests == 0


async def test_prompt_counter(form: YandexArtForm) -> None:
    form.prompt.value = "  twelve chars  "
    assert "12/500" in form.counter.value
    form.prompt.value = "x" * 501
    assert "501/500" in form.counter.value and "error" in form.counter.value


async def test_card_actions(form: YandexArtForm, tmp_path: Path) -> None:
    form.prompt.value = "a lighthouse {at} dawn"
    form.seed.value = "7"
    form.keep_seed.value = True
    form.save_folder.value = str(tmp_path / "saved")
    card = (await click_and_wait(form))[0]
    card.save_button.click()
    saved = tmp_path / "saved" / "yandexart-7.jpg"
    assert picture_data(saved.read_bytes()) == picture_data(card.image.image_bytes) and "saved" in card.details.value
    assert read_recipe(saved.read_bytes())["operation_id"] == card.image.operation_id
    card.save_button.click()
    assert (tmp_path / "saved" / "yandexart-7-2.jpg").exists()  # never overwritten
    form.seed.value = "1"
    card.reuse_button.click()
    assert form.seed.value == "7" and form.keep_seed.value
    card.cell_button.click()
    assert card.cell.layout.display == "block"
    assert card.cell.value == "%%yandexart --seed 7 --aspect 1:1 --model yandex-art/latest\na lighthouse {{at}} dawn"
    thumb = card.picture.value
    card.full_button.click()
    assert card.picture.value == card.image.image_bytes and card.full_button.description == "Thumbnail"
    card.full_button.click()
    assert card.picture.value == thumb


async def test_errors_show_in_the_form(form: YandexArtForm, emulator: Emulator) -> None:
    emulator.inject("fail", "start", message="the GPU melted")
    form.prompt.value = "doomed"
    await click_and_wait(form)
    assert "the GPU melted" in form.gallery.children[0].progress_line.value
    form.prompt.value = "something forbidden"
    await click_and_wait(form)
    assert "Content moderation" in form.gallery.children[0].progress_line.value


async def test_no_credentials_disables_generate(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "YC_SERVICE_ACCOUNT_KEY_FILE", "YC_METADATA_ADDR",
                 "YANDEXART_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    panel = YandexArtForm()
    await panel._setup_task  # type: ignore[misc]
    panel.prompt.value = "anything"
    assert panel.generate_button.disabled and "credentials" in panel.problem.value
    assert "YC_API_KEY" in panel.setup.value
    await close_shared_clients()


async def test_no_folder_says_so_and_disables_generate(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.delenv("YC_FOLDER_ID", raising=False)
    panel = YandexArtForm()
    await panel._setup_task  # type: ignore[misc]
    panel.prompt.value = "anything"
    assert "folder not set (YC_FOLDER_ID)" in panel.setup.value and "None" not in panel.setup.value
    assert panel.generate_button.disabled and "no folder_id" in panel.problem.value
    assert "YANDEXART_BASE_URL=emulator" in panel.problem.value
    assert emulator.stats.operations_created == 0
    await close_shared_clients()


async def test_the_setup_line_says_when_the_configured_model_does_not_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off the emulator, the default model (reported denied) is named as such in the form's first line,
    with the one serving; nothing is sent (the endpoint is a name that never resolves)."""
    monkeypatch.setenv("YANDEXART_BASE_URL", "https://yart.invalid")
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    panel = YandexArtForm()
    await panel._setup_task  # type: ignore[misc]
    assert "endpoint https://yart.invalid · folder" in panel.setup.value
    assert "yandex-art/latest is reported denied" in panel.setup.value and "aliceai-image-art-3.0" in panel.setup.value
    await close_shared_clients()
    monkeypatch.setenv("YANDEXART_MIME", "image/png")  # a mistyped variable: the form says so too
    panel = YandexArtForm()
    await panel._setup_task  # type: ignore[misc]
    assert "YANDEXART_MIME is set but read by nothing (did you mean YANDEXART_MIME_TYPE?)" in panel.setup.value
    monkeypatch.delenv("YANDEXART_MIME")
    await close_shared_clients()
    monkeypatch.setenv("YANDEXART_BASE_URL", "http://yart.invalid")  # credentials over plain http: never sent
    panel = YandexArtForm()
    await panel._setup_task  # type: ignore[misc]
    panel.prompt.value = "anything"
    assert "Refusing to send credentials over plain http" in panel.setup.value
    assert panel.generate_button.disabled and "fix the setup above first" in panel.problem.value
    await close_shared_clients()


async def test_no_secret_in_widget_state(form: YandexArtForm) -> None:
    form.prompt.value = "secret check"
    await click_and_wait(form)
    state = json.dumps(
        [widget.get_state() for widget in list(_instances.values())], default=lambda _: "<bytes>"
    )
    assert KEY not in state


def test_cell_text_escapes_braces_and_weights() -> None:
    from yart_jupyter.core.request import AspectRatio, Message
    from yart_jupyter.media.image import GeneratedImage

    image = GeneratedImage(b"", "image/jpeg", 5, AspectRatio(2, 1), (Message("a {b}", 2.0), Message("c", 1.0)), "op")
    assert cell_text(image) == "%%yandexart --seed 5 --aspect 2:1\n--- 2\na {{b}}\n---\nc"
