"""Run the emulator standalone: ``python -m yart_jupyter.emulator --port 8765``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import sys

from .config import DURATION_FORMS, Duration, EmulatorConfig
from .server import Emulator


def duration(spec: str) -> Duration:
    """An argparse type: a duration spec, refused in argparse's one line when it cannot be read."""
    try:
        return Duration.parse(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r}: give {DURATION_FORMS}") from None


def main(argv: list[str] | None = None, prog: str = "python -m yart_jupyter.emulator") -> None:
    """Parse the options, serve until interrupted; bad options and a port in use are one line.
    ``prog``: how the command was called, for its usage line (``yart emulator``)."""
    parser = argparse.ArgumentParser(prog=prog, description="Run the YandexART emulator on a loopback port.")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", action="append", default=[], help="a valid API key (repeatable)")
    parser.add_argument("--iam-token", action="append", default=[], help="a valid IAM token (repeatable)")
    parser.add_argument("--folder", action="append", default=[], help="a known folder id (repeatable)")
    parser.add_argument("--duration", type=duration, default="lognormal:1.5:0.35:0.3:6",
                        help=f"generation time: {DURATION_FORMS}")
    parser.add_argument("--generate-per-minute", type=int, default=500)
    parser.add_argument("--generate-window", type=float, default=60.0,
                        help="the generation quota's window in seconds (60: per minute; shorter for benchmarks)")
    parser.add_argument("--generate-per-day", type=int, default=None, help="a daily generation quota (off by default)")
    parser.add_argument("--reads-per-second", type=int, default=50)
    parser.add_argument("--moderate", action="append", default=[], help="a word moderation refuses")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability of a random 5xx/429")
    parser.add_argument("--random-seed", type=int, default=None, help="make durations and faults repeatable")
    parser.add_argument("--realistic-payloads", action="store_true", help="1-1.6 MB JPEGs, like the real service")
    parser.add_argument("--photo", metavar="FILE", help="return this JPEG photograph for every JPEG generation")
    parser.add_argument("--images-duration", type=duration, default="uniform:3:6",
                        help="how long one Images API request takes (the service: about 3-6 s)")
    parser.add_argument("--deny", action="append", default=[], metavar="MODEL",
                        help="answer 403 Access to model … denied for MODEL (e.g. yandex-art/latest, as reported "
                             "since 2026-09); repeatable")
    parser.add_argument("--russian-moderation", action="store_true",
                        help="refuse moderated prompts on the asynchronous API in Russian, as reported")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        duration=args.duration,
        generate_per_minute=args.generate_per_minute,
        generate_per_day=args.generate_per_day,
        generate_window=args.generate_window,
        reads_per_second=args.reads_per_second,
        fault_rate=args.fault_rate,
        random_seed=args.random_seed,
        images_duration=args.images_duration,
        denied_models=set(args.deny),
        russian_moderation=args.russian_moderation,
    )
    if args.api_key:
        config.api_keys = set(args.api_key)
    if args.iam_token:
        config.iam_tokens = set(args.iam_token)
    if args.folder:
        config.folders = set(args.folder)
    if args.moderate:
        config.moderation_words = {w.lower() for w in args.moderate}
    if args.photo:
        try:
            with open(args.photo, "rb") as handle:
                config.photo = handle.read()
        except OSError as exc:
            parser.error(f"--photo {args.photo}: {exc.strerror}")
    if args.realistic_payloads:
        config.payload_bytes = (1_000_000, 1_600_000)

    async def serve() -> None:
        emulator = Emulator(config)
        try:
            url = await emulator.start(args.host, args.port)
        except (OSError, ValueError) as exc:  # a port in use, a host that is not loopback
            reason: object = exc
            if isinstance(exc, OSError):
                in_use = exc.errno == errno.EADDRINUSE
                reason = f"port {args.port} is in use (--port 0 picks a free one)" if in_use else exc.strerror
            print(f"{parser.prog}: cannot serve on {args.host}:{args.port}: {reason}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"YandexART emulator on {url}  (API key {config.default_api_key!r}, folder {config.default_folder!r})",
              flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await emulator.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
