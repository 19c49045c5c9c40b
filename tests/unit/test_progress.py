"""Long work shows progress (issue 14): the throttled StepProgress events, the CLI's
progress line on a terminal (and nothing extra when piped), and the image archive, the
data migration and gc emitting them with ``done`` growing to ``total``."""

from __future__ import annotations

import http.server
import io
import json
import threading
from pathlib import Path

import pytest
import requests

from regwizard import gc, progress
from regwizard.cli import common
from regwizard.cli.apply import result_json
from regwizard.events import (
    GcFinished,
    LogLine,
    Notice,
    RunFinished,
    RunResult,
    StepFailed,
    StepFinished,
    StepProgress,
    StepStarted,
)
from regwizard.plan import Plan
from regwizard.steps import container
from regwizard.steps.base import Ctx, HostEntry
from regwizard.steps.image import CountingReader, Image, ImageChange
from tests.fixtures import world

from .test_copy_progress import SlowCopyHost
from .test_gc import OUTPUT_28, STORAGE


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _reporter(total: int | None, unit: str = "B") -> tuple[progress.Reporter, list, Clock]:
    got: list[StepProgress] = []
    clock = Clock()
    r = progress.Reporter(got.append, "image", "node1", "loading", total, unit, clock=clock)
    return r, got, clock


# --------------------------------------------------------------------------- throttling


def test_a_flood_of_updates_is_at_most_ten_a_second_and_one_a_percent() -> None:
    r, got, clock = _reporter(1000)
    for done in range(0, 1001):  # 1001 updates within 0.5 s
        r.update(done)
        clock.now += 0.0005
    # the first one, then one per 0.1 s at most (4 more in 0.5 s), then the end
    assert [e.done for e in got][0] == 0
    assert got[-1].done == 1000 == got[-1].total
    assert len(got) <= 1 + 5 + 1
    assert len({progress.percent(e) for e in got}) == len(got)  # never twice a percent


def test_slow_work_says_each_whole_percent_once() -> None:
    r, got, clock = _reporter(10_000)
    for done in range(0, 10_001, 10):  # a second between reads
        r.update(done)
        clock.now += 1
    assert [progress.percent(e) for e in got] == list(range(0, 101))


def test_done_never_goes_back_nor_past_the_total() -> None:
    r, got, clock = _reporter(100)
    for done in (0, 50, 30, 70, 500):
        r.update(done)
        clock.now += 1
    assert [e.done for e in got] == [0, 50, 70, 100]


def test_the_end_is_said_even_inside_the_interval_and_only_once() -> None:
    r, got, clock = _reporter(100)
    r.update(0)
    r.update(100)
    r.finish()
    r.update(100)
    assert [e.done for e in got] == [0, 100]


def test_unknown_total_counts_and_new_words_are_said() -> None:
    r, got, clock = _reporter(None, "blobs")
    r.update(0)
    r.update(3)  # inside the interval: held back
    clock.now += 0.2
    r.update(3)
    clock.now += 0.2
    r.update(3, "collecting")
    r.update(3, "marking", force=True)
    assert [(e.done, e.what, e.total) for e in got] == [
        (0, "loading", None),
        (3, "loading", None),
        (3, "collecting", None),
        (3, "marking", None),
    ]


def test_progress_in_words() -> None:
    ev = StepProgress("image", "node1", "loading registry image", 33 * 2**20, 75 * 2**20)
    assert progress.text(ev) == "loading registry image   44%  33.0/75.0 MiB"
    ev = StepProgress("gc", "node1", "gc: collecting", 3, 7, "phases")
    assert progress.text(ev) == "gc: collecting   42%  3/7 phases"
    assert progress.text(StepProgress("c", "h", "copying", 0, None)) == "copying …"
    assert progress.text(StepProgress("c", "h", "copying", 2**20, None)) == "copying  1.0 MiB"
    assert progress.percent(StepProgress("c", "h", "empty", 0, 0)) == 100


# --------------------------------------------------------------------------- the CLI line


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no fd")  # 80 columns assumed


def shown(text: str) -> list[str]:
    """What a terminal shows for ``text``: ``\r`` returns to the line's start, and what
    is written then overwrites what was there."""
    out = []
    for line in text.split("\n"):
        cells: list[str] = []
        col = 0
        for ch in line:
            if ch == "\r":
                col = 0
                continue
            if col < len(cells):
                cells[col] = ch
            else:
                cells.append(ch)
            col += 1
        out.append("".join(cells).rstrip())
    return out


def _events() -> list:
    return [
        StepStarted("image", "node1", "Registry image"),
        LogLine("image", "node1", "loading /srv/registry.tar (75 MiB)"),
        StepProgress("image", "node1", "loading registry image", 0, 75 * 2**20),
        StepProgress("image", "node1", "loading registry image", 30 * 2**20, 75 * 2**20),
        Notice("image", "node1", "still loading"),
        StepProgress("image", "node1", "loading registry image", 75 * 2**20, 75 * 2**20),
        StepFinished("image", "node1", "changed", 3.0, "loaded registry:2"),
        RunFinished(RunResult(ok=True)),
    ]


