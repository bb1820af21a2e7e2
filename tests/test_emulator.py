"""The emulator itself: determinism, the real error shapes, robustness, standalone and embedded runs."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import warnings
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from yart_jupyter.clients.client import YandexArtClient
from yart_jupyter.core.request import AspectRatio
from yart_jupyter.emulator import Duration, Emulator, standalone
from yart_jupyter.emulator.images import render
from yart_jupyter.media.image import GeneratedImage

from .conftest import FOLDER, KEY

GEN = "/foundationModels/v1/imageGenerationAsync"


def test_images_are_deterministic() -> None:
    messages = [{"text": "succulents", "weight": 1.0}]
    a = render(messages, 1863, AspectRatio(2, 1))
    assert a == render(messages, 1863, AspectRatio(2, 1))
    assert a != render(messages, 1864, AspectRatio(2, 1))
    assert a != render([{"text": "cacti", "weight": 1.0}], 1863, AspectRatio(2, 1))
    picture = Image.open(__import__("io").BytesIO(a))
    assert picture.format == "JPEG" and picture.size == AspectRatio(2, 1).pixel_size()


def test_realistic_payload_still_decodes() -> None:
    data = render([{"text": "big", "weight": 1.0}], 1, AspectRatio(1, 1), pad_to=1_200_000)
    assert 1_190_000 <= len(data) <= 1_200_000
    Image.open(__import__("io").BytesIO(data)).load()


async def test_same_request_same_bytes_over_http(client: YandexArtClient) -> None:
    first = await client.generate("twice", seed=77, aspect="16:9")
    second = await client.generate("twice", seed=77, aspect="16:9")
    assert first.operation_id != second.operation_id
    assert first.image_bytes == second.image_bytes


async def test_start_returns_explicit_nulls(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"modelUri": f"art://{FOLDER}/yandex-art/latest", "messages": [{"text": "x", "weight": "1"}],
                "generationOptions": {"seed": "5"}}
        async with session.post(emulator.url + GEN, json=body, headers={"Authorization": f"Api-Key {KEY}"}) as r:
            data = await r.json()
            assert r.headers["x-request-id"]
    assert set(data) == {"id", "description", "createdAt", "createdBy", "modifiedAt", "done", "metadata"}
    assert data["createdAt"] is None and data["done"] is False and len(data["id"]) == 20


@pytest.mark.parametrize(
    "headers,body,status,code",
    [
        ({}, {}, 401, 16),
        ({"Authorization": "Api-Key nope"}, {}, 401, 16),
        ({"Authorization": f"Api-Key {KEY}"}, "not json", 400, 3),
        ({"Authorization": f"Api-Key {KEY}"}, [], 400, 3),
        ({"Authorization": f"Api-Key {KEY}"}, {"modelUri": "art://yandex-art/latest", "messages": []}, 403, 7),
        ({"Authorization": f"Api-Key {KEY}"}, {"modelUri": f"art://{FOLDER}/yandex-art", "messages": []}, 400, 3),
        ({"Authorization": f"Api-Key {KEY}"},
         {"modelUri": f"art://{FOLDER}/yandex-art", "messages": [{"text": "x"}],
          "generationOptions": {"seed": "-3"}}, 400, 3),
        ({"Authorization": f"Api-Key {KEY}"},
         {"modelUri": f"art://{FOLDER}/yandex-art", "messages": [{"text": "x"}],
          "generationOptions": {"aspectRatio": {"widthRatio": "0", "heightRatio": "1"}}}, 400, 3),
    ],
)
async def test_error_shapes(
    emulator: Emulator, headers: dict[str, str], body: object, status: int, code: int
) -> None:
    async with aiohttp.ClientSession() as session:
        payload = body if isinstance(body, str) else json.dumps(body)
        async with session.post(emulator.url + GEN, data=payload, headers=headers) as r:
            assert r.status == status
            data = await r.json()
    assert data["error"]["grpcCode"] == code and data["error"]["httpCode"] == status
    assert data["error"]["message"]
    emulator.config.error_shape = "flat"
    async with aiohttp.ClientSession() as session, session.post(emulator.url + GEN, data="{}", headers=headers) as r:
        flat = await r.json()
    assert set(flat) == {"code", "message", "details"}


async def test_body_size_limit_and_unknown_paths(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(emulator.url + GEN, data=b"x" * 200_000,
                                headers={"Authorization": f"Api-Key {KEY}"}) as r:
            assert r.status == 413
            assert "error" in await r.json()
        async with session.get(emulator.url + "/nowhere") as r:
            assert r.status == 404
            assert "error" in await r.json()


async def test_garbage_never_crashes(emulator: Emulator) -> None:
    garbage = [b"\xff\xfe\x00", b"{", b"null", b'{"messages": 5}', b'{"modelUri": 7}',
               b'{"modelUri": "art://emulator-folder/yandex-art", "messages": [{"text": 5}]}',
               b'{"modelUri": "art://emulator-folder/yandex-art", "messages": [{"text": "a", "weight": "x"}]}',
               b'{"modelUri": "art://emulator-folder/yandex-art", "messages": [{"text": "a"}], '
               b'"generationOptions": {"aspectRatio": 3}}']
    async with aiohttp.ClientSession() as session:
        for body in garbage:
            async with session.post(emulator.url + GEN, data=body, headers={"Authorization": f"Api-Key {KEY}"}) as r:
                assert 400 <= r.status < 500, body
        async with session.post(emulator.url + "/iam/v1/tokens", data=b"[1]") as r:
            assert r.status == 400
        async with session.post(emulator.url + "/iam/v1/tokens", json={"jwt": "not.a.jwt"}) as r:
            assert r.status in (400, 401)
    assert emulator.stats.by_status.get(500, 0) == 0


async def test_binds_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await Emulator().start("0.0.0.0")


async def test_read_quota(emulator: Emulator, client: YandexArtClient) -> None:
    emulator.config.reads_per_second = 3
    emulator.config.duration = Duration("fixed", 10)
    op_id = await client.start(client.build_request("quota", seed=1))
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(5):
            async with session.get(f"{emulator.url}/operations/{op_id}",
                                   headers={"Authorization": f"Api-Key {KEY}"}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]


async def test_control_endpoints(emulator: Emulator, client: YandexArtClient) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(emulator.url + "/_emulator/faults", json={"kind": "status", "status": 502}) as r:
            assert (await r.json()) == {"queued": 1}
        await client.generate("control", seed=1)
        async with session.get(emulator.url + "/_emulator/stats") as r:
            stats = await r.json()
    assert stats["faults_injected"] == 1 and stats["by_status"]["502"] == 1
    assert stats["operations_created"] == 1


def test_standalone_process(tmp_path: Path) -> None:
    with standalone("--duration", "0.1") as url:

        async def use() -> GeneratedImage:
            async with YandexArtClient(base_url=url, api_key=KEY, folder_id=FOLDER, env={}) as client:
                return await client.generate("standalone", seed=3)

        assert url.startswith("http://127.0.0.1:")
        assert asyncio.run(use()).image_bytes


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no scheduler groups by session here")
def test_niced_standalone_yields_the_cpu_across_sessions() -> None:
    """A niced emulator runs in a session of its own whose scheduling group has the lowest share:
    a nice value alone ranks a process only within its session, and a kernel is a session of its own."""
    with standalone("--duration", "0.1", niced=True):
        ours = os.getpid()
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    command = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if int(fields[1]) == ours and b"yart_jupyter.emulator" in command:  # the parent's pid
                    children.append((entry, int(fields[3])))  # and the session's
        assert len(children) == 1
        child, session = children[0]
        assert session != os.getsid(0)
        assert (child / "autogroup").read_text().split()[-1] == "19"
        assert os.getpriority(os.PRIO_PROCESS, int(child.name)) == 19


async def test_embedded_emulator_via_python_api(monkeypatch: pytest.MonkeyPatch) -> None:
    import yart_jupyter
    from yart_jupyter.clients.shared import close_shared_clients

    image = await yart_jupyter.generate("embedded", seed=11, aspect="1:1", base_url="emulator")
    again = await yart_jupyter.generate("embedded", seed=11, aspect="1:1", base_url="emulator")
    assert image.image_bytes == again.image_bytes
    # an operation it does not know (another process's embedded emulator had it): said so, not "three days"
    monkeypatch.setenv("YANDEXART_BASE_URL", "emulator")
    with pytest.raises(yart_jupyter.errors.OperationNotFoundError) as missing:
        await yart_jupyter.resume("00nrvp5jwr6p48l70h59")
    assert "keeps operations only while its process runs" in str(missing.value)
    assert "three days" not in str(missing.value)
    await close_shared_clients()


def test_unclosed_sessions_are_detected(emulator: Emulator) -> None:
    """The suite turns unclosed-session warnings into errors; prove that the detection works."""

    async def leak() -> None:
        client = YandexArtClient(base_url=emulator.url, api_key=KEY, folder_id=FOLDER, env={})
        await client.open()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop = asyncio.new_event_loop()
        loop.run_until_complete(leak())
        loop.close()
        gc.collect()
    assert any("Unclosed" in str(w.message) for w in caught)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--duration", "bogus"], "argument --duration: 'bogus': give SECONDS, uniform:A:B or lognormal"),
    (["--images-duration", "lognormal:x"], "argument --images-duration: 'lognormal:x'"),
    (["--photo", "/no/such/photo.jpg", "--port", "0"], "--photo /no/such/photo.jpg: No such file or directory"),
    (["--host", "8.8.8.8", "--port", "0"], "binds loopback only, not 8.8.8.8"),
    (["--port", "IN_USE"], "is in use (--port 0 picks a free one)"),
])
def test_standalone_bad_options_are_one_line(argv: list[str], expected: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``yart emulator`` with a bad option or a port in use: one line and exit code 2, no traceback,
    under the name it was called by."""
    import socket

    from yart_jupyter.cli.main import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with pytest.raises(SystemExit) as exited:
            main(["emulator", *[port if arg == "IN_USE" else arg for arg in argv]])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and err.startswith(("usage: yart emulator", "yart emulator:"))


def test_embedded_emulator_settings_that_cannot_be_read_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """``YANDEXART_BASE_URL=emulator`` with a duration or photograph it cannot read: a one-line
    ConfigurationError (the notebook and ``yart`` show it as such), and no emulator started."""
    import yart_jupyter.emulator as emulators
    from yart_jupyter import errors

    monkeypatch.setattr(emulators, "_embedded", None)
    monkeypatch.setenv("YANDEXART_EMULATOR_DURATION", "lognormal:fast")
    with pytest.raises(errors.ConfigurationError, match="YANDEXART_EMULATOR_DURATION='lognormal:fast' is not a"):
        emulators.embedded()
    monkeypatch.setenv("YANDEXART_EMULATOR_DURATION", "0.1")
    monkeypatch.setenv("YANDEXART_EMULATOR_PHOTO", "/no/such/photo.jpg")
    with pytest.raises(errors.ConfigurationError, match="cannot be read: No such file or directory") as caught:
        emulators.embedded()
    assert "\n" not in str(caught.value) and emulators._embedded is None
