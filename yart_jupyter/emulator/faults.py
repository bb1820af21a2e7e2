"""Applying an injected fault to one request: an error status, a drop, a delay, a bad body."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from .config import Fault
from .shapes import ApiError, Dropped

FAILURE = web.RequestKey("failure", tuple)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def apply_fault(fault: Fault, request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer ``request`` as ``fault`` says (some faults still run the real handler)."""
    if fault.kind == "status":
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        raise ApiError(fault.status, fault.message, headers)
    if fault.kind == "drop_before":
        raise Dropped()
    if fault.kind == "slow":
        await request.read()  # the body has arrived: the handler still runs if the client hangs up
        await asyncio.sleep(fault.seconds)
        return await handler(request)
    if fault.kind == "malformed":
        return web.Response(status=200, text="<html><body>502 upstream hiccup</body>", content_type="text/html")
    if fault.kind == "fail":
        request[FAILURE] = (fault.code, fault.message)
        return await handler(request)
    response = await handler(request)
    if fault.kind == "slow_after":
        await asyncio.sleep(fault.seconds)
        return response
    if fault.kind == "drop_after":
        raise Dropped()
    assert isinstance(response, web.Response) and response.body is not None
    body = bytes(response.body)  # type: ignore[arg-type]
    return web.Response(status=200, body=body[: len(body) // 2], content_type="application/json")