@pytest.fixture
def verbosity(monkeypatch):
    def set_to(v: int) -> None:
        monkeypatch.setattr(common, "VERBOSITY", v)

    set_to(0)
    return set_to


def test_on_a_terminal_one_line_is_rewritten_then_cleared(verbosity) -> None:
    out = FakeTTY()
    emit = common.StderrPrinter(out)
    for ev in _events():
        emit(ev)
    text = out.getvalue()
    assert "\r  image        node1            loading registry image    0%  0.0/75.0 MiB" in text
    assert "loading registry image   40%  30.0/75.0 MiB" in text
    # the notice prints above the progress line, which is drawn again below it
    before, after = text.split("! image")
    assert before.endswith("\r" + " " * len(before.rsplit("\r", 2)[-2]) + "\r")
    assert "loading registry image   40%" in after.split("\n", 1)[1]
    # the step's line comes once the progress line is cleared, and nothing follows it
    assert text.endswith("~ image        node1            changed        3.0s  loaded registry:2\n")
    # what is left on the screen, as a terminal shows it: no progress line
    assert shown(text) == [
        "! image        node1            still loading",
        "~ image        node1            changed        3.0s  loaded registry:2",
        "",
    ]


def test_piped_nothing_extra_is_printed(verbosity) -> None:
    out = io.StringIO()
    emit = common.StderrPrinter(out)
    for ev in _events():
        emit(ev)
    assert "\r" not in out.getvalue()
    assert out.getvalue() == (
        "! image        node1            still loading\n"
        "~ image        node1            changed        3.0s  loaded registry:2\n"
    )


def test_quiet_hides_the_progress_line_on_a_terminal(verbosity) -> None:
    verbosity(-1)
    out = FakeTTY()
    emit = common.StderrPrinter(out)
    for ev in _events():
        emit(ev)
    assert out.getvalue() == ""


def test_a_failed_step_or_the_end_of_a_gc_clears_the_line(verbosity) -> None:
    out = FakeTTY()
    emit = common.StderrPrinter(out)
    emit(StepProgress("container", "node1", "copying images", 5, 10))
    emit(StepFailed("container", "node1", "disk full", "free space"))
    assert shown(out.getvalue())[0] == "x container    node1            failed"
    out = FakeTTY()
    emit = common.StderrPrinter(out)
    emit(StepProgress("gc", "node1", "gc: collecting", 3, 7, "phases"))
    emit(StepFinished("collect", "node1", "changed", 1.0, "2 blob(s) deleted"))
    assert out.getvalue().endswith("gc: collecting   42%  3/7 phases")  # still live
    emit(GcFinished(gc.GcResult()))
    assert shown(out.getvalue()) == [
        "~ collect      node1            changed        1.0s  2 blob(s) deleted",
        "",
    ]


def test_a_long_progress_line_fits_the_terminal(verbosity) -> None:
    out = FakeTTY()
    emit = common.StderrPrinter(out)
    emit(StepProgress("image", "node1", "x" * 300, 1, 2))
    assert max(len(part) for part in out.getvalue().split("\r")) <= 79


def test_json_output_carries_no_progress() -> None:
    """--json prints the result only: progress goes to stderr, and only on a terminal."""
    doc = json.dumps(result_json(RunResult(ok=True)))
    assert "progress" not in doc and "\r" not in doc


# --------------------------------------------------------------------------- the image archive


def _increasing_to_total(events: list, step: str) -> list[StepProgress]:
    got = [e for e in events if isinstance(e, StepProgress) and e.step == step]
    assert got, events
    done = [e.done for e in got]
    assert done == sorted(done) and len(set(done)) == len(done), done
    assert got[-1].total is not None and done[-1] == got[-1].total
    return got


def test_loading_the_image_archive_reports_the_bytes_sent(tmp_path: Path) -> None:
    archive = tmp_path / "registry-2.tar"
    archive.write_bytes(b"\0" * (3 * 2**20 + 123))
    case = world.build(
        {
            "plan": {"clients": [], "registry": {"image_archive": str(archive)}},
            "hosts": {"node1": {"images": ["registry:2"]}},
        },
        tmp_path,
    )
    ctx = case.ctx()
    e = ctx.registry
    detail = Image().apply(ctx, e, ImageChange("load", (), str(archive)))
    assert detail.startswith("loaded registry:2")
    got = _increasing_to_total(case.events, "image")
    assert got[0].done == 0 and got[-1].total == archive.stat().st_size
    assert {(g.host, g.what, g.unit) for g in got} == {("node1", "loading registry image", "B")}
    load = next(o for o in case.host().ops if o["op"] == "docker.images.load")
    assert load["size"] == archive.stat().st_size


