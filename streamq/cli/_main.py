"""``main``: parses the arguments, sets up logging, runs the command and turns its errors
into one line on stderr and an exit code (0 ok, 1 failed, 2 usage)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import msgspec

from streamq._errors import InvalidJob, StreamqError
from streamq.cli._logs import throttle_unreachable
from streamq.cli._output import CliError, UsageError
from streamq.cli._parser import build_parser

# Commands that run for long and log as they go; the others only log warnings.
_LONG_RUNNING = {"worker", "serve", "run", "redis", "bench"}


def _fail(message: str, code: int) -> int:
    print(f"streamq: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``streamq argv...`` (default: the process's arguments); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    if getattr(args, "redis_url", None) is None and args.global_redis_url:
        args.redis_url = args.global_redis_url
    level = args.log_level or ("INFO" if args.command in _LONG_RUNNING else "WARNING")
    if level.upper() not in logging.getLevelNamesMapping():
        return _fail(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR", 2)
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command in _LONG_RUNNING:
        throttle_unreachable()
    try:
        return int(args.fn(args))
    except (UsageError, InvalidJob) as exc:
        return _fail(str(exc), 2)
    except (CliError, StreamqError, msgspec.ValidationError) as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `streamq ... | head`
        return 0
    except Exception as exc:  # never a traceback for an operator; the type says where to look
        return _fail(f"unexpected {type(exc).__name__}: {exc}", 1)
