"""The Textual UI of regwizard: a wizard over a :class:`~regwizard.backend.Backend`.

The app only holds UI state (:class:`WizardState`) and moves between screens.
All work on hosts happens in the backend, called from thread workers; threads
talk back to the UI through ``post_message`` only.

Usage (the CLI)::

    app = RegwizardApp(backend=EngineBackend(), plan=plan, plan_path=path, start_at="review")
    code = app.run()          # also in app.return_code
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

import regwizard.assets
from regwizard import settings
from regwizard.plan import Plan, Secrets, new_plan
from regwizard.screens import table

if TYPE_CHECKING:  # imported when used: the first paint waits for none of them
    from regwizard.adopt import Adoption
    from regwizard.backend import Backend
    from regwizard.doctor import DoctorReport
    from regwizard.events import HostFacts, RunResult

#: Exit codes of the app (``App.return_code`` and the value ``run()`` returns).
EXIT_VERIFIED = 0  # the registry was set up and proven to work
EXIT_NOT_VERIFIED = 1  # a run finished but failed or could not prove the registry works
EXIT_ABORTED = 2  # quit before a run finished

StartAt = Literal["welcome", "review"]
Mode = table.Flow  # "new" setup or "repair"

CSS_FILE = Path(regwizard.assets.__file__).with_name("regwizard.tcss")


@dataclass
class RepairState:
    """What the Repair flow found: adopt's result (plan, notes, facts), the doctor's report."""

    adoption: Adoption
    container: str = ""  # the container name the person asked for ("" = find it)
    report: DoctorReport | None = None

    @property
    def plan(self) -> Plan:
        """The discovered plan (the screens add users to it)."""
        return self.adoption.plan

    @property
    def notes(self) -> list[str]:
        return self.adoption.notes


@dataclass
class WizardState:
    """Everything the wizard knows. Secrets stay in memory, never in the plan."""

    plan: Plan = field(default_factory=new_plan)
    secrets: Secrets = field(default_factory=Secrets)
    plan_path: Path | None = None
    from_file: bool = False  # the plan was loaded (its users' passwords are unknown)
    host_facts: HostFacts | None = None  # last successful "Test connection" of the registry host
    client_facts: dict[str, HostFacts] = field(default_factory=dict)  # by client address
    result: RunResult | None = None
    running: bool = False
    run_cancel: threading.Event | None = None  # set to stop the current run
    mode: Mode = "new"  # "repair": Review/Run/Results follow the Repair flow's steps
    repair: RepairState | None = None

    @property
    def verified(self) -> bool:
        r = self.result
        return bool(r and r.ok and not r.dry_run and r.verification and r.verification.ok)

    @property
    def exit_code(self) -> int:
        if self.verified:
            return EXIT_VERIFIED
        return EXIT_NOT_VERIFIED if self.result is not None else EXIT_ABORTED


class RegwizardApp(App[int]):
    """Set up a private Docker registry over SSH, and prove it works."""

    TITLE = "regwizard"
    SUB_TITLE = "private Docker registry, set up and proven"
    CSS_PATH = CSS_FILE
    ENABLE_COMMAND_PALETTE = True  # Ctrl+P: the app's commands, Keys, Theme, Quit...
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="Quit regwizard"),
    ]

    def __init__(
        self,
        backend: Backend,
        plan: Plan | None = None,
        plan_path: str | os.PathLike[str] | None = None,
        start_at: StartAt = "welcome",
        *,
        secrets: Secrets | None = None,
        cursor_blink: bool = True,
        ascii_borders: bool | None = None,
    ) -> None:
        """
        Args:
            backend: the engine (``EngineBackend()``) or a test fake.
            plan: a plan to start from (e.g. loaded by the CLI); default: a new plan.
            plan_path: where that plan came from / should be saved by default.
            start_at: "welcome" (new setup) or "review" (a plan from a file).
            secrets: passwords / accepted host keys known up front (kept in memory only).
            cursor_blink: False freezes every Input/TextArea cursor (snapshot tests).
            ascii_borders: force the ASCII border fallback; default: on when TERM=linux.
        """
        super().__init__()
        if start_at not in ("welcome", "review"):
            raise ValueError(f"start_at must be 'welcome' or 'review', not {start_at!r}")
        self.backend = backend
        self.state = WizardState(
            plan=plan if plan is not None else new_plan(),
            secrets=secrets if secrets is not None else Secrets(),
            plan_path=Path(plan_path) if plan_path else None,
            from_file=plan is not None,
        )
        self.start_at: StartAt = start_at
        self.cursor_blink = cursor_blink
        self.ascii_borders = (
            os.environ.get("TERM", "") == "linux" if ascii_borders is None else ascii_borders
        )
        self._quit_dialog_open = False
        self._theme_restored = False  # until then, a theme change is not the person's

    # -- lifecycle -----------------------------------------------------------------

    def on_load(self) -> None:
        # before any screen is composed, so the first one is styled once, in the right theme
        if self.ascii_borders:
            self.add_class("-ascii")
        self.restore_theme()

    def get_default_screen(self) -> Screen:
        """The Welcome screen itself when the wizard starts there: made with the app, it is
        styled, laid out and drawn in the app's first frame (issue 15). Pushed from
        ``on_mount`` over a blank screen, it showed ~0.09 s later, in one frame with the
        Footer's keys; now the Footer fills its keys in a later frame, at about that time."""
        if self.start_at != "welcome":
            return super().get_default_screen()
        welcome = self._make_screen("welcome")
        self.install_screen(welcome, "welcome")
        return welcome

    def on_mount(self) -> None:
        if self.start_at == "review":
            self.goto("review")

    # -- remembered settings and the command palette ------------------------------------

    def restore_theme(self) -> None:
        """Apply the theme the person chose last time (an unknown name is ignored)."""
        saved = settings.load().theme
        if saved and saved in self.available_themes:
            self.theme = saved
        self._theme_restored = True

    def watch_theme(self, theme: str) -> None:
        """Remember a theme the person picked (Ctrl+P → Theme) for the next start."""
        if self._theme_restored:
            settings.remember_theme(theme)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands (Keys, Theme, Quit, Screenshot...) and the app's own."""
        from regwizard.screens.commands import app_commands

        yield from super().get_system_commands(screen)
        yield from app_commands(self, screen)

    def freeze_widgets(self, root: DOMNode) -> None:
        """Apply app-wide widget preferences under ``root``: cursor blink, ASCII glyphs."""
        if not self.cursor_blink:  # tests only: Input and TextArea load when a form needs them
            from textual.widgets import Input, TextArea

            for widget in root.query(Input):
                widget.cursor_blink = False
            for area in root.query(TextArea):
                area.cursor_blink = False
        if self.ascii_borders:
            from textual.widgets import Checkbox

            for box in root.query(Checkbox):
                box.BUTTON_LEFT = "["
                box.BUTTON_RIGHT = "]"
                box.refresh()

    # -- navigation ----------------------------------------------------------------

    def _make_screen(self, name: str) -> Screen:
        """A new screen ``name``; its module is imported when first needed (fast first paint)."""
        import importlib

        spec = table.spec(name)
        screen = getattr(importlib.import_module(f"regwizard.screens.{spec.module}"), spec.cls)()
        # Textual adds the width class at the screen's first Resize, which restyles all of it
        # once more; starting with the class it is about to get saves that pass.
        if width_class := self.width_class():
            screen.add_class(width_class, update=False)
        return screen

    def width_class(self) -> str:
        """The HORIZONTAL_BREAKPOINTS class for the terminal's width (Textual's rule: the
        highest threshold not above the width)."""
        width = self.size.width
        return max((b for b in self.HORIZONTAL_BREAKPOINTS if b[0] <= width), default=(0, ""))[1]

    def goto(self, name: str) -> Awaitable[Any]:
        """Show wizard step ``name`` (a name in :data:`regwizard.screens.table.SCREENS`).

        Kept screens (Welcome and the forms) are installed once, so going Back and forth keeps
        every value exactly as typed (even an invalid one). Run, Results and the
        Repair flow's findings/fixes are created fresh each time. Await the result to
        continue once the screen is shown (nothing needs to).
        """
        if table.spec(name).kept:
            if not self.is_screen_installed(name):
                self.install_screen(self._make_screen(name), name)
            target: Screen | str = name
        else:
            target = self._make_screen(name)
        stack = self.screen_stack
        if target == "welcome" and stack[0] is self.get_screen("welcome"):
            # Welcome is the bottom screen (get_default_screen): uncover it
            return self.pop_screen() if len(stack) > 1 else self.switch_screen(target)
        if len(stack) <= 1:
            return self.push_screen(target)
        return self.switch_screen(target)

    def _forget(self, names: tuple[str, ...]) -> None:
        """Uninstall these screens (unless on the stack): they rebuild from the plan."""
        for name in names:
            if self.is_screen_installed(name) and not any(
                s is self.get_screen(name) for s in self.screen_stack
            ):
                self.uninstall_screen(name)

    def reset_forms(self) -> None:
        """Forget the form screens (after loading another plan): they rebuild from it."""
        self._forget(table.forms())

    def load_plan_into_state(self, plan: Plan, path: Path | None) -> None:
        self.state.plan = plan
        self.state.plan_path = path
        self.state.from_file = True
        self.state.secrets.verify_password = ""
        self.state.host_facts = None
        self.state.client_facts.clear()
        self.state.result = None
        self.reset_forms()

    def set_mode(self, mode: Mode) -> None:
        """Start the new-setup or the Repair flow; switching flows starts from a clean slate."""
        state = self.state
        if state.mode != mode:
            if state.mode == "repair" and state.repair is not None:
                state.plan = new_plan()  # the discovered plan belongs to the Repair flow
                state.from_file = False
                state.plan_path = None
            state.repair = None
            state.result = None
            state.secrets.verify_password = ""
            state.host_facts = None
            state.mode = mode
            self.reset_forms()

    def adopt_plan(self, plan: Plan) -> None:
        """The Repair flow's plan becomes the plan to run (Review → Run → Results)."""
        state = self.state
        state.plan = plan
        state.plan_path = None
        state.from_file = True  # adopted users' passwords are unknown
        state.result = None
        # the forms the new-setup flow fills rebuild from it; the Repair flow's own stay
        self._forget(table.forms("new"))

    # -- quitting --------------------------------------------------------------------

    def finish(self, code: int | None = None) -> None:
        """Exit with ``code`` (default: from the state: 0 only when verified)."""
        code = self.state.exit_code if code is None else code
        if self.state.run_cancel is not None:
            self.state.run_cancel.set()
        self.exit(result=code, return_code=code)

    async def action_quit(self) -> None:
        """Ctrl+Q: quit now, or ask first while a run is in progress."""
        if not self.state.running:
            self.finish()
            return
        if self._quit_dialog_open:
            return
        from regwizard.screens.dialogs import ConfirmDialog

        self._quit_dialog_open = True

        def answered(yes: bool | None) -> None:
            self._quit_dialog_open = False
            if yes:
                self.finish()

        self.push_screen(
            ConfirmDialog(
                "Quit while a run is in progress?",
                "The current step is asked to stop at a safe point; completed steps are kept "
                "and a later run picks up from there.",
                yes_label="Stop and quit",
                no_label="Keep running",
                danger=True,
            ),
            answered,
        )
