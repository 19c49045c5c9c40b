"""Progress of long work inside a step, throttled, and said in words.

``Reporter(emit, step, host, what, total)`` turns many ``update(done)`` calls (one per
chunk read, per collector line) into few ``events.StepProgress``: the first one, then at
most one every ``MIN_INTERVAL`` seconds and only when the whole percent (or, with an
unknown total, the count; or the words) changed, and always the one that reaches
``total``. ``done`` never goes back and never passes ``total``. No UI here: the CLI
prints ``text(ev)`` on a terminal's line, the wizard shows a ProgressBar.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from regwizard.events import Event, StepProgress

MIN_INTERVAL = 0.1  # seconds: at most ~10 progress events a second


class Reporter:
    def __init__(
        self,
        emit: Callable[[Event], None],
        step: str,
        host: str,
        what: str,
        total: int | None,
        unit: str = "B",
        *,
        interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.emit = emit
        self.step, self.host, self.what = step, host, what
        self.total = total if total is None else max(0, int(total))
        self.unit = unit
        self.interval = interval
        self.clock = clock
        self.done = 0  # the furthest seen
        self._sent: StepProgress | None = None
        self._sent_at = 0.0
        self._lock = threading.Lock()

    def update(self, done: int, what: str | None = None, *, force: bool = False) -> None:
        """Progress is ``done`` now (and is called ``what``): emitted if it is due."""
        with self._lock:
            done = max(self.done, int(done))
            if self.total is not None:
                done = min(done, self.total)
            self.done = done
            if what is not None:
                self.what = what
            ev = StepProgress(self.step, self.host, self.what, done, self.total, self.unit)
            if not self._due(ev, force):
                return
            self._sent, self._sent_at = ev, self.clock()
        self.emit(ev)

    def finish(self) -> None:
        """The work is complete: ``done`` = ``total`` (when known), emitted unless it was."""
        self.update(self.total if self.total is not None else self.done)

    def _due(self, ev: StepProgress, force: bool) -> bool:
        last = self._sent
        if last is None:
            return True
        if ev == last:
            return False
        if force:
            return True
        if ev.total is not None and ev.done >= ev.total:
            return True  # the end is always said
        if self.clock() - self._sent_at < self.interval:
            return False
        if ev.what != last.what:
            return True
        if ev.total:
            return percent(ev) != percent(last)
        return ev.done != last.done


def percent(ev: StepProgress) -> int | None:
    """Whole percent done (None: the total is unknown)."""
    if ev.total is None:
        return None
    if ev.total <= 0:
        return 100
    return min(100, ev.done * 100 // ev.total)


def amount(n: int, unit: str) -> str:
    if unit == "B":
        return f"{n / 2**20:.1f} MiB"
    return f"{n} {unit}".rstrip()


def text(ev: StepProgress) -> str:
    """``loading registry image  42%  31.5/75.0 MiB`` (``collecting  12 blobs``)."""
    if ev.total is None:
        return f"{ev.what}  {amount(ev.done, ev.unit)}" if ev.done else f"{ev.what} …"
    if ev.unit == "B":
        count = f"{ev.done / 2**20:.1f}/{ev.total / 2**20:.1f} MiB"
    else:
        count = f"{ev.done}/{amount(ev.total, ev.unit)}"
    return f"{ev.what}  {percent(ev):3d}%  {count}"
