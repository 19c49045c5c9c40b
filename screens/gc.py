"""Reclaim disk: garbage-collect the plan's registry, with progress and the report.

Dry run lists what would go (the registry stays read-write); Reclaim switches the
registry to read-only, collects, and switches it back, whatever happens. The backend
runs in a thread worker and reports through ``emit``, which only posts messages.
"""

from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Footer, Label, Log, Static

from regwizard.errors import RegwizardError
from regwizard.events import (
    Event,
    GcFinished,
    GcOutput,
    GcResult,
    LogLine,
    StepFailed,
    StepFinished,
    StepProgress,
    StepStarted,
)
from regwizard.gc import report_lines
from regwizard.screens.base import WizardScreen, WorkProgress, plain

FLUSH_INTERVAL = 0.1
MAX_LOG_LINES = 5000

INTRO = (
    "Reclaim makes the registry read-only (pushes fail, pulls go on), deletes the blobs no "
    "manifest uses, then makes it read-write again, even if that fails."
)


class GcEvent(Message):
    """An engine event, carried from the gc thread to the UI."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class GcDone(Message):
    def __init__(self, result: GcResult | None, error: str = "") -> None:
        super().__init__()
        self.result = result
        self.error = error


class GcScreen(WizardScreen):
    STEP = "gc"
    AUTO_FOCUS = "#dry-run"
    BINDINGS = [Binding("escape", "cancel_or_back", "Cancel / Back")]

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._pending: list[str] = []
        self._pending_work: StepProgress | None = None
        self._status = ""

    def compose_steps(self) -> ComposeResult:
        # not a step of the setup flows: the bar names this action alone
        yield Horizontal(
            Label("regwizard", id="app-name"),
            Label("Reclaim disk", classes="step -current"),
            id="steps-bar",
        )

    def compose(self) -> ComposeResult:
        plan = self.state.plan
        yield from self.compose_steps()
        with Vertical(id="gc-body"):
            yield Label("Reclaim disk", classes="page-title")
            yield Static(INTRO, classes="page-intro", markup=False)
            yield Static(
                f"{plan.registry.container} on {plan.host.name}, storage {plan.registry.storage}",
                id="gc-target",
                markup=False,
            )
            with Horizontal(classes="actions"):
                yield Button("Dry run", id="dry-run", variant="primary", compact=True)
                yield Button("Reclaim", id="reclaim", variant="warning", compact=True)
                yield Checkbox("Also delete untagged manifests", id="untagged", compact=True)
            yield Label("", id="gc-status", markup=False)
            yield WorkProgress(id="gc-progress")
            yield Static("", id="gc-report", markup=False)
            yield Log(max_lines=MAX_LOG_LINES, id="gc-log")
        with Horizontal(id="nav"):
            yield Button("Quit", id="quit", variant="error")
            yield Static(classes="spacer")
            yield Button("Cancel", id="cancel", variant="warning", disabled=True)
            yield Button("Back", id="back")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#gc-report").display = False
        self.query_one("#cancel").display = False
        self.query_one("#gc-log", Log).anchor()
        self.set_interval(FLUSH_INTERVAL, self._flush)

    # -- starting ----------------------------------------------------------------------------

    @on(Button.Pressed, "#dry-run")
    def dry_run_pressed(self) -> None:
        self._start(dry_run=True)

    @on(Button.Pressed, "#reclaim")
    def reclaim_pressed(self) -> None:
        self._start(dry_run=False)

    def _start(self, *, dry_run: bool) -> None:
        if self.state.running:
            return
        self._cancel = threading.Event()
        self.state.running = True
        self.state.run_cancel = self._cancel
        self._busy(True)
        self.query_one("#gc-log", Log).clear()
        self.query_one("#gc-report").display = False
        self._pending_work = None
        self.query_one(WorkProgress).hide()
        self._set_status("Dry run: listing what would go …" if dry_run else "Collecting …")
        untagged = self.query_one("#untagged", Checkbox).value
        self.collect(dry_run, untagged, self._cancel)

    def _busy(self, busy: bool) -> None:
        for sel in ("#dry-run", "#reclaim", "#untagged", "#back"):
            self.query_one(sel).disabled = busy
        cancel = self.query_one("#cancel", Button)
        cancel.disabled = not busy
        cancel.display = busy

    def _set_status(self, text: str) -> None:
        self._status = text
        self.query_one("#gc-status", Label).update(text)

    def _emit(self, event: Event) -> None:
        """Called from the gc thread: post, nothing else."""
        self.post_message(GcEvent(event))

    @work(thread=True, exclusive=True, exit_on_error=False, group="gc")
    def collect(self, dry_run: bool, untagged: bool, cancel: threading.Event) -> None:
        try:
            result = self.wizard.backend.gc(
                self.state.plan,
                self.state.secrets,
                dry_run=dry_run,
                delete_untagged=untagged,
                emit=self._emit,
                cancel=cancel,
            )
        except RegwizardError as e:
            self.post_message(GcDone(None, e.cause))
            return
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            self.post_message(GcDone(None, f"{type(e).__name__}: {e}"))
            return
        self.post_message(GcDone(result))

    # -- events --------------------------------------------------------------------------------

    def on_gc_event(self, message: GcEvent) -> None:
        ev = message.event
        if isinstance(ev, StepProgress):
            self._pending_work = ev  # shown at the next flush: a burst costs one update
        elif isinstance(ev, GcOutput):
            if " marking " not in ev.text:
                self._pending.append(f"  {plain(ev.text)}")
            self._set_status(f"Collecting … {ev.blobs} blob(s) eligible so far")
        elif isinstance(ev, LogLine):
            self._pending.append(f"{ev.host}: {plain(ev.text)}")
        elif isinstance(ev, StepStarted):
            self._pending.append(f"== {ev.title} ({ev.host})")
        elif isinstance(ev, StepFinished) and ev.detail:
            self._pending.append(f"   {plain(ev.detail)}")
        elif isinstance(ev, StepFailed):
            self.query_one(WorkProgress).ends_with(ev.step, ev.host)
            self._pending.append(f"x  {plain(ev.cause)}")
            if ev.fix:
                self._pending.append(f"   fix: {plain(ev.fix)}")
        elif isinstance(ev, GcFinished):
            self._pending_work = None  # GcDone carries the result
            self.query_one(WorkProgress).hide()

    def _flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            self.query_one("#gc-log", Log).write_lines(lines)
        if self._pending_work is not None:
            w, self._pending_work = self._pending_work, None
            self.query_one(WorkProgress).show(w)

    def on_gc_done(self, message: GcDone) -> None:
        self._flush()
        self.query_one(WorkProgress).hide()
        self.state.running = False
        self.state.run_cancel = None
        self._busy(False)
        report = self.query_one("#gc-report", Static)
        result = message.result
        if result is None:
            self._set_status(f"Failed: {message.error}")
            self.remove_class("-ok")
            self.add_class("-failed")
            return
        lines = report_lines(result)
        if result.failure is not None:
            lines = [f"failed: {result.failure.cause}", f"fix: {result.failure.fix}", *lines]
        report.update("\n".join(lines))
        report.display = True
        ok = result.ok
        self.set_class(ok, "-ok")
        self.set_class(not ok, "-failed")
        if ok and result.dry_run:
            self._set_status("Dry run finished: nothing was deleted")
        elif ok:
            self._set_status("Reclaimed; the registry is read-write again")
        else:
            self._set_status("Garbage collection failed" if result.restored else "STILL READ-ONLY")

    # -- leaving -------------------------------------------------------------------------------

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self._cancel.set()
        self._set_status("Cancelling: switching the registry back to read-write …")

    @on(Button.Pressed, "#back")
    def back_pressed(self) -> None:
        self.wizard.goto("welcome")

    def action_cancel_or_back(self) -> None:
        if self.state.running:
            self.cancel_pressed()
        else:
            self.back_pressed()
