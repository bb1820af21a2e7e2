"""Every model the service serves: the catalogue, the Images API against the emulator over loopback,
and each face (magic, form, batch, ``yart``) on a model without seeds."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import yart_jupyter
from yart_jupyter import errors
from yart_jupyter.clients.client import Progress, YandexArtClient
from yart_jupyter.clients.images_api import is_images_id
from yart_jupyter.clients.shared import close_shared_clients
from yart_jupyter.core.models import CATALOGUE, DEFAULT_MODEL, LIVING_MODEL, resolve, table_text
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.media.image import GeneratedImage
from yart_jupyter.media.pixels import image_size
from yart_jupyter.store import get_store

from .conftest import FOLDER, KEY, Ran

ALICE = LIVING_MODEL


# -- the catalogue ---------------------------------------------------------------------------------

def test_the_catalogue_knows_todays_models() -> None:
    assert DEFAULT_MODEL == "yandex-art/latest" and ALICE == "aliceai-image-art-3.0"
    assert {"yandex-art/latest", "yandex-art-2.0", ALICE} <= set(CATALOGUE)
    alice = CATALOGUE[ALICE]
    assert alice.api == "images" and not alice.seeds and not alice.weights
    assert CATALOGUE["yandex-art/latest"].api == "operations" and CATALOGUE["yandex-art/latest"].seeds
    assert "2026-09" in CATALOGUE["yandex-art/latest"].status and "2026-08" in CATALOGUE["yandex-art-2.0"].status
    text = table_text()
    for name in CATALOGUE:
        assert name in text
    assert "Images API" in text and "no" in text


@pytest.mark.parametrize("name,uri,api", [
    (None, f"art://{FOLDER}/yandex-art/latest", "operations"),
    (ALICE, f"art://{FOLDER}/{ALICE}", "images"),
    (f"art://other/{ALICE}", f"art://other/{ALICE}", "images"),
    ("yandex-art-2.0", f"art://{FOLDER}/yandex-art-2.0", "operations"),
    ("images:brand-new-model", f"art://{FOLDER}/brand-new-model", "images"),
    ("operations:brand-new-model", f"art://{FOLDER}/brand-new-model", "operations"),
    ("brand-new-model", f"art://{FOLDER}/brand-new-model", "operations"),
])
def test_a_model_is_named_by_short_name_or_uri(name: str | None, uri: str, api: str) -> None:
    model = resolve(name, FOLDER)
    assert (model.uri, model.spec.api) == (uri, api)
    assert model.spec.known == (name is None or "brand-new" not in name)


def test_bad_model_names_are_refused() -> None:
    for bad in ("art://", "two words", "https://example.com/model"):
        with pytest.raises(errors.RequestValidationError, match="model_uri"):
            resolve(bad, FOLDER)
    with pytest.raises(errors.RequestValidationError, match="folder_id") as missing:
        resolve(ALICE, None)
    # A first run with nothing set: what is missing, where it goes, and how to try with no account.
    assert str(missing.value).startswith(f"no folder_id: the model {ALICE} is named art://<folder>/{ALICE}")
    assert "YC_FOLDER_ID" in str(missing.value) and "YANDEXART_BASE_URL=emulator" in str(missing.value)
    assert "None" not in str(missing.value)


# -- the Images API, from the client -------------------------------------------------------------

async def test_images_api_round_trip(client: YandexArtClient, emulator: Emulator) -> None:
    request = client.build_request("a lighthouse at dawn", aspect="16:9", model=ALICE)
    assert request.api == "images" and request.seed is None and not request.reproducible
    assert request.to_json() == {"model": f"art://{FOLDER}/{ALICE}", "prompt": "a lighthouse at dawn",
                                 "size": "16x9"}
    events: list[Progress] = []
    image = await client.generate(request, on_progress=events.append)
    assert image.seed is None and is_images_id(image.operation_id)
    assert image_size(image.image_bytes) == (1344, 768)  # the model's own size for 16:9
    assert image.model_uri == f"art://{FOLDER}/{ALICE}" and image.revised_prompt is None
    assert [e.phase for e in events] == ["starting", "done"]
    method, path, headers = emulator.recent[0]
    assert (method, path) == ("POST", "/v1/images/generations")
    assert headers["Authorization"] == f"Api-Key {KEY}"
    assert headers["OpenAI-Project"] == FOLDER and headers["x-folder-id"] == FOLDER
    assert emulator.stats.images_generated == 1 and not emulator.operations


async def test_images_api_answers_with_a_link_and_a_revised_prompt(client: YandexArtClient,
                                                                   emulator: Emulator) -> None:
    emulator.config.images_as_url = True
    emulator.config.revised_prompt = "a lighthouse at dawn, soft light"
    image = await client.generate("a lighthouse", model=ALICE)
    assert image.revised_prompt == "a lighthouse at dawn, soft light" and image.image_bytes[:2] == b"\xff\xd8"
    assert "the service drew: a lighthouse at dawn, soft light" in image.prompt_line
    assert image.recipe()["revised_prompt"] == "a lighthouse at dawn, soft light"
    from yart_jupyter.present.pictures import recipe_bundle

    shown = recipe_bundle(image.recipe())["text/plain"]  # %yandexart info's table says both
    assert "revised prompt: a lighthouse at dawn, soft light" in shown
    assert "seed: none (the model takes no seed: the cell below makes a new picture)" in shown
    download = emulator.recent[-1]
    assert download[0] == "GET" and download[1].startswith("/_emulator/pictures/")
    assert "Authorization" not in download[2]  # the API's credentials are not handed to a picture link
    emulator.inject("status", "picture", status=404)
    with pytest.raises(errors.AnswerLostError, match="link could not be read"):
        await client.generate("a lighthouse", model=ALICE)
    assert emulator.stats.images_generated == 2


def test_a_seed_on_a_seedless_model_is_one_clear_line(make_client: Callable[..., YandexArtClient]) -> None:
    client = make_client()
    with pytest.raises(errors.RequestValidationError) as caught:
        client.build_request("a fox", seed=5, model=ALICE)
    text = str(caught.value)
    assert ALICE in text and "no seed" in text and "leave the seed out" in text and "\n" not in text
    assert "count=" not in text  # generate() has no count: the advice names only what exists
    with pytest.raises(errors.RequestValidationError, match="at most 500"):
        client.build_request("x" * 501, model=ALICE)
    with pytest.raises(errors.RequestValidationError, match="one model"):
        client.build_request("x", model=ALICE, model_uri="yandex-art/latest")


@pytest.mark.parametrize("shape", ["yandex-flat", "openai", "wrapped", "flat"])
async def test_every_error_shape_is_understood(shape: str, client: YandexArtClient, emulator: Emulator) -> None:
    emulator.config.images_error_shape = shape
    with pytest.raises(errors.ContentModerationError) as moderated:
        await client.generate("something forbidden", model=ALICE)
    assert "terms of use" in str(moderated.value) or "Я не могу" in str(moderated.value)
    emulator.config.denied_models = {ALICE}
    with pytest.raises(errors.ModelDeniedError) as denied:
        await client.generate("a fox", model=ALICE)
    assert f"art://{FOLDER}/{ALICE}" in str(denied.value) and "ai.imageGeneration.user" in str(denied.value)
    assert emulator.stats.by_phase["images"] == 2  # neither refusal is retried
    assert emulator.stats.images_generated == 0


async def test_russian_moderation_on_the_asynchronous_api(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.config.russian_moderation = True
    with pytest.raises(errors.ContentModerationError) as caught:
        await client.generate("something forbidden", seed=1)
    assert "Я не могу сгенерировать" in str(caught.value) and "Content moderation" in str(caught.value)


async def test_the_retired_model_says_what_to_do(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.config.denied_models = {"yandex-art"}
    with pytest.raises(errors.ModelDeniedError) as caught:
        await client.generate("a fox", seed=1)
    text = str(caught.value)
    assert "retired" in text and f'%config YandexArt.model_uri = "{ALICE}"' in text
    assert text.index("retired") < text.index("ai.imageGeneration.user")  # the likely cause first
    assert emulator.stats.operations_created == 0


@pytest.mark.parametrize("name", ["alice-image-art", "images:alice-image-art"])
async def test_a_misspelt_model_says_so_first(name: str, client: YandexArtClient, emulator: Emulator) -> None:
    """The asynchronous API denies a model it does not serve as it denies one without the role, and
    the Images API answers 404: either way a name the catalogue does not know is named as the likely
    cause (before the roles), and the 404 is not taken for an expired operation."""
    images = name.startswith("images:")
    with pytest.raises(errors.InvalidRequestError if images else errors.ModelDeniedError) as caught:
        await client.generate("a fox", model=name)  # the Images API answers 404 "Model … not found"
    text = str(caught.value)
    assert f"alice-image-art is not a model this version knows: did you mean {ALICE}?" in text
    if images:
        assert "does not serve this model" in text and "three days" not in text  # not an operation's 404
    else:
        assert text.index("not a model") < text.index("ai.imageGeneration.user")
    with pytest.raises(errors.ModelDeniedError) as known:  # a known model denied: the roles come first
        emulator.config.denied_models = {ALICE}
        await client.generate("a fox", model=ALICE)
    assert "not a model" not in str(known.value) and "(1) the account lacks the role" in str(known.value)
    if images:  # a model of the asynchronous API asked of the Images API
        with pytest.raises(errors.InvalidRequestError, match="served by the asynchronous API, not the Images API"):
            await client.generate("a fox", model="images:yandex-art-2.0")


@pytest.mark.parametrize(("text", "expected"), [
    ("Model art://f/alise not found", f"alise is not a model this version knows (misspelt?): %yandexart models "
                                      f"(yart models) lists the ones it knows, {ALICE} is the one serving"),
    ("The model `alise` does not exist", "alise is not a model this version knows"),  # OpenAI's wording
    ("Model art://f/alice not found", f"alice is not a model this version knows: did you mean {ALICE}?"),  # its start
    ("Model art://f/yandex-art/latest not found", "served by the asynchronous API, not the Images API"),
    (f"The model `{ALICE}` does not exist", "may not serve it to this folder yet"),
])
def test_a_model_the_images_api_does_not_serve_is_not_an_expired_operation(text: str, expected: str) -> None:
    from yart_jupyter.clients.answers import error_for

    error = error_for(404, 5, text)
    assert isinstance(error, errors.ModelNotServedError) and expected in str(error) and "three days" not in str(error)
    assert isinstance(error_for(404, 5, "Operation abc not found"), errors.OperationNotFoundError)


async def test_folder_mismatch(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.config.folders.add("other-folder")
    with pytest.raises(errors.InvalidRequestError, match="does not match") as caught:
        await client.generate("a fox", model=f"art://other-folder/{ALICE}")
    assert "folder" in str(caught.value)
    request = client.build_request("a fox", model="images:unlisted-model")
    assert request.api == "images"


async def test_refusals_are_retried(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.inject("status", "images", status=429, retry_after=0.01)
    emulator.inject("status", "images", status=503)
    image = await client.generate("a fox", model=ALICE)
    assert image.image_bytes and emulator.stats.by_phase["images"] == 3 and emulator.stats.images_generated == 1


async def test_an_answer_lost_after_sending_is_not_sent_again(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.inject("drop_after", "images")
    with pytest.raises(errors.AnswerLostError) as caught:
        await client.generate("a fox", model=ALICE, idempotency_key="k-1")
    assert "[intent k-1]" in str(caught.value)
    assert emulator.stats.images_generated == 1 and emulator.stats.by_phase["images"] == 1


async def test_a_sweep_of_twelve_runs_at_once(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.config.images_duration = Duration("fixed", 1.0)
    images = await asyncio.gather(*(client.generate(f"a fox, take {i}", model=ALICE) for i in range(12)))
    assert len({image.operation_id for image in images}) == 12
    assert emulator.stats.images_peak == 12  # the pool does not serialise them


async def test_the_time_left_of_an_images_request_is_learned_from_its_answers(
        client: YandexArtClient, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Images API's answer times are learned apart from the operations' (whose 100 s would say
    nothing about a synchronous answer) and kept in the store; from them the status line says how
    long a request still has, counted from when it went out."""
    import re

    from yart_jupyter.clients import images_api
    from yart_jupyter.clients.durations import DurationModel
    from yart_jupyter.engine import Batch, run_in_view, runner, views
    from yart_jupyter.store import Store

    from .test_light_notebooks import RecordingView

    operations, answers = DurationModel(), DurationModel()
    operations.observe(100.0)
    for module in (views, runner):
        monkeypatch.setattr(module, "DURATIONS", operations)
    for module in (views, runner, images_api):
        monkeypatch.setattr(module, "ANSWERS", answers)
    emulator.config.images_duration = Duration("fixed", 0.6)
    store = Store(tmp_path / "store")
    first = RecordingView()
    await run_in_view(client, store, Batch([client.build_request("a fox", model=ALICE)]), first)
    assert not any("left" in text for text in first.texts), first.texts  # nothing known of answers yet
    times = store.answer_times()
    assert len(times) == 1 and times[0][0] == times[0][1] and 0.55 < times[0][0] < 2.5, times
    assert store.durations() == []  # not an operation's duration
    assert answers.count() == 1 and operations.count() == 1

    relearned = DurationModel()  # a new kernel reads the store's answer times
    relearned.learn_once(str(store.home), store.answer_times)
    assert relearned.count() == 1
    second = RecordingView()
    requests = [client.build_request(f"a fox, take {n}", model=ALICE) for n in range(2)]
    await run_in_view(client, store, Batch(requests), second)
    lefts = [int(m.group(1)) for text in second.texts if (m := re.search(r"about (\d+) s left", text))]
    assert lefts and max(lefts) <= 2, second.texts  # an answer's time, not an operation's 100 s
    assert answers.count() == 3 and len(store.answer_times()) == 3


