"""One member of a team in its own process: generates its rows through a team store, or resumes its own.

``python -m tests.team_worker URL USER BASE_URL FIRST COUNT WINDOW [--resume]``: the folder's quota is
100 generations per WINDOW seconds (a minute, time-compressed for the tests and the benchmark); URL
``-`` means the process's own local store (YANDEXART_HOME) instead of a team's. It prints one JSON
line at the end: what it got.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time


async def work(url: str, user: str, base_url: str, first: int, count: int, window: float,
               resume: bool) -> dict[str, object]:
    os.environ["YANDEXART_USER"] = user
    if url != "-":
        os.environ["YANDEXART_STORE"] = url
    from yart_jupyter.clients.client import YandexArtClient
    from yart_jupyter.clients.limits import Quotas
    from yart_jupyter.clients.polling import FixedPolicy
    from yart_jupyter.core.request import build_request
    from yart_jupyter.engine import run_batch, unfinished_items
    from yart_jupyter.store import get_store

    store = get_store(url if url != "-" else None)
    started = time.monotonic()
    async with YandexArtClient(base_url=base_url, api_key="emulator-key", folder_id="emulator-folder",
                               poll_policy=FixedPolicy(0.1), quotas=Quotas(100, 50, generation_window=window),
                               env={}) as client:
        if resume:
            items = unfinished_items(store)
        else:
            items = [build_request(f"{user} picture {n}", seed=n, folder_id="emulator-folder")
                     for n in range(first, first + count)]
        images, failures = await run_batch(client, items, store=store)
        collected = time.time()  # every picture in the store
    return {"user": user, "done": len(images), "failed": [str(f) for f in failures], "items": len(items),
            "seconds": time.monotonic() - started, "collected_at": collected}


def main() -> None:
    url, user, base_url, first, count, window = sys.argv[1:7]
    result = asyncio.run(work(url, user, base_url, int(first), int(count), float(window), "--resume" in sys.argv))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
