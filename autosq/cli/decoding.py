"""A line on stderr every few seconds while a dataset's images are decoded into the cache (the
first load of a large folder takes minutes), for every command that loads data."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator


@contextlib.contextmanager
def decoding_lines(every: float = 5.0) -> Iterator[None]:
    """Within the block, a dataset decoded into the cache prints ``decoding images into the
    cache: DONE of TOTAL (RATE/s)`` every ``every`` seconds and when it is done."""
    from autosq.accuracy.datasets.cache import decode_progress

    start = time.monotonic()
    last = [start]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < every:
            return
        last[0] = now
        rate = done / max(now - start, 1e-9)
        print(f"decoding images into the cache: {done:,} of {total:,} ({rate:,.0f}/s)",
              file=sys.stderr, flush=True)

    with decode_progress(report):
        yield
