"""What the broker does with a job whose handler met a domain error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamq
from processors.errors import InsufficientData, InvalidWalletAddress, ProcessorsError, ProviderError

__all__ = ["mapped_errors"]


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """Maps the domain's errors onto what the broker should do with the job.

    Invalid input and missing data are final (``streamq.Fatal``: dead letter at once, the plans'
    INVALID_WALLET_ADDRESS); a retryable provider failure is re-raised, so it is retried with
    the task's backoff (``streamq.Retry`` after the service's Retry-After for a 429); a
    non-retryable one is final.
    """
    try:
        yield
    except (InvalidWalletAddress, InsufficientData) as exc:
        raise streamq.Fatal(str(exc)) from exc
    except ProviderError as exc:
        if not exc.retryable:
            raise streamq.Fatal(str(exc)) from exc
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            raise streamq.Retry(str(exc), delay=float(retry_after)) from exc
        raise
    except ProcessorsError as exc:
        raise streamq.Fatal(str(exc)) from exc
