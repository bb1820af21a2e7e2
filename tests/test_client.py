"""The client against the emulator over loopback HTTP: round trips, variants, errors, retries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from yart_jupyter import errors
from yart_jupyter.clients.client import Progress, YandexArtClient
from yart_jupyter.clients.transport import RetryPolicy
from yart_jupyter.core.request import GenerationRequest, Message
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.media.pixels import image_size

from .conftest import FOLDER, KEY


async def test_generate_round_trip(client: YandexArtClient, emulator: Emulator) -> None:
    events: list[Progress] = []
    image = await client.generate("succulents", seed=1863, aspect="2:1", on_progress=events.append)
    assert image.seed == 1863
    assert str(image.aspect) == "2:1"
    assert image.mime_type == "image/jpeg"
    assert image_size(image.image_bytes) == image.size
    assert image.size is not None and image.size[0] == pytest.approx(2 * image.size[1], rel=0.02)
    assert image.operation_id in emulator.operations
    assert image.duration is not None and image.duration > 0
    assert [e.phase for e in events][:2] == ["starting", "started"]
    assert events[-1].phase == "done"
    assert image.model_version == ""


async def test_headers_sent(client: YandexArtClient, emulator: Emulator) -> None:
    await client.generate("headers", seed=1)
    method, path, headers = emulator.recent[0]
    assert (method, path) == ("POST", "/foundationModels/v1/imageGenerationAsync")
    assert headers["Authorization"] == f"Api-Key {KEY}"
    assert headers["User-Agent"].startswith("yart_jupyter/")
    assert len(headers["x-client-request-id"]) == 36
    assert len(headers["Idempotency-Key"]) == 36
    assert "x-folder-id" not in headers  # a service-account API key needs none


async def test_iam_token_sends_folder_header(make_client: Callable[..., YandexArtClient], emulator: Emulator) -> None:
    token = emulator.issue_token()
    async with make_client(api_key=None, iam_token=token) as client:
        await client.generate("folder header", seed=2)
    headers = emulator.recent[0][2]
    assert headers["Authorization"] == f"Bearer {token}"
    assert headers["x-folder-id"] == FOLDER


async def test_random_seed_is_sent_and_reported(client: YandexArtClient, emulator: Emulator) -> None:
    image = await client.generate("no seed given")
    assert image.seed is not None and 1 <= image.seed < 2**63
    assert emulator.operations[image.operation_id].seed == image.seed


async def test_png_when_asked(client: YandexArtClient) -> None:
    image = await client.generate("png please", seed=3, mime_type="png")
    assert image.mime_type == "image/png"
    assert image.image_bytes.startswith(b"\x89PNG")


async def test_weighted_messages(client: YandexArtClient, emulator: Emulator) -> None:
    image = await client.generate([("a cat", 1.0), Message("watercolour", 0.3)], seed=4)
    sent = emulator.operations[image.operation_id].messages
    assert sent == [{"text": "a cat", "weight": 1.0}, {"text": "watercolour", "weight": 0.3}]


@pytest.mark.parametrize(
    "variant",
    [
        {"omit_done_while_pending": True},
        {"include_type": False},
        {"model_version": None},
        {"model_version": "yandex-art/2.0"},
        {"error_shape": "flat"},
    ],
)
async def test_response_variants(
    variant: dict[str, Any], make_client: Callable[..., YandexArtClient], emulator: Emulator
) -> None:
    for name, value in variant.items():
        setattr(emulator.config, name, value)
    async with make_client() as client:
        image = await client.generate("variant", seed=5)
        assert image.image_bytes
        assert image.model_version == variant.get("model_version", "")
        with pytest.raises(errors.OperationNotFoundError):
            await client.get_operation("doesnotexist00000000")


async def test_pending_read_has_no_image(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.config.duration = Duration("fixed", 5)
    request = client.build_request("slow", seed=6)
    op_id = await client.start(request)
    operation = await client.get_operation(op_id)
    assert operation.pending and operation.image is None


# -- errors --------------------------------------------------------------------------------


async def test_server_invalid_argument(client: YandexArtClient) -> None:
    too_long = GenerationRequest((Message("x" * 501),), 1, model_uri=f"art://{FOLDER}/yandex-art/latest")
    with pytest.raises(errors.InvalidRequestError) as info:
        await client.start(too_long)
    assert not isinstance(info.value, errors.ContentModerationError)
    assert info.value.status == 400 and info.value.request_id
    assert "request id" in str(info.value)


async def test_content_moderation_at_start(client: YandexArtClient, emulator: Emulator) -> None:
    with pytest.raises(errors.ContentModerationError) as info:
        await client.generate("something Forbidden here", seed=1)
    assert "terms of use" in str(info.value)
    assert emulator.stats.operations_created == 0


async def test_content_moderation_in_operation(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.inject("fail", "start", code=3, message="it may violate the terms of usage")
    with pytest.raises(errors.ContentModerationError) as info:
        await client.generate("fine words", seed=1)
    assert info.value.operation_id


async def test_operation_failed(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.inject("fail", "start", message="GPU on fire")
    with pytest.raises(errors.OperationFailedError) as info:
        await client.generate("fails", seed=1)
    assert info.value.operation_id in emulator.operations
    assert "GPU on fire" in str(info.value) and info.value.operation_id in str(info.value)


async def test_wrong_api_key_is_not_refreshed(make_client: Callable[..., YandexArtClient], emulator: Emulator) -> None:
    async with make_client(api_key="wrong-key-123456") as client:
        with pytest.raises(errors.AuthenticationError) as info:
            await client.generate("auth", seed=1)
    assert emulator.stats.requests == 1
    assert "wrong-key-123456" not in str(info.value) and "wrong-key-123456" not in repr(client)


async def test_permission_denied_names_causes(client: YandexArtClient) -> None:
    with pytest.raises(errors.PermissionDeniedError) as info:
        await client.generate("perm", seed=1, model_uri="art://yandex-art/latest")
    text = str(info.value)
    assert "folder" in text and "ai.imageGeneration.user" in text and "billing" in text


async def test_unknown_folder(make_client: Callable[..., YandexArtClient]) -> None:
    async with make_client(folder_id="b1gsomeoneelse") as client:
        with pytest.raises(errors.PermissionDeniedError):
            await client.generate("perm", seed=1)


async def test_quota_exhausted(make_client: Callable[..., YandexArtClient], emulator: Emulator) -> None:
    emulator.config.generate_per_minute = 2
    async with make_client(retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_elapsed=0.5)) as client:
        for seed in (1, 2):
            await client.start(client.build_request("quota", seed=seed))
        with pytest.raises(errors.QuotaExceededError) as info:
            await client.start(client.build_request("quota", seed=3))
    assert "Quota exceeded" in str(info.value)
    assert emulator.stats.by_status[429] >= 1


async def test_operation_not_found_and_expired(client: YandexArtClient, emulator: Emulator) -> None:
    with pytest.raises(errors.OperationNotFoundError) as info:
        await client.get_operation("nosuchoperation00000")
    assert info.value.operation_id == "nosuchoperation00000"
    op_id = await client.start(client.build_request("expires", seed=1))
    emulator.config.keep_seconds = 0.0
    with pytest.raises(errors.OperationNotFoundError, match="three days"):
        await client.get_operation(op_id)


async def test_wait_timeout_names_the_operation(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.config.duration = Duration("fixed", 30)
    with pytest.raises(errors.GenerationTimeoutError) as info:
        await client.generate("slow", seed=1, timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert info.value.operation_id and info.value.operation_id in str(info.value)
    assert "resume" in str(info.value)


async def test_service_unavailable_after_bounded_retries(
    make_client: Callable[..., YandexArtClient], emulator: Emulator
) -> None:
    emulator.inject("status", "start", times=10, status=503)
    async with make_client(retry=RetryPolicy(max_attempts=3, base_delay=0.01)) as client:
        with pytest.raises(errors.ServiceUnavailableError, match="after 3 attempts"):
            await client.generate("down", seed=1)
    assert emulator.stats.by_phase["start"] == 3


async def test_cancel(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.config.duration = Duration("fixed", 30)
    op_id = await client.start(client.build_request("cancel me", seed=1))
    assert await client.cancel(op_id) is True
    with pytest.raises(errors.OperationCancelledError):
        await client.wait(op_id)


async def test_resume_by_operation_id(client: YandexArtClient) -> None:
    op_id = await client.start(client.build_request("resume me", seed=9))
    image = await client.resume(op_id)
    assert image.operation_id == op_id and image.image_bytes and image.seed is None


async def test_one_line_messages_and_render_traceback(client: YandexArtClient) -> None:
    with pytest.raises(errors.YandexArtError) as info:
        await client.get_operation("nosuchoperation00000")
    lines = info.value._render_traceback_()
    assert len(lines) == 1 and "\n" not in lines[0]


# -- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
@pytest.mark.parametrize("phase", ["start", "poll"])
async def test_transient_status_is_retried(
    status: int, phase: str, client: YandexArtClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.inject("status", phase, times=2, status=status)
    with caplog.at_level(logging.DEBUG, logger="yart_jupyter"):
        image = await client.generate("retry", seed=1)
    assert image.image_bytes
    assert emulator.stats.operations_created == 1
    assert sum("retry" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG) >= 2


async def test_the_days_quota_is_final_at_once_and_pauses_nobody(client: YandexArtClient, emulator: Emulator) -> None:
    """A 429 naming the day's quota frees tomorrow: it is not retried, and it does not pause the
    folder's other starts (paused for its Retry-After, capped at 120 s, a batch's rows that had not
    started yet waited that long to be refused in turn: a flaky batch test under load)."""
    emulator.config.generate_per_day = 1
    await client.start(client.build_request("the day's one", seed=1))
    retries: list[Any] = []
    for seed in (2, 3):
        with pytest.raises(errors.QuotaExceededError) as info:
            await client.start(client.build_request("one more", seed=seed), on_retry=lambda *a: retries.append(a))
        assert info.value.period == "day"
    assert retries == [] and emulator.stats.operations_created == 1
    assert client.connection.limiters().starts.delay() == 0  # nobody is held back


async def test_retry_after_is_honoured(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.inject("status", "start", status=429, retry_after=0.4)
    delays: list[float] = []
    await client.start(client.build_request("wait", seed=1), on_retry=lambda n, why, d: delays.append(d))
    assert delays and delays[0] >= 0.4


async def test_retry_after_without_header_backs_off(client: YandexArtClient, emulator: Emulator) -> None:
    emulator.inject("status", "start", times=3, status=429)
    delays: list[float] = []
    await client.start(client.build_request("wait", seed=1), on_retry=lambda n, why, d: delays.append(d))
    assert len(delays) == 3 and all(d > 0 for d in delays)


@pytest.mark.parametrize("kind", ["drop_before", "drop_after", "malformed", "truncated"])
async def test_lost_start_response_is_deduplicated(kind: str, client: YandexArtClient, emulator: Emulator) -> None:
    emulator.inject(kind, "start")
    image = await client.generate("idempotent", seed=1)
    assert image.image_bytes
    assert emulator.stats.operations_created == 1
    keys = {h["Idempotency-Key"] for m, p, h in emulator.recent if m == "POST"}
    assert len(keys) == 1


@pytest.mark.parametrize("kind", ["drop_before", "drop_after", "malformed", "truncated"])
async def test_bad_poll_responses_are_retried(kind: str, client: YandexArtClient, emulator: Emulator) -> None:
    emulator.inject(kind, "poll", times=2)
    image = await client.generate("poll faults", seed=1)
    assert image.image_bytes


async def test_slow_response_past_request_timeout(
    make_client: Callable[..., YandexArtClient], emulator: Emulator
) -> None:
    emulator.inject("slow", "poll", seconds=2.0)
    async with make_client(request_timeout=0.3) as client:
        image = await client.generate("slow poll", seed=1)
    assert image.image_bytes


async def test_retries_bounded_in_time(make_client: Callable[..., YandexArtClient], emulator: Emulator) -> None:
    emulator.inject("status", "poll", times=100, status=500)
    policy = RetryPolicy(max_attempts=100, base_delay=0.05, max_delay=0.05, max_elapsed=0.4)
    async with make_client(retry=policy) as client:
        with pytest.raises(errors.ServiceUnavailableError) as info:
            await client.generate("bounded", seed=1)
    assert info.value.operation_id
    assert emulator.stats.by_phase["poll"] < 20


async def test_connection_refused_is_service_unavailable() -> None:
    client = YandexArtClient(
        base_url="http://127.0.0.1:9", api_key=KEY, folder_id=FOLDER, env={},
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
    )
    async with client:
        with pytest.raises(errors.ServiceUnavailableError, match="cannot connect"):
            await client.generate("nobody home", seed=1)


async def test_a_host_that_does_not_exist_is_said_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped base URL's host: the name server's "no such name" ends the request at once, naming
    the host (it was asked again for about 11 s); a name server out of reach is still retried.
    The lookup is answered in this process (the loop's getaddrinfo), so nothing leaves the machine."""
    import asyncio
    import socket

    asked: list[str] = []

    async def lookup(host: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        failure = socket.EAI_NONAME if host == "yart.invalid" else socket.EAI_AGAIN
        raise socket.gaierror(failure, "Name or service not known" if failure == socket.EAI_NONAME else "try again")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", lookup)
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    async with YandexArtClient(base_url="https://yart.invalid", api_key=KEY, folder_id=FOLDER, env={},
                               retry=retry) as client:
        with pytest.raises(errors.ServiceUnreachableError) as caught:
            await client.generate("a fox", seed=1)
    assert "no host is named yart.invalid" in str(caught.value) and "after 1 attempt" in str(caught.value)
    assert asked == ["yart.invalid"]
    async with YandexArtClient(base_url="https://name-server.down", api_key=KEY, folder_id=FOLDER, env={},
                               retry=retry) as client:
        with pytest.raises(errors.ServiceUnreachableError, match="after 3 attempts"):
            await client.generate("a fox", seed=1)


async def test_a_service_never_reached_is_a_start_never_sent(make_client: Callable[..., YandexArtClient],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Every attempt refused at connect: the request never left, so the error says so (a
    ServiceUnreachableError, still a ServiceUnavailableError), the retries are logged as before the
    request was sent, and the engine settles the start as failed instead of leaving it "sent,
    answer unknown" for resume to re-send."""
    import socket

    from yart_jupyter.core.request import build_request
    from yart_jupyter.core.status import PYTHON_COLLECT
    from yart_jupyter.engine import Batch, CallbackView, run_in_view  # the Python API's own view of a batch
    from yart_jupyter.store import get_store

    with socket.socket() as closed:  # bound, not listening: every connect is refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        async with make_client(base_url=url) as client:
            with caplog.at_level(logging.WARNING), pytest.raises(errors.ServiceUnreachableError) as caught:
                await client.generate("never sent", seed=1)
            assert isinstance(caught.value, errors.ServiceUnavailableError) and "Nothing was sent" in str(caught.value)
            assert "before the request was sent" in caplog.text and "after the request was sent" not in caplog.text
            store = get_store()
            request = build_request("never sent", seed=2, folder_id=FOLDER)
            with pytest.raises(errors.ServiceUnreachableError):
                await run_in_view(client, store, Batch([request]), CallbackView(None, PYTHON_COLLECT))
    assert store.unsent() == [] and [r.status for r in store.history(None)] == ["failed"]
    # a re-send (its first start went out before a crash) that cannot connect may still have a twin
    # on the server from that first start: it stays to be resumed
    import dataclasses

    from yart_jupyter.core.status import BatchStatus
    from yart_jupyter.engine.intents import prepare
    from yart_jupyter.engine.outcomes import settle_failure

    again = build_request("sent before a crash", seed=3, folder_id=FOLDER)
    intent = prepare(store, Batch([again]), BatchStatus(1)).items[0]
    await settle_failure(store, errors.ServiceUnreachableError("refused"), dataclasses.replace(intent, resend=True))
    assert [r.prompt for r in store.unsent()] == ["sent before a crash"]


async def test_an_operation_the_service_cannot_be_reached_for_is_to_collect(
        make_client: Callable[..., YandexArtClient], emulator: Emulator) -> None:
    """A read of a started operation that cannot connect: the operation goes on, so the error says
    how to collect it (not "nothing was sent", not "run it again", which would start another)."""
    async with make_client() as client:
        operation_id = await client.start(client.build_request("started, then unreachable", seed=1))
        await emulator.stop()
        with pytest.raises(errors.ServiceUnreachableError) as caught:
            await client.get_operation(operation_id)
    text = str(caught.value)
    assert f"yart resume {operation_id}" in text and "Nothing was sent" not in text and caught.value.operation_id
