"""A step's long work shows a ProgressBar (issue 14): on the run screen while a
StepProgress is live for a step, hidden when that step finishes; the same on the gc
screen, until the collection ends."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label, ProgressBar

from regwizard.events import GcFinished, GcResult, StepFinished, StepProgress, StepStarted
from regwizard.screens.base import WorkProgress
from regwizard.screens.gc import GcEvent
from regwizard.screens.run import EngineEvent

from .conftest import SIZE, make_app
from .fakes import FakeBackend
from .test_gc import _open_gc, _plan_file
from .walk import activate, screen_name, settle, walk_to_review

MIB = 2**20


def _bar(pilot) -> tuple[WorkProgress, ProgressBar, str]:  # noqa: ANN001
    box = pilot.app.screen.query_one(WorkProgress)
    words = str(box.query_one(".work-progress-what", Label).render())
    return box, box.query_one(ProgressBar), words


async def _post(pilot, message) -> None:  # noqa: ANN001
    screen = pilot.app.screen
    screen.post_message(message)
    await pilot.pause()
    screen._flush()  # what the 0.1 s interval does, now
    await pilot.pause()


async def test_the_run_screen_shows_a_step_progress_then_hides_it() -> None:
    backend = FakeBackend(run_modes=["slow"])  # a run that stays on its first step
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await pilot.click("#next")
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "RunScreen"
        assert backend.started.wait(5)
        box, bar, _ = _bar(pilot)
        assert not box.display  # nothing long going on yet

        await _post(pilot, EngineEvent(StepStarted("image", "node1", "Registry image")))
        for done in (0, 30 * MIB, 45 * MIB):
            await _post(
                pilot,
                EngineEvent(
                    StepProgress("image", "node1", "loading registry image", done, 75 * MIB)
                ),
            )
        box, bar, words = _bar(pilot)
        assert box.display and box.region.height > 0  # on the screen
        assert (bar.progress, bar.total, bar.percentage) == (45 * MIB, 75 * MIB, 0.6)
        assert words == "node1: loading registry image   60%  45.0/75.0 MiB"

        # another host's step finishing leaves it; its own step finishing hides it
        await _post(pilot, EngineEvent(StepFinished("hosts-file", "client1", "changed", 0.1)))
        assert _bar(pilot)[0].display
        await _post(pilot, EngineEvent(StepFinished("image", "node1", "changed", 3.0)))
        box, _, _ = _bar(pilot)
        assert not box.display and box.region.height == 0

        # an unknown total: the bar pulses (no total), the words say how much so far
        await _post(
            pilot, EngineEvent(StepProgress("container", "node1", "copying images", 0, None))
        )
        box, bar, words = _bar(pilot)
        assert box.display and bar.total is None
        assert words == "node1: copying images …"

        await pilot.press("escape")  # cancel the run: the failure panel replaces the progress
        await pilot.pause()
        await pilot.click("#yes")
        assert backend.cancelled.wait(5)
        for _ in range(5):
            await pilot.pause()
        assert pilot.app.screen.query_one("#failure").display
        assert not _bar(pilot)[0].display


async def test_the_gc_screen_shows_the_phases_until_the_collection_ends(tmp_path: Path) -> None:
    app = make_app(FakeBackend())
    async with app.run_test(size=SIZE) as pilot:
        await _open_gc(pilot, _plan_file(tmp_path))
        box, _, _ = _bar(pilot)
        assert not box.display
        await _post(
            pilot,
            GcEvent(StepProgress("gc", "node1", "gc: switching to read-only", 2, 7, "phases")),
        )
        box, bar, words = _bar(pilot)
        assert box.display and (bar.progress, bar.total) == (2, 7)
        assert words == "node1: gc: switching to read-only   28%  2/7 phases"
        await _post(pilot, GcEvent(StepFinished("read-only", "node1", "changed", 1.0)))
        assert _bar(pilot)[0].display  # a phase ending is not the end of the gc
        await _post(pilot, GcEvent(GcFinished(GcResult(ok=True))))
        assert not _bar(pilot)[0].display

        # a whole (fake) reclaim: its progress events come and go with it
        await activate(pilot, "#reclaim")
        await settle(pilot)
        assert "read-write again" in str(pilot.app.screen.query_one("#gc-status").render())
        assert not _bar(pilot)[0].display
