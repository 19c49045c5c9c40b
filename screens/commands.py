"""The app's own commands in the command palette (Ctrl+P), next to Textual's (Keys, Theme...).

Each command runs the code of the button it names, never a copy: the start commands go
to the Welcome screen (as Back would) and press its row's handler there; Save plan is
Review's Save plan. They are offered only from a wizard screen that is not covered by a
pushed screen (Browse, a dialog) and while nothing runs; a command that finds the app
busy by the time it runs says so and does nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.screen import Screen

from regwizard.screens.base import WizardScreen
from regwizard.screens.dialogs import save_plan
from regwizard.screens.welcome import WelcomeScreen

if TYPE_CHECKING:
    from regwizard.app import RegwizardApp

#: (title, help, the WelcomeScreen handler it runs): in the Welcome screen's order.
WELCOME_ROWS: tuple[tuple[str, str, str], ...] = (
    ("New setup", "Answer a few questions, review, run", "new_setup"),
    ("Open plan…", "Open a saved plan file (recent ones listed) and review it", "open_plan"),
    ("Repair a registry", "Find a registry, show what is broken, fix it", "repair_registry"),
    ("Manage users", "Add, remove or re-password users of a plan's registry", "manage_users"),
    ("Browse images", "List, inspect and delete the images of a plan's registry", "browse_images"),
    ("Reclaim disk", "Garbage-collect a plan's registry", "reclaim_disk"),
)

#: Screens where the plan is whole and Save plan makes sense.
SAVE_PLAN_ON = ("review", "results")


def available(app: RegwizardApp, screen: Screen) -> bool:
    """True when the app's commands make sense from ``screen``: a wizard step with nothing
    pushed over it (under it only the bottom screen: a blank one, or Welcome) and no run in
    progress."""
    stack = app.screen_stack
    on_top = [s for s in stack if s.id != "--command-palette"]
    return (
        not app.state.running
        and isinstance(screen, WizardScreen)
        and len(on_top) <= 2
        and on_top[-1] is screen
    )


def _refuse(app: RegwizardApp) -> None:
    app.notify(
        "Not now: finish or leave what is on the screen first.",
        title="Command not available",
        severity="warning",
    )


def welcome_row(app: RegwizardApp, screen: Screen, handler: str) -> Callable[[], Awaitable[None]]:
    """Run the Welcome screen's ``handler`` (a row's button), from the Welcome screen."""

    async def run() -> None:
        if app.screen is not screen or not available(app, screen):
            _refuse(app)
            return
        if not isinstance(app.screen, WelcomeScreen):
            await app.goto("welcome")
        welcome = app.screen
        if not isinstance(welcome, WelcomeScreen):  # pragma: no cover - goto failed
            _refuse(app)
            return
        getattr(welcome, handler)()

    return run


def save_current_plan(app: RegwizardApp, screen: Screen) -> Callable[[], None]:
    def run() -> None:
        if app.screen is not screen or not available(app, screen):
            _refuse(app)
            return
        save_plan(screen, app.state)

    return run


def app_commands(app: RegwizardApp, screen: Screen) -> Iterator[SystemCommand]:
    """The app's commands for the palette opened over ``screen`` (none when busy)."""
    if not available(app, screen):
        return
    for title, help_text, handler in WELCOME_ROWS:
        yield SystemCommand(title, help_text, welcome_row(app, screen, handler))
    if getattr(screen, "STEP", "") in SAVE_PLAN_ON:
        yield SystemCommand(
            "Save plan",
            "Save the plan to a TOML file (no passwords in it)",
            save_current_plan(app, screen),
        )
