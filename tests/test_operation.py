"""Operation parsing: every variant, and big bodies decoded in slices."""

from __future__ import annotations

import base64
import json
import os

import pytest

from yart_jupyter.clients.operation import DECODE_SLICE, MalformedOperation, parse_operation


def body(image: bytes, **extra: object) -> bytes:
    response = {"@type": "t", "image": base64.b64encode(image).decode(), "modelVersion": "v", **extra}
    return json.dumps({"id": "op1", "done": True, "response": response}).encode()


@pytest.mark.parametrize("size", [100, DECODE_SLICE * 3 + 7])
def test_images_small_and_big(size: int) -> None:
    image = os.urandom(size)
    operation = parse_operation(body(image))
    assert operation.image == image and operation.done and operation.model_version == "v"


def test_escaped_slashes_in_big_bodies() -> None:
    image = os.urandom(DECODE_SLICE * 2)
    raw = body(image).replace(b"/", b"\\/")
    assert parse_operation(raw).image == image


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b.replace(b"A", b"!", 1)])
def test_damaged_big_bodies_are_malformed(damage: object) -> None:
    raw = body(os.urandom(DECODE_SLICE * 2))
    with pytest.raises(MalformedOperation):
        parse_operation(damage(raw))  # type: ignore[operator]


@pytest.mark.parametrize(
    "data,done,pending",
    [
        ({"id": "a", "done": False, "metadata": None, "createdAt": None}, False, True),
        ({"id": "a"}, False, True),
        ({"id": "a", "done": False, "error": {"code": 13, "message": "x"}}, False, False),
        ({"id": "a", "done": True, "response": {"image": "AAAA"}}, True, False),
    ],
)
def test_variants(data: dict[str, object], done: bool, pending: bool) -> None:
    operation = parse_operation(json.dumps(data).encode())
    assert operation.done == done and operation.pending == pending


@pytest.mark.parametrize("raw", [b"", b"<html>", b"[]", b'{"done": true}', b'{"id": "a", "done": true}'])
def test_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedOperation):
        parse_operation(raw)


async def test_big_bodies_are_decoded_while_the_loop_keeps_running() -> None:
    """read_operation gives the event loop a turn between slices of a big image, and an escape
    split across a slice boundary is still undone."""
    import asyncio

    from yart_jupyter.clients.operation import read_operation

    image = os.urandom(DECODE_SLICE * 6)
    raw = body(image).replace(b"/", b"\\/")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.ensure_future(tick())
    operation = await read_operation(raw)
    ticker.cancel()
    assert operation.image == image
    assert ticks >= 6
