"""``make demo``: generate on the embedded emulator, no credentials needed, and save the results."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .client import Progress, YandexArtClient

OUT = Path("demo-output")


async def _run() -> list[Path]:
    saved = []

    def status(event: Progress) -> None:
        print(f"  {event.phase:<8} {event.operation_id or '':<22} {event.elapsed:5.1f} s", flush=True)

    async with YandexArtClient(base_url="emulator") as client:
        for prompt, seed, aspect in [
            ("a pattern of pastel colored succulents, top view", 1863, "2:1"),
            ("a lighthouse on a cliff at dawn, oil painting", 42, "9:16"),
        ]:
            print(f"{prompt!r} seed={seed} aspect={aspect}")
            image = await client.generate(prompt, seed=seed, aspect=aspect, on_progress=status)
            path = image.save(OUT / f"seed{seed}-{aspect.replace(':', 'x')}.jpg", overwrite=True)
            print(f"  -> {path} ({image.caption()})")
            saved.append(path)
    return saved


def main() -> None:
    """Run the demo and print where the pictures are."""
    os.environ.setdefault("YANDEXART_EMULATOR_DURATION", "lognormal:1.5:0.3:0.5:4")
    saved = asyncio.run(_run())
    print(f"\nDemo done: {len(saved)} images in {OUT.resolve()}")


if __name__ == "__main__":
    main()
