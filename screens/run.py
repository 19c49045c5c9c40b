"""Step 5: run the plan. Steps table, progress, live log; failure panel with the fix.

The backend runs in a thread worker and reports through ``emit``, which only
posts an :class:`EngineEvent` to this screen. Log lines and progress are
buffered and flushed ten times a second, so a chatty run cannot flood the UI.
"""

from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Label, Log, ProgressBar, Static
from textual.worker import Worker, WorkerState

from regwizard.errors import Cancelled, RegwizardError
from regwizard.events import (
    Event,
    LogLine,
    Progress,
    RunFinished,
    RunResult,
    StepFailed,
    StepFinished,
    StepProgress,
    StepStarted,
)
from regwizard.screens.base import WizardScreen, WorkProgress, cell, plain
from regwizard.screens.dialogs import ConfirmDialog, ErrorDialog, ask_and_save_plan

FLUSH_INTERVAL = 0.1
MAX_LOG_LINES = 5000

STATUS_TEXT = {
    "running": "running …",
    "changed": "✓ changed",
    "unchanged": "✓ unchanged",
    "failed": "✗ failed",
    "skipped": "- skipped",
    "would-change": "would change",
}


class EngineEvent(Message):
    """An engine event, carried from the run thread to the UI."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class RunScreen(WizardScreen):
    STEP = "run"
    AUTO_FOCUS = "#cancel"
    BINDINGS = [Binding("escape", "cancel_run", "Cancel run")]

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._pending_lines: list[str] = []
        self._pending_progress: Progress | None = None
        self._pending_work: StepProgress | None = None
        self._run_worker: Worker | None = None
        self._finished = False
        self._failure: StepFailed | None = None
        self._titles: dict[str, str] = {}
        self._evidence: tuple[str, str, str, str] = ("", "", "", "")

    def compose(self) -> ComposeResult:
        yield from self.compose_steps()
        with Vertical(id="run-body"):
            yield Label("Setting up the registry", id="run-title", classes="page-title")
            yield ProgressBar(total=100, show_eta=False, id="progress")
            yield WorkProgress(id="work-progress")
            yield DataTable(id="steps", cursor_type="row", zebra_stripes=True)
            with Vertical(id="failure"):
                yield Label("", id="failure-title", classes="section-title", markup=False)
                yield Static("", id="failure-cause", markup=False)
                yield Static("", id="failure-fix", markup=False)
                with Horizontal(classes="actions"):
                    yield Button("Retry", id="retry", variant="primary", compact=True)
                    yield Button("Back to edit", id="back-to-edit", compact=True)
                    yield Button("Save plan and quit", id="save-quit", compact=True)
                    yield Button("Details", id="details", compact=True)
            yield Log(max_lines=MAX_LOG_LINES, id="log")
        with Horizontal(id="nav"):
            yield Button("Quit", id="quit", variant="error")
            yield Static(classes="spacer")
            yield Button("Cancel run", id="cancel", variant="warning")
            yield Button("Results", id="results", variant="primary", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#steps", DataTable)
        table.add_column("Step", key="step")
        table.add_column("Host", key="host")
        table.add_column("Status", key="status", width=12)
        table.add_column("Seconds", key="seconds", width=7)
        # Anchored, the log follows new lines until the person scrolls up, and again once
        # they are back at the end. (Log's own scroll_end=True follows only when the view
        # was at the end before a write: a batch written before the first layout left
        # it short of the end, and it never followed again.)
        self.query_one("#log", Log).anchor()
        self.set_interval(FLUSH_INTERVAL, self._flush)
        self.start_run()

    # -- running ---------------------------------------------------------------------------

    def start_run(self) -> None:
        self._cancel = threading.Event()
        self._finished = False
        self._failure = None
        self._pending_lines.clear()
        self._pending_progress = None
        self._pending_work = None
        self.query_one(WorkProgress).hide()
        self._titles.clear()
        self.query_one("#steps", DataTable).clear()
        self.query_one("#log", Log).clear()
        self.query_one("#progress", ProgressBar).update(total=100, progress=0)
        self.query_one("#failure").display = False
        self.query_one("#run-title", Label).update("Setting up the registry")
        self.query_one("#cancel", Button).label = "Cancel run"
        self._set_nav(cancel=True, results=False)
        self.remove_class("-failed", "-done")
        self.state.running = True
        self.state.run_cancel = self._cancel
        self.refresh_bindings()
        self.state.result = None
        self._run_worker = self.run_plan(self._cancel)

    def _set_nav(self, *, cancel: bool, results: bool) -> None:
        """Only the buttons that can do something are shown."""
        cancel_button = self.query_one("#cancel", Button)
        cancel_button.disabled = not cancel
        cancel_button.display = cancel
        results_button = self.query_one("#results", Button)
        results_button.disabled = not results
        results_button.display = results

    def _follow_log(self) -> None:
        self.query_one("#log", Log).scroll_end(animate=False)

    def _emit(self, event: Event) -> None:
        """Called from the run thread: post, nothing else."""
        self.post_message(EngineEvent(event))

    @work(thread=True, exclusive=True, exit_on_error=False, group="run")
    def run_plan(self, cancel: threading.Event) -> RunResult:
        return self.wizard.backend.run(
            self.state.plan, self.state.secrets, emit=self._emit, cancel=cancel
        )

    # -- events ------------------------------------------------------------------------------

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, LogLine):
            self._pending_lines.append(f"{event.host}: {plain(event.text)}")
            return
        if isinstance(event, Progress):
            self._pending_progress = event
            return
        if isinstance(event, StepProgress):
            self._pending_work = event
            return
        self._flush()
        table = self.query_one("#steps", DataTable)
        if isinstance(event, StepStarted):
            key = f"{event.step}@{event.host}"
            self._titles[key] = event.title
            self.query_one("#log", Log).write_line(
                f"== {event.title} ({event.host})", scroll_end=False
            )
            if key in table.rows:
                table.update_cell(key, "status", STATUS_TEXT["running"])
                table.update_cell(key, "seconds", "")
            else:
                table.add_row(
                    cell(event.title), cell(event.host), STATUS_TEXT["running"], "", key=key
                )
            table.move_cursor(row=table.get_row_index(key))
        elif isinstance(event, StepFinished):
            self.query_one(WorkProgress).ends_with(event.step, event.host)
            self._set_row(event.step, event.host, event.status, event.seconds)
            if event.detail:
                self.query_one("#log", Log).write_line(
                    f"   {plain(event.detail)}", scroll_end=False
                )
        elif isinstance(event, StepFailed):
            self.query_one(WorkProgress).ends_with(event.step, event.host)
            self._set_row(event.step, event.host, "failed", event.seconds)
            self._failure = event
        elif isinstance(event, RunFinished):
            self._finish(event.result)

    def _set_row(self, step: str, host: str, status: str, seconds: float) -> None:
        table = self.query_one("#steps", DataTable)
        key = f"{step}@{host}"
        text = STATUS_TEXT.get(status, status)
        if key not in table.rows:
            table.add_row(
                cell(self._titles.get(key, step)), cell(host), cell(text), f"{seconds:.1f}", key=key
            )
        else:
            table.update_cell(key, "status", cell(text))
            table.update_cell(key, "seconds", f"{seconds:.1f}")

    def _flush(self) -> None:
        if self._pending_lines:
            lines, self._pending_lines = self._pending_lines, []
            self.query_one("#log", Log).write_lines(lines, scroll_end=False)
        if self._pending_progress is not None:
            p, self._pending_progress = self._pending_progress, None
            self.query_one("#progress", ProgressBar).update(total=max(p.total, 1), progress=p.done)
        if self._pending_work is not None:
            w, self._pending_work = self._pending_work, None
            self.query_one(WorkProgress).show(w)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place run outcomes from the worker are routed."""
        worker = event.worker
        if worker.group != "run" or worker is not self._run_worker:
            return
        if event.state == WorkerState.SUCCESS:
            result = worker.result
            if isinstance(result, RunResult):
                self._finish(result)
        elif event.state == WorkerState.ERROR:
            self._flush()
            error = worker.error
            if isinstance(error, Cancelled):
                self._show_failure("Run cancelled", error.cause, error.fix, "")
            elif isinstance(error, RegwizardError):
                self._show_failure("The run stopped", error.cause, error.fix, error.evidence)
            else:
                self._show_failure(
                    "Unexpected error in the run",
                    f"{type(error).__name__}: {error}",
                    "this is a bug in regwizard; save the plan and report it",
                    "",
                )

    def _finish(self, result: RunResult) -> None:
        if self._finished:
            return
        self._flush()
        self.query_one(WorkProgress).hide()
        self.state.result = result
        if result.ok:
            self._finished = True
            self.state.running = False
            self.refresh_bindings()
            self.add_class("-done")
            self.query_one("#progress", ProgressBar).update(total=100, progress=100)
            self.query_one("#run-title", Label).update("Done: the registry is set up")
            self._set_nav(cancel=False, results=True)
            self.query_one("#results", Button).focus()
            self.query_one("#log", Log).write_line("== finished; see Results for the proof")
        else:
            failure = result.failure or self._failure
            if failure is not None:
                self._show_failure(
                    f"Failed: {self._titles.get(f'{failure.step}@{failure.host}', failure.step)} "
                    f"on {failure.host}",
                    failure.cause,
                    failure.fix,
                    failure.evidence,
                )
            else:
                self._show_failure(
                    "The run finished but could not prove the registry works",
                    "the verification did not pass",
                    "see Results for what failed",
                    "",
                )
                self._set_nav(cancel=False, results=True)

    def _show_failure(self, title: str, cause: str, fix: str, evidence: str) -> None:
        self._finished = True
        self.query_one(WorkProgress).hide()
        self.state.running = False
        self.refresh_bindings()
        self.add_class("-failed")
        self.query_one("#run-title", Label).update("The run stopped")
        self._set_nav(cancel=False, results=not self.query_one("#results", Button).disabled)
        panel = self.query_one("#failure")
        panel.display = True
        self.query_one("#failure-title", Label).update(f"✗ {title}")
        self.query_one("#failure-cause", Static).update(f"Cause: {cause}")
        fix_box = self.query_one("#failure-fix", Static)
        fix_box.update(f"Fix:   {fix}" if fix else "")
        fix_box.display = bool(fix)
        self._evidence = (title, cause, fix, evidence)
        self.query_one("#details", Button).display = bool(evidence)
        self.query_one("#retry", Button).focus()
        self.call_after_refresh(self._follow_log)
        if self.state.result is None:
            self.state.result = RunResult(ok=False, failure=self._failure)

    # -- buttons ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run":
            return not self._finished and not self._cancel.is_set()
        return True

    def action_cancel_run(self) -> None:
        if self._finished or self._cancel.is_set():
            return

        def answered(yes: bool | None) -> None:
            if yes and not self._finished:
                self._cancel.set()
                self.refresh_bindings()
                button = self.query_one("#cancel", Button)
                button.label = "Cancelling …"
                button.disabled = True
                self.query_one("#log", Log).write_line(
                    "== cancel requested: stopping at the next safe point"
                )

        self.app.push_screen(
            ConfirmDialog(
                "Cancel the run?",
                "The current step stops at the next safe point. Completed steps are kept; "
                "a later run picks up from there.",
                yes_label="Cancel the run",
                no_label="Keep running",
                danger=True,
            ),
            answered,
        )

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel_run()

    @on(Button.Pressed, "#retry")
    def retry(self) -> None:
        self.start_run()

    @on(Button.Pressed, "#back-to-edit")
    def back_to_edit(self) -> None:
        self.state.run_cancel = None
        self.wizard.goto("review")

    @on(Button.Pressed, "#results")
    def show_results(self) -> None:
        self.state.run_cancel = None
        self.wizard.goto("results")

    @on(Button.Pressed, "#details")
    def details(self) -> None:
        title, cause, fix, evidence = self._evidence
        self.app.push_screen(ErrorDialog(title, cause, fix, evidence))

    @on(Button.Pressed, "#save-quit")
    def save_and_quit(self) -> None:
        ask_and_save_plan(
            self,
            self.state,
            title="Save plan and quit",
            message="No passwords are saved.",
            ok_label="Save and quit",
            then=lambda _path: self.wizard.finish(),
        )
