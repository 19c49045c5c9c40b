"""A long copy of old images reports its progress in the log (the CLI and the wizard
show LogLine events), and the copy's own result is what the step sees."""

from __future__ import annotations

import threading
import time

from regwizard.events import LogLine
from regwizard.hosts import Result
from regwizard.plan import Plan
from regwizard.steps import container
from regwizard.steps.base import Ctx, HostEntry


class SlowCopyHost:
    """cp takes a while; du reports more bytes each time it is asked."""

    def __init__(self) -> None:
        self.sizes = iter([0, 10 * 2**20, 40 * 2**20, 80 * 2**20] + [80 * 2**20] * 50)

    def run(self, argv, **kw):  # noqa: ANN001, ANN003, ANN201
        if argv[:2] == ["du", "-sb"]:
            return Result(0, f"{next(self.sizes)}\t{argv[-1]}\n".encode(), b"")
        if argv[0] == "cp":
            time.sleep(0.35)
            return Result(0, b"", b"")
        raise AssertionError(argv)


def test_a_long_copy_logs_its_progress(monkeypatch) -> None:
    monkeypatch.setattr(container, "PROGRESS_EVERY", 0.1)
    lines: list = []
    plan = Plan()
    e = HostEntry("h", "node1", plan.host, host=SlowCopyHost(), is_registry=True)
    ctx = Ctx(plan, None, lines.append, threading.Event(), hosts=[e])  # type: ignore[arg-type]
    argv = ["cp", "-a", "--", "/old/.", "/opt/docker-image/"]
    res = container._copy_with_progress(ctx, e, argv, "/opt/docker-image", 80 * 2**20)
    assert res.rc == 0
    logged = [ln for ln in lines if isinstance(ln, LogLine)]  # besides StepProgress events
    said = [ln.text for ln in logged if ln.text.startswith("copied ")]
    assert said, lines
    assert said[0] == "copied 10 MiB of 80 MiB (12%)"
    assert all(ln.step == "container" and ln.host == "node1" for ln in lines)
