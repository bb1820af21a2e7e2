"""The fault matrix and the soak: every fault at every phase ends in the image or one clear typed
error, never a hang, never a lost operation, never an unhandled task exception or a leaked
connection. The suite prints a table of what was injected and how it ended (see conftest)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable
from typing import Any

import pytest

from yart_jupyter import errors
from yart_jupyter.clients.client import YandexArtClient
from yart_jupyter.clients.credentials import OAuthToken
from yart_jupyter.clients.polling import FixedPolicy
from yart_jupyter.clients.transport import RetryPolicy
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.engine import run_batch
from yart_jupyter.store import get_store

FAULTS: dict[str, dict[str, Any]] = {
    "429 + Retry-After": {"kind": "status", "status": 429, "retry_after": 0.2},
    "429": {"kind": "status", "status": 429},
    "500": {"kind": "status", "status": 500},
    "502": {"kind": "status", "status": 502},
    "503": {"kind": "status", "status": 503},
    "504": {"kind": "status", "status": 504},
    "dropped before response": {"kind": "drop_before"},
    "dropped after response": {"kind": "drop_after"},
    "slow past timeout": {"kind": "slow", "seconds": 3.0},
    "malformed JSON": {"kind": "malformed"},
    "truncated JSON": {"kind": "truncated"},
    "401 (token to refresh)": {"kind": "expire_tokens"},
    "operation failed": {"kind": "fail"},
    "operation not found": {"kind": "status", "status": 404},
    "persistent 503": {"kind": "status", "status": 503, "times": 50},
}
PHASES = ("start", "poll", "token")
#: Faults that only make sense at some phases.
ONLY = {"operation failed": {"start"}, "operation not found": {"poll"}, "401 (token to refresh)": {"start", "poll"}}
CASES = [(f, p) for f in FAULTS for p in PHASES if p in ONLY.get(f, set(PHASES))]

RETRY = RetryPolicy(max_attempts=4, base_delay=0.02, max_delay=0.2, max_elapsed=5.0, max_retry_after=1.0)
HANG = 20.0  # seconds: far past every timeout configured here


@pytest.mark.parametrize("fault,phase", CASES, ids=[f"{f} @ {p}" for f, p in CASES])
async def test_fault_matrix(
    fault: str, phase: str, make_client: Callable[..., YandexArtClient], emulator: Emulator,
    record_property: Callable[[str, object], None],
) -> None:
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))
    spec = dict(FAULTS[fault])
    kind = spec.pop("kind")
    emulator.config.duration = Duration("fixed", 0.2)
    emulator.config.iam_token_ttl = 12 * 3600
    credentials = OAuthToken("emulator-oauth", iam_url=f"{emulator.url}/iam/v1/tokens")
    credentials._timeout = 1.0  # like the API requests: a slow token exchange is past its timeout too
    client = make_client(api_key=None, credentials=credentials, retry=RETRY, request_timeout=1.0,
                         poll_policy=FixedPolicy(0.1))
    store = get_store()
    outcome = "recovered"
    async with client:
        if phase == "token" or kind == "expire_tokens":
            await credentials.authorization(client.connection.require_session())  # a token exists: now break things
        if kind == "expire_tokens":
            emulator.iam.issued.clear()
            if phase == "poll":
                emulator.config.duration = Duration("fixed", 0.5)
        elif phase == "token":
            emulator.iam.issued.clear()  # the next API call gets 401, so the token exchange runs and meets the fault
            emulator.inject(kind, "token", **spec)
        elif phase == "start":
            emulator.inject(kind, "start", **spec)
        if phase == "poll" and kind != "expire_tokens":
            emulator.inject(kind, "poll", **spec)
        request = client.build_request(f"fault {fault} at {phase}", seed=7)
        try:
            images, failures = await asyncio.wait_for(run_batch(client, [request], store=store, timeout=8.0), HANG)
        except asyncio.TimeoutError:
            pytest.fail(f"{fault} at {phase}: hung past {HANG} s")
        if failures:
            error = failures[0]
            assert isinstance(error, errors.YandexArtError)
            assert "\n" not in str(error) and len(error._render_traceback_()) == 1
            outcome = f"failed clearly: {type(error).__name__}"
        else:
            assert images[0].image_bytes
        if phase == "poll" and kind == "expire_tokens":
            assert emulator.stats.by_status[401] >= 1
    assert client.connection.session is None  # closed: no leaked connection
    lost = [op for op in emulator.operations if store.get(op) is None]
    record_property("fault_row", (fault, phase, outcome, len(lost)))
    assert lost == [], f"operations missing from the store: {lost}"
    assert loop_errors == [], loop_errors


@pytest.mark.timeout(300)
async def test_soak(make_client: Callable[..., YandexArtClient], emulator: Emulator,
                    record_property: Callable[[str, object], None]) -> None:
    """Many generations through 10% random faults: none lost, none recorded twice, memory bounded."""
    count = int(os.environ.get("YART_SOAK", "150"))
    emulator.config.duration = Duration("uniform", 0.02, 0.1)
    emulator.config.fault_rate = 0.10
    emulator.config.fault_kinds = ("status", "drop_before", "drop_after", "malformed", "truncated")
    retry = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.1, max_elapsed=10.0, max_retry_after=0.2)
    store = get_store()
    sizes = []
    async with make_client(retry=retry, poll_policy=FixedPolicy(0.03), request_timeout=2.0) as client:
        done = failed = 0
        for start in range(0, count, 50):
            requests = [client.build_request("soak", seed=i + 1) for i in range(start, min(count, start + 50))]
            images, failures = await run_batch(client, requests, store=store)
            done += len(images)
            failed += len(failures)
            del images
            gc.collect()
            with open("/proc/self/statm") as handle:
                sizes.append(int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    records = store.history(limit=None)
    ops = set(emulator.operations)
    assert done + failed == count
    assert len(records) == len({r.operation_id for r in records})  # no duplicate records
    assert ops == {r.operation_id for r in records}  # every operation the server made is recorded
    assert emulator.stats.faults_injected > count // 20
    assert all(r.status in ("done", "failed") for r in records), [r.status for r in records]
    record_property("fault_row", (f"soak: {count} generations, 10% faults ({emulator.stats.faults_injected} injected)",
                                  "all", f"{done} images, {failed} failed clearly", 0))
    if len(sizes) > 2:
        assert sizes[-1] - sizes[1] < 60 * 1024 * 1024  # bounded: no image bytes kept
