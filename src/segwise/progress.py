"""Progress of the long steps (generation, load, dbt build, validation, sync), reported to
whoever listens: the command line draws rich progress bars in a terminal; piped output,
the DAG and the tests hear nothing (or record it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

# (description, total or None) -> an update function taking (completed, total or None)
Listener = Callable[[str, int | None], Callable[[int, int | None], None]]
_listener: Listener | None = None


def listen(listener: Listener | None) -> None:
    """Route progress to ``listener`` (None: nobody listens)."""
    global _listener
    _listener = listener


@contextmanager
def task(description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """``with task("load", 8) as update: ... update(3)`` — ``update(completed, total)``;
    a no-op when nobody listens."""
    if _listener is None:
        yield lambda completed, total=None: None
        return
    update = _listener(description, total)
    try:
        yield update
    finally:
        update(-1, None)  # done
