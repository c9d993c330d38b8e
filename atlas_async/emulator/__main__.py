"""
``python -m atlas_async.emulator``: serve the emulator without the CLI extra.

Same options as ``atlas-async emulator`` (argparse instead of typer, so a
benchmark can start it with only the ``emulator`` extra installed). Prints one
line, ``Atlas emulator listening on <base URL>``, once the socket listens.
"""

from __future__ import annotations

import argparse
import sys

from ._config import config_from_options
from ._serve import RunningEmulator, run_emulator

__all__ = ["main", "run_emulator"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m atlas_async.emulator", description="Serve a local Atlas Cloud."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--api-key", action="append", default=[])
    parser.add_argument("--no-balance-key", action="append", default=[])
    parser.add_argument("--fault", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--latency", action="append", default=[], metavar="NAME=MIN,MAX"
    )
    parser.add_argument(
        "--balance",
        type=float,
        default=None,
        metavar="USD",
        help="what every key's account starts with (default: 1000000)",
    )
    parser.add_argument(
        "--state",
        default=None,
        metavar="FILE",
        help="keep predictions, uploads and balances in FILE (SQLite), so a"
        " restarted emulator finds them",
    )
    parser.add_argument(
        "--webhook-signature",
        choices=("ed25519", "both", "bare"),
        default="ed25519",
        help="where webhooks carry the Ed25519 signature: the -Ed25519 header,"
        " the bare X-AtlasCloud-Webhook-Signature header, or both",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, serve until SIGINT/SIGTERM, and return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_options(
            seed=args.seed,
            time_scale=args.time_scale,
            api_keys=args.api_key,
            no_balance_keys=args.no_balance_key,
            faults=args.fault,
            latency=args.latency,
            balance=args.balance,
            state=args.state,
            webhook_signature=args.webhook_signature,
        )
    except ValueError as exc:
        parser.error(str(exc))

    def ready(running: RunningEmulator) -> None:
        sys.stdout.write(f"Atlas emulator listening on {running.base_url}\n")
        sys.stdout.flush()

    try:
        run_emulator(args.host, args.port, config, on_ready=ready)
    except OSError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - tested in a subprocess
    sys.exit(main())