# -- the magic -------------------------------------------------------------------------------------

def run_cell(shell: InteractiveShell, source: str) -> tuple[Any, Any]:
    with capture_output() as captured:
        result = shell.run_cell(source, store_history=True)
    return result, captured


def text_of(captured: Any) -> str:
    return "".join(o.data.get("text/html", "") + o.data.get("text/plain", "") for o in captured.outputs)


def test_an_alice_cell_and_its_limits(shell: InteractiveShell, thread_emulator: Emulator,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    result, captured = run_cell(shell, f"%%yandexart --model {ALICE} --aspect 16:9\na lighthouse at dawn")
    assert result.success, result.error_in_exec
    image = shell.user_ns["_"]
    assert isinstance(image, GeneratedImage) and image.seed is None and image.size == (1344, 768)
    shown = text_of(captured)
    assert "no seed" in shown and "seed None" not in shown
    refused = shell.run_cell(f"%%yandexart --model {ALICE} --seed 5\na fox")
    message = str(refused.error_in_exec)
    assert isinstance(refused.error_in_exec, errors.RequestValidationError)
    assert ALICE in message and "--count" in message
    printed = capsys.readouterr()
    assert "Traceback" not in printed.out + printed.err
    assert thread_emulator.stats.images_generated == 1
    # the same cell again is a new picture: a seedless request is never answered from the store
    again, _ = run_cell(shell, f"%%yandexart --model {ALICE} --aspect 16:9\na lighthouse at dawn")
    assert again.success and shell.user_ns["_"].operation_id != image.operation_id
    assert thread_emulator.stats.images_generated == 2


def test_count_gives_samples_and_a_sweep_a_sample_axis(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    result, _ = run_cell(shell, f"%%yandexart --model {ALICE} --count 3\na fox")
    assert result.success, result.error_in_exec
    assert len(shell.user_ns["_"]) == 3 and thread_emulator.stats.images_generated == 3
    short, _ = run_cell(shell, f"%yandexart a fox -n 2 --model {ALICE}")  # -n, as the Images API's n
    assert short.success, short.error_in_exec
    assert [image.prompt for image in shell.user_ns["_"]] == ["a fox", "a fox"]
    _, captured = run_cell(shell, "%yandexart compare #1 #2")  # two samples: nothing differs but chance
    assert "differs: nothing but the operation: samples of a model without seeds differ by chance" in text_of(captured)
    swept, captured = run_cell(shell, f'%%yandexart --model {ALICE} --count 2 --vary "style=ink|oil"\na fox, {{style}}')
    assert swept.success, swept.error_in_exec
    exp = shell.user_ns["_"]
    assert len(exp) == 4 and all(img.seed is None for img in exp)
    shown = text_of(captured)
    assert "#1" in shown and "#2" in shown
    assert thread_emulator.stats.images_generated == 9
    # over models, the plan says which cells are samples: their seed column's value is not sent
    _, captured = run_cell(shell, f'%%yandexart --count 2 --vary "m=yandex-art/latest|{ALICE}" --model {{m}} '
                                  "--dry-run\na fox")
    plan = [line.split("\t") for line in text_of(captured).splitlines() if "\ta fox\t" in line]
    assert [row[1] == "no seed (a sample)" for row in plan] == [False, False, True, True]


def test_samples_are_reused_when_asked(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    """With reuse_samples, a seedless request is answered from the store's samples of it, each once,
    in the order the run that made them asked: a notebook run again shows the same pictures in the
    same places, at no cost; --no-cache, or more samples than stored, makes new ones."""
    shell.run_cell("%config YandexArt.reuse_samples = True")
    cell = f'%%yandexart --model {ALICE} --count 2 --vary "style=ink|oil"\na heron, {{style}}'
    run_cell(shell, cell)
    first = {frozenset(slot.key): slot.image.operation_id for slot in shell.user_ns["_"].slots}
    assert thread_emulator.stats.images_generated == 4
    run_cell(shell, cell)  # the notebook run again
    again = shell.user_ns["_"]
    assert {frozenset(slot.key): slot.image.operation_id for slot in again.slots} == first
    assert all(slot.image.cached for slot in again.slots) and thread_emulator.stats.images_generated == 4
    _, captured = run_cell(shell, f"%%yandexart --model {ALICE} -n 3 --dry-run\na heron, ink")
    assert "2 from the local store for free, 1 to send" in text_of(captured)
    run_cell(shell, f"%%yandexart --model {ALICE} -n 3\na heron, ink")
    made = shell.user_ns["_"]
    assert [image.cached for image in made] == [True, True, False] and thread_emulator.stats.images_generated == 5
    assert [image.operation_id for image in made[:2]] == [first[frozenset({"ink", f"#{n}"})] for n in (1, 2)]
    run_cell(shell, f"%%yandexart --model {ALICE} -n 2 --no-cache\na heron, ink")
    assert not any(image.cached for image in shell.user_ns["_"]) and thread_emulator.stats.images_generated == 7
    _, captured = run_cell(shell, f'%config YandexArt.model_uri = "{ALICE}"\n%yandexart status')
    assert "no seed: a run again shows the store's samples (reuse_samples)" in text_of(captured)
    shell.run_cell("%config YandexArt.model_uri = None")
    shell.run_cell("%config YandexArt.reuse_samples = False")
    run_cell(shell, f"%%yandexart --model {ALICE} -n 2\na heron, ink")  # the default: new samples, billed
    assert thread_emulator.stats.images_generated == 9
    _, captured = run_cell(shell, f'%config YandexArt.model_uri = "{ALICE}"\n%yandexart status')
    assert "no seed: every run a new, billed sample (unless reuse_samples)" in text_of(captured)


def test_paying_again_for_samples_the_store_has_is_said_once(shell: InteractiveShell, thread_emulator: Emulator,
                                                             cli: Callable[..., Ran],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """With reuse_samples off (the default), a seedless cell run again pays for new samples: the run
    says so once, with the setting that would have shown the stored ones; its dry run says it too.
    Not said when the store had none, nor a second time."""
    cell = f"%%yandexart --model {ALICE} -n 2\na heron"
    _, first = run_cell(shell, cell)
    assert "reuse_samples" not in text_of(first)  # nothing stored yet
    _, plan = run_cell(shell, cell.replace("-n 2", "-n 3 --dry-run"))
    assert "The store has samples of 2 of those to send: the reuse_samples setting" in text_of(plan)
    _, again = run_cell(shell, cell)
    assert ("ℹ 2 of these pictures were paid for though the store had samples of the same request: a model "
            "without seeds makes new ones on every run; the reuse_samples setting (%config "
            "YandexArt.reuse_samples = True, or YANDEXART_REUSE_SAMPLES=1) shows the stored ones instead, at no "
            "cost (said once)") in text_of(again)
    _, third = run_cell(shell, cell)
    assert "reuse_samples" not in text_of(third) and thread_emulator.stats.images_generated == 6
    monkeypatch.setattr("yart_jupyter.engine.intents._reuse_said", False)  # a new process: yart generate
    made = cli("generate", "a heron", "--model", ALICE, "-o", "h.jpg")
    assert made.returncode == 0 and "this picture was paid for though the store had samples" in made.stderr


def test_yart_reuses_samples_when_the_environment_says_so(cli: Callable[..., Ran], thread_emulator: Emulator,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YANDEXART_REUSE_SAMPLES", "1")
    made = [cli("generate", "a heron", "--model", ALICE, "-n", "2", "-o", f"run{n}-{{n}}.jpg") for n in (1, 2)]
    assert made[1].returncode == 0 and made[1].stdout.count("cached") == 2, made[1].stdout
    assert thread_emulator.stats.images_generated == 2


def test_a_timeout_on_the_images_api_is_said_not_to_apply(shell: InteractiveShell) -> None:
    """A synchronous request is not cut short (it would be billed and lost): the cell says so, and runs."""
    result, captured = run_cell(shell, f"%%yandexart --model {ALICE} --timeout 0.05\na fox")
    assert result.success, result.error_in_exec
    assert f"--timeout does not cut short {ALICE}" in text_of(captured) and shell.user_ns["_"].seed is None


def test_models_command_and_model_from_config(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    _, captured = run_cell(shell, "%yandexart models")
    shown = text_of(captured)
    for name in CATALOGUE:
        assert name in shown
    shell.run_cell(f'%config YandexArt.model_uri = "{ALICE}"')
    result, _ = run_cell(shell, "%%yandexart\na fox")
    assert result.success, result.error_in_exec
    assert shell.user_ns["_"].model_uri == f"art://{FOLDER}/{ALICE}"
    assert thread_emulator.stats.images_generated == 1


def test_one_refusal_of_many_pictures_is_said_once() -> None:
    """The same refusal of several generations is one line with how many it stopped, every operation
    id kept (a timed-out one still runs) and one request id; different failures keep their own."""
    from yart_jupyter.core.errors import failure_lines

    denied = [errors.ModelDeniedError("Access to model m denied", request_id=f"r{n}", hint="") for n in range(3)]
    late = [errors.GenerationTimeoutError("still running after 5 s", operation_id=f"op{n}") for n in range(2)]
    lines = failure_lines([*denied, late[0], OSError("disk full"), late[1]])
    assert lines == ["3 generations: Access to model m denied. [request id r0]",
                     "2 generations: still running after 5 s. [operations op0, op1]", "disk full"]
    assert failure_lines(denied[:1], named=True) == ["ModelDeniedError: Access to model m denied. [request id r0]"]
    one = errors.BatchError(denied, total=3)
    assert str(one) == "3 of 3 generations failed: Access to model m denied. [request id r0]"
    assert one._render_traceback_() == [f"BatchError: {one}"]
    mixed = errors.BatchError([*denied, *late], total=6)
    assert mixed._render_traceback_() == [
        "BatchError: 5 of 6 generations failed; 3 generations: Access to model m denied. [request id r0]",
        "  ✖ 2 generations: GenerationTimeoutError: still running after 5 s. [operations op0, op1]"]
    # a timeout's hint names its own operation: a sweep's timeouts are still one line, the ids once
    timed_out = [errors.GenerationTimeoutError("Gave up waiting after 1 s", operation_id=f"op{n}",
                                               hint=f"Collect it later with `%yandexart resume op{n}`")
                 for n in range(3)]
    assert str(errors.BatchError(timed_out, total=3)) == (
        "3 of 3 generations failed: Gave up waiting after 1 s. Collect it later with `%yandexart resume ID`. "
        "[operations op0, op1, op2]")
    assert str(timed_out[1]) == ("Gave up waiting after 1 s. Collect it later with `%yandexart resume op1`. "
                                 "[operation op1]")


def test_a_denied_model_is_said_once_for_every_picture(shell: InteractiveShell, cli: Callable[..., Ran],
                                                        thread_emulator: Emulator) -> None:
    thread_emulator.config.denied_models = {"yandex-art"}
    result, _ = run_cell(shell, "%%yandexart --count 3\na fox")
    assert isinstance(result.error_in_exec, errors.BatchError)
    shown = result.error_in_exec._render_traceback_()  # the refusal, then those not sent after it, if any
    assert shown[0].startswith("BatchError: 3 of 3 generations failed") and "Access to the model denied" in shown[0]
    assert "\n".join(shown).count("Likely causes") == 1 and len(shown) <= 2, shown
    made = cli("generate", "a fox", "-n", "3")
    assert made.returncode != 0 and made.stdout.count("Likely causes") == 1, made.stdout
    assert made.stdout.startswith("failed: ") and "Access to the model denied" in made.stdout.splitlines()[0]


async def test_a_denied_model_stops_the_starts_not_sent_yet(make_client: Callable[..., YandexArtClient],
                                                              emulator: Emulator, tmp_path: Path) -> None:
    """After the service denies a model, the run sends no more of it: the starts waiting for a slot
    of the per-minute quota (two a minute here: the rest would wait a minute each) stop at once as
    not sent, recorded so; another model of the same run is made."""
    from yart_jupyter.engine import run_batch
    from yart_jupyter.store import Store

    emulator.config.denied_models = {"yandex-art"}
    store = Store(tmp_path / "store")
    async with make_client(generations_per_minute=3) as client:
        requests = [client.build_request(f"a fox {n}", seed=n) for n in range(6)]
        waiting = asyncio.ensure_future(run_batch(client, requests, store=store))
        done, _ = await asyncio.wait({waiting}, timeout=30)  # without the stop: a minute's wait
        assert done, "the starts not sent kept waiting for the quota"
        images, failures = waiting.result()
    kinds = [type(f).__name__ for f in failures]
    refused = emulator.stats.by_phase.get("start", 0)
    assert not images and 1 <= kinds.count("ModelDeniedError") == refused < 6, (kinds, refused)
    assert kinds.count("NotSentError") == 6 - refused
    not_sent = [f for f in failures if isinstance(f, errors.NotSentError)]
    assert "Access to the model denied" in str(not_sent[0]) and "Nothing was sent" in str(not_sent[0])
    said = str(errors.BatchError(failures))
    counted = f"{refused} generations: " if refused > 1 else ""
    assert said.startswith(f"6 of 6 generations failed; {counted}Access to"), said
    recorded = store.history(None, status="failed")
    assert len(recorded) == 6 and sum("not sent" in (r.error or "") for r in recorded) == 6 - refused
    assert store.pending() == [] and store.unsent() == []


def test_a_refusal_stops_its_own_kind_only() -> None:
    """A denied model stops that model's requests; credentials that fail and the day's quota, all."""
    from yart_jupyter.core.request import build_request
    from yart_jupyter.engine.outcomes import Refusals

    def request(model: str) -> Any:
        return build_request("a fox", folder_id=FOLDER, model_uri=model)

    refusals = Refusals()
    refusals.note(errors.ContentModerationError("not this prompt"), request("yandex-art/latest"))
    refusals.note(errors.ModelDeniedError("Access to model denied"), request("yandex-art/latest"))
    with pytest.raises(errors.NotSentError, match="Access to model denied"):
        refusals.check(request("yandex-art/latest"))
    refusals.check(request(ALICE))  # another model: sent
    refusals.note(errors.ModelNotServedError("The service does not serve this model"), request("images:alise"))
    with pytest.raises(errors.NotSentError, match="does not serve"):
        refusals.check(request("images:alise"))
    refusals.note(errors.QuotaExceededError("quota exceeded: 5000 per day"), request(ALICE))
    with pytest.raises(errors.NotSentError, match="quota exceeded"):
        refusals.check(request(ALICE))
    minute = Refusals()
    minute.note(errors.QuotaExceededError("RequestsPerMinute.rate exceeded"), request(ALICE))
    minute.check(request(ALICE))  # a minute's quota frees: not a reason to stop
    credentials = Refusals()
    credentials.note(errors.CredentialsNotFoundError("No Yandex Cloud credentials found"), request(ALICE))
    credentials.check(request(ALICE))  # none found here: each fails at once, alike, with nothing sent
    credentials.note(errors.AuthenticationError("Authentication failed: Unknown api key"), request(ALICE))
    with pytest.raises(errors.NotSentError, match=r"its kind \(Authentication failed\)"):
        credentials.check(request("yandex-art/latest"))


def test_a_denied_model_stops_its_own_cells_only(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    """A sweep over two models, one denied: its cells fail (sent, or stopped once one was refused),
    the other model's are all made."""
    thread_emulator.config.denied_models = {"yandex-art"}
    shell.run_cell("%config YandexArt.generations_per_minute = 4")  # Alice's three, then the denied one
    result, _ = run_cell(shell, f'%%yandexart --count 3 --vary "m={ALICE}|yandex-art/latest" --model {{m}}\na fox')
    assert isinstance(result.error_in_exec, errors.BatchError), result.error_in_exec
    kinds = [type(f).__name__ for f in result.error_in_exec.failures]
    assert kinds == ["ModelDeniedError", "NotSentError", "NotSentError"], kinds
    assert len(result.error_in_exec.images) == 3 and thread_emulator.stats.images_generated == 3
    _, captured = run_cell(shell, "%yandexart history -n 6")
    shown = text_of(captured)
    assert "failed: Access to the model denied" in shown and "failed: not sent (Access to the model denied)" in shown
    _, captured = run_cell(shell, "%yandexart history --status failed")
    assert text_of(captured).count("failed: ") == 3 * 2  # each in the gallery's caption and its text copy
    from yart_jupyter.core.status import HISTORY_STATUSES
    from yart_jupyter.store.records import STATUSES

    assert set(HISTORY_STATUSES) == set(STATUSES)


def test_a_table_on_a_denied_model_is_one_refusal(cli: Callable[..., Ran], thread_emulator: Emulator,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    thread_emulator.config.denied_models = {"yandex-art"}
    monkeypatch.setenv("YANDEXART_GENERATIONS_PER_MINUTE", "3")
    (tmp_path / "rows.csv").write_text("subject\n" + "".join(f"thing {n}\n" for n in range(8)))
    ran = cli("batch", "rows.csv", "--prompt", "{subject}", "--out", "out/{n}.jpg")
    assert ran.returncode == 1 and ran.stdout.count("row ") <= 3, ran.stdout
    summary = ran.stdout.splitlines()[-1]
    assert "not sent (the service refused a failed row's kind" in summary, summary
    history = cli("history", "-n", "8").stdout  # each failed record says why, in short
    assert "✖ not sent (Access to the model denied)" in history and "✖ Access to the model denied\n" in history
    failed = cli("history", "--status", "failed", "-n", "100").stdout.splitlines()
    assert len(failed) == 8 and all("  failed  " in line for line in failed)
    assert cli("history", "--status", "done").stdout == "no generation matches --status done\n"
    assert cli("history", "--status", "faild").returncode == 2  # not a state: refused, with the states
    thread_emulator.config.denied_models = set()  # the role granted: the same command makes them all
    monkeypatch.setenv("YANDEXART_GENERATIONS_PER_MINUTE", "500")
    again = cli("batch", "rows.csv", "--prompt", "{subject}", "--out", "out/{n}.jpg")
    assert again.returncode == 0 and "8 generated" in again.stdout, again.stdout


def test_a_failed_generation_is_rerun_once_the_cause_is_gone(shell: InteractiveShell,
                                                              thread_emulator: Emulator) -> None:
    """rerun #N of a generation that made no picture sends it again (nothing to compare with)."""
    thread_emulator.config.denied_models = {"yandex-art"}
    failed = shell.run_cell("%%yandexart --seed 77\na fox at dusk")
    assert isinstance(failed.error_in_exec, errors.ModelDeniedError)
    thread_emulator.config.denied_models = set()  # the role granted
    result, captured = run_cell(shell, "%yandexart rerun #1")
    assert result.success, result.error_in_exec
    image = shell.user_ns["_"]
    assert image.seed == 77 and image.prompt == "a fox at dusk" and thread_emulator.stats.operations_created == 1
    shown = text_of(captured)
    assert "made now; nothing to compare with (it failed: Access to the model denied)" in shown, shown
    thread_emulator.config.denied_models = {"yandex-art"}
    shell.run_cell("%%yandexart --seed 78\na fox at dawn")
    refused = shell.run_cell("%yandexart compare #1 #2")
    assert "#1 has no picture in the store (failed: Access to the model denied)" in str(refused.error_in_exec)


def test_pending_says_what_runs_here_arrives_on_its_own() -> None:
    """%yandexart pending lists a start in flight in this kernel too; when that is all it lists, it
    does not send the reader to resume --all."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from yart_jupyter.present.records import records_table

    def record(operation_id: str) -> Any:
        return SimpleNamespace(operation_id=operation_id, status="submitting", prompt="a heron", seed=None,
                               aspect="1:1", submitted_at=datetime.now(timezone.utc), duration=None, api="images",
                               error=None, owner=None, answer_lost=False)

    here = records_table([record("intent:k1")], {"intent:k1"})["text/plain"]
    assert "in progress in this kernel" in here and "arrive on their own" in here and "resume --all" not in here
    left = records_table([record("intent:k1"), record("intent:k2")], {"intent:k1"})["text/plain"]
    assert "resume --all" in left


def test_the_denied_default_model_says_how_to_switch(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.config.denied_models = {"yandex-art"}
    result = shell.run_cell("%%yandexart --seed 1863\na fox")
    assert isinstance(result.error_in_exec, errors.ModelDeniedError)
    assert f'%config YandexArt.model_uri = "{ALICE}"' in str(result.error_in_exec)


def test_a_lost_answer_is_recorded_and_sent_again_only_when_asked(shell: InteractiveShell,
                                                                  thread_emulator: Emulator) -> None:
    thread_emulator.inject("drop_after", "images")
    lost = shell.run_cell(f"%%yandexart --model {ALICE}\na heron")
    assert isinstance(lost.error_in_exec, errors.AnswerLostError)
    records = get_store().history(None)
    assert len(records) == 1 and records[0].answer_lost and records[0].api == "images"
    _, pending = run_cell(shell, "%yandexart pending")
    assert "lost" in text_of(pending)
    _, left = run_cell(shell, "%yandexart resume --all")
    assert "--resend-lost" in text_of(left) and thread_emulator.stats.images_generated == 1
    resent, _ = run_cell(shell, "%yandexart resume --all --resend-lost")
    assert resent.success, resent.error_in_exec
    assert thread_emulator.stats.images_generated == 2
    assert [r.status for r in get_store().history(None)] == ["done"]
    assert "Nothing pending" in text_of(run_cell(shell, "%yandexart pending")[1])


# -- the form, batch and yart --------------------------------------------------------------------

async def test_the_form_on_a_seedless_model(emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    from yart_jupyter.clients.shared import close_shared_clients
    from yart_jupyter.notebook.widget import YandexArtForm

    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    monkeypatch.chdir(tmp_path)
    form = YandexArtForm()
    try:
        assert ALICE in [value for _, value in form.model.options]
        form.seed.value = "42"
        row = form.add_message_row()  # a weight field, live while the model sends weights
        assert not row.weight.disabled
        form.model.value = ALICE
        assert form.seed.disabled and form.seed.value == "" and "takes no seed" in form.seed_note.value
        assert row.weight.disabled and "their weights not sent" in form.seed_note.value
        assert form.add_message_row().weight.disabled
        form.messages.children = ()
        form.prompt.value = "a heron"
        form.count.value = 2
        form.generate_button.click()
        await asyncio.gather(form.jobs[-1].task, return_exceptions=True)
        cards = list(form.gallery.children[0].images.children)
        assert len(cards) == 2 and all(card.image.seed is None for card in cards)
        assert "no seed" in cards[0].caption.value and "seed None" not in cards[0].caption.value
        assert emulator.stats.images_generated == 2
        form.model.value = "yandex-art/latest"
        assert not form.seed.disabled and form.seed_note.value == "" and not form.add_message_row().weight.disabled
    finally:
        await close_shared_clients()


async def test_batch_on_a_seedless_model(emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    from yart_jupyter import batch
    from yart_jupyter.clients.shared import close_shared_clients

    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    monkeypatch.chdir(tmp_path)
    try:
        rows = [{"subject": s} for s in ("a fox", "an owl", "a heron")]
        result = await batch(rows, prompt="{subject}", model=ALICE, out="set/{n}.jpg")
        assert [r["status"] for r in result.records()] == ["done"] * 3
        lines = [json.loads(line) for line in (tmp_path / "set" / "metadata.jsonl").read_text().splitlines()]
        assert all(line["seed"] is None for line in lines)
        again = await batch(rows, prompt="{subject}", model=ALICE, out="set/{n}.jpg")
        assert [r.status for r in again.rows] == ["earlier"] * 3  # files made already: nothing re-bought
        assert emulator.stats.images_generated == 3
    finally:
        await close_shared_clients()


def test_yart_models_and_generate_on_alice(cli: Callable[..., Ran], cli_env: dict[str, str],
                                           thread_emulator: Emulator, tmp_path: Path) -> None:
    listed = cli("models")
    assert listed.returncode == 0 and all(name in listed.stdout for name in CATALOGUE)
    made = cli("generate", "a red fox", "--model", ALICE, "--aspect", "16:9", "-o", "fox.jpg")
    assert made.returncode == 0, made.stderr
    assert "no seed" in made.stdout and (tmp_path / "fox.jpg").read_bytes()[:2] == b"\xff\xd8"
    samples = cli("generate", "a red fox", "--model", ALICE, "-n", "2", "-o", "fox-{n}.jpg")
    assert samples.returncode == 0, samples.stderr
    assert sorted(p.name for p in tmp_path.glob("fox-*.jpg")) == ["fox-1.jpg", "fox-2.jpg"]
    refused = cli("generate", "a red fox", "--model", ALICE, "--seed", "3")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "leave the seed out" in refused.stderr
    history = cli("history")
    assert "no seed" in history.stdout and "seed None" not in history.stdout
    # the console script itself, as a process: its reader gone, it ends quietly with 141
    with subprocess.Popen([sys.executable, "-m", "yart_jupyter.cli", "models"], env=cli_env, cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as cut:
        assert cut.stdout is not None and cut.stderr is not None
        cut.stdout.close()  # `yart models | head -0`: the reader is gone before the table is written
        errors_shown = cut.stderr.read()
        assert cut.wait(timeout=60) == 141 and "Traceback" not in errors_shown and "Broken" not in errors_shown
    assert thread_emulator.stats.images_generated == 3


@pytest.mark.parametrize("status,body,kind,needle", [
    (400, {"error": "Prompt positive size 702 exceeds limit (500)", "code": 3,
           "message": "Prompt positive size 702 exceeds limit (500)", "details": []},
     errors.InvalidRequestError, "Shorten the prompt"),
    (400, {"error": {"message": "Specified folder ID 'b1g' does not match with service account folder",
                     "type": "invalid_request_error", "code": 3}}, errors.InvalidRequestError, "YC_FOLDER_ID"),
    (403, {"code": 7, "message": f"Access to model art://{FOLDER}/{ALICE} denied"}, errors.ModelDeniedError,
     "yc.ai.imageGeneration.execute"),
    (400, {"error": "Я не могу сгенерировать это изображение. Давайте попробуем другую тему.", "code": 3},
     errors.ContentModerationError, "Content moderation"),
])
def test_the_services_real_answers_are_read(status: int, body: dict[str, Any], kind: type, needle: str) -> None:
    from yart_jupyter.clients.answers import error_for, parse_error_body

    code, message = parse_error_body(json.dumps(body).encode())
    error = error_for(status, code, message)
    assert isinstance(error, kind) and needle in str(error), str(error)


def test_the_notes_say_what_each_model_did_with_weights() -> None:
    """Weights are sent (and said to be documented unsupported) only to a model that takes several
    messages; a model that takes one prompt gets them joined, without weights, and is said so alone."""
    from yart_jupyter.core.request import build_request
    from yart_jupyter.engine.views import model_notes

    weighted = [("a fox", 1.0), ("watercolour", 0.3)]
    on_latest = model_notes([build_request(weighted, seed=1, folder_id=FOLDER)])
    assert len(on_latest) == 1 and "the weights were sent" in on_latest[0]
    on_alice = model_notes([build_request(weighted, folder_id=FOLDER, model_uri=ALICE)])
    assert on_alice == [f"ℹ {ALICE} takes one prompt: the messages were sent joined by '; ' (without their weights)"]


def test_weights_from_a_terminal_and_a_script_are_sent_and_said(cli: Callable[..., Ran], thread_emulator: Emulator,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """`yart generate` reads its prompt as a cell's body (a line `--- W` starts a message of weight
    W; it sent the lines as one message), and the notes the magic shows are said by `yart` (on
    stderr) and by the Python API (logged warnings): they were dropped."""
    weighted = cli("generate", "a fox\nin snow\n--- 0.5\nsoft light", "--seed", "4", "-o", "fox.jpg")
    assert weighted.returncode == 0, weighted.stderr
    op = thread_emulator.operations[weighted.stdout.split("op ")[1].split()[0]]
    assert op.messages == [{"text": "a fox in snow", "weight": 1.0}, {"text": "soft light", "weight": 0.5}]
    assert "⚠ weights are documented as not supported" in weighted.stderr
    again = cli("generate", "a fox\nin snow\n--- 0.5\nsoft light", "--seed", "4", "-o", "fox-again.jpg")
    assert "cached" in again.stdout and "⚠" not in again.stderr  # the store's answer sent nothing
    joined = cli("generate", "a fox\n--- 0.5\nsoft light", "--model", ALICE, "-o", "alice.jpg")
    assert joined.returncode == 0 and f"ℹ {ALICE} takes one prompt" in joined.stderr
    with caplog.at_level(logging.WARNING, logger="yart_jupyter"):
        asyncio.run(yart_jupyter.generate([("a fox", 2.0), ("soft light", 0.5)], seed=5))
    assert any("the weights were sent" in r.getMessage() for r in caplog.records)
    asyncio.run(close_shared_clients())