class _Sink(http.server.BaseHTTPRequestHandler):
    got: list[tuple[str | None, int]] = []

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers["Content-Length"])
        body = self.rfile.read(n)
        _Sink.got.append((self.headers.get("Transfer-Encoding"), len(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a) -> None:  # noqa: ANN002
        pass


def test_requests_streams_a_counting_reader_with_its_length() -> None:
    """What the Docker client does with the archive: a POST body read chunk by chunk."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Sink)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        data = b"x" * (2 * 2**20 + 5)
        seen: list[int] = []
        reader = CountingReader(io.BytesIO(data), len(data), seen.append)
        url = f"http://127.0.0.1:{server.server_port}/images/load"
        assert requests.post(url, data=reader, timeout=10).status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    assert _Sink.got[-1] == (None, len(data))  # Content-Length, not chunked
    assert seen[-1] == len(data) and len(seen) > 2  # read in chunks, as it was sent


# --------------------------------------------------------------------------- migration


def test_a_migration_reports_the_bytes_copied(monkeypatch) -> None:
    monkeypatch.setattr(container, "PROGRESS_EVERY", 0.1)
    events: list = []
    plan = Plan()
    e = HostEntry("h", "node1", plan.host, host=SlowCopyHost(), is_registry=True)
    ctx = Ctx(plan, None, events.append, threading.Event(), hosts=[e])  # type: ignore[arg-type]
    argv = ["cp", "-a", "--", "/old/.", "/opt/docker-image/"]
    assert container._copy_with_progress(ctx, e, argv, "/opt/docker-image", 80 * 2**20).rc == 0
    got = _increasing_to_total(events, "container")
    assert got[0].done == 0 and got[-1].done == 80 * 2**20
    assert all(g.what == "copying images" and g.host == "node1" for g in got)


# --------------------------------------------------------------------------- gc


@pytest.mark.parametrize("dry_run", [False, True])
def test_gc_reports_its_phases(tmp_path: Path, dry_run: bool) -> None:
    case = world.build(
        {
            "setup": "applied",
            "plan": {"clients": []},
            "hosts": {
                "node1": {
                    "du": {STORAGE: 10_000_000},
                    "exec": {"stdout": OUTPUT_28, "du_after": {STORAGE: 7_000_000}},
                }
            },
        },
        tmp_path,
    )
    events: list = []
    result = gc.collect(
        case.plan,
        case.secrets,
        dry_run=dry_run,
        emit=events.append,
        connect=case.connect(),
        net=case.net,
    )
    assert result.ok, result.failure
    got = [e for e in events if isinstance(e, StepProgress)]
    assert {(g.step, g.unit, g.total) for g in got} == {("gc", "phases", 4 if dry_run else 7)}
    done = [g.done for g in got]
    assert done == sorted(done) and done[0] == 0 and done[-1] == got[-1].total
    words = [g.what for g in got]
    phases = ["gc: switching to read-only", "gc: collecting", "gc: restoring read-write"]
    if dry_run:
        phases = ["gc: collecting"]
    assert [w for w in dict.fromkeys(words) if w in phases] == phases
    assert any("2 blob(s)" in w for w in words)  # the collector's count, as it goes
    # the last progress comes before GcFinished, which ends it
    assert isinstance(events[-1], GcFinished)


# --------------------------------------------------------------------------- a real terminal

_SCRIPT = """
import sys
from regwizard.cli.common import stderr_printer
from regwizard.events import RunFinished, RunResult, StepFinished, StepProgress
emit = stderr_printer()
print("tty" if emit.tty else "not a tty", flush=True)
for done in (0, 40, 80):
    emit(StepProgress("image", "node1", "loading registry image", done * 2**20, 80 * 2**20))
emit(StepFinished("image", "node1", "changed", 1.0, "loaded registry:2"))
emit(RunFinished(RunResult(ok=True)))
"""


def _run_on(stderr_pty: bool) -> bytes:
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            stdout=subprocess.PIPE,
            stderr=slave if stderr_pty else subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
            timeout=60,
            check=True,
        )
        if not stderr_pty:
            return proc.stdout + proc.stderr
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            out += chunk
        return proc.stdout + out
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_a_real_terminal_gets_the_line_and_a_pipe_does_not() -> None:
    on_tty = _run_on(stderr_pty=True).decode()
    assert on_tty.startswith("tty\n")
    assert "\r  image        node1            loading registry image   50%  40.0/80.0 MiB" in on_tty
    assert shown(on_tty.replace("\r\n", "\n"))[-2:] == [
        "~ image        node1            changed        1.0s  loaded registry:2",
        "",
    ]
    piped = _run_on(stderr_pty=False).decode()
    assert piped == (
        "not a tty\n~ image        node1            changed        1.0s  loaded registry:2\n"
    )
