"""The entry screen: what regwizard does, what it needs, and how to start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Label, Static

from regwizard.screens.base import WizardScreen

if TYPE_CHECKING:  # the dialogs and plan files load when a button needs them (first paint)
    from regwizard.plan import Plan

INTRO = """\
regwizard installs registry:2 with TLS and password login on one machine over \
SSH, makes your other machines trust it, then proves it works: login, anonymous \
push refused, push and pull of a test image with the same digest."""

NEEDS = """\
You need:
  • SSH access to the registry host as root, or as a user with sudo
  • Docker installed on the registry host and on each client
  • a name for the registry (e.g. reg.example.test) and its IP address"""

STEPS = """\
Nothing changes on any machine until you press Run on the Review step; every \
step there also shows the equivalent shell commands."""


class WelcomeScreen(WizardScreen):
    STEP = "welcome"
    AUTO_FOCUS = "#new"

    def compose(self) -> ComposeResult:
        yield from self.compose_steps()
        with VerticalScroll(id="body"):
            with Vertical(classes="page"):
                yield Label("Set up a private Docker registry", classes="page-title")
                yield Static(INTRO, classes="page-intro", markup=False)
                with Horizontal(classes="choice"):
                    yield Button("New setup", id="new", variant="primary")
                    yield Label("Answer a few questions, review, run.", classes="choice-text")
                with Horizontal(classes="choice"):
                    yield Button("Open a plan file", id="open")
                    yield Label("Start from a saved regwizard-plan.toml.", classes="choice-text")
                with Horizontal(classes="choice"):
                    yield Button("Repair a registry", id="repair")
                    yield Label(
                        "Find an existing registry, show what is broken, fix it without "
                        "losing data.",
                        classes="choice-text",
                    )
                yield Label("Live with a registry set up from a plan file:", id="day-two-title")
                with Horizontal(id="day-two"):
                    yield Button("Manage users", id="users")
                    yield Button("Browse images", id="browse")
                    yield Button("Reclaim disk", id="gc")
                yield Static(NEEDS, classes="needs", markup=False)
                yield Static(STEPS, classes="page-intro", markup=False)
        with Horizontal(id="nav"):
            yield Button("Quit", id="quit", variant="error")
            yield Static(classes="spacer")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#new", Button).focus()

    @on(Button.Pressed, "#new")
    def new_setup(self) -> None:
        self.wizard.set_mode("new")
        self.wizard.goto("hosts")

    @on(Button.Pressed, "#repair")
    def repair_registry(self) -> None:
        self.wizard.set_mode("repair")
        self.wizard.goto("repair")

    def ask_plan(self, title: str, ok_label: str, then: Callable[[Plan, str], None]) -> None:
        """Ask for a plan file (the recent ones listed), load it (an error dialog when it
        cannot be), remember it among the recent plans, then ``then``."""
        from regwizard import settings
        from regwizard.errors import RegwizardError
        from regwizard.plan import load_plan
        from regwizard.screens.dialogs import ErrorDialog, PathDialog

        default = str(self.state.plan_path) if self.state.plan_path else "./regwizard-plan.toml"

        def chosen(path: str | None) -> None:
            if not path:
                return
            try:
                plan = load_plan(path)
            except RegwizardError as e:
                self.app.push_screen(ErrorDialog("Could not open the plan", e.cause, e.fix))
                return
            settings.remember_plan(path)
            then(plan, path)

        recent = settings.recent_plans()
        self.app.push_screen(
            PathDialog(title, default, must_exist=True, ok_label=ok_label, recent=recent), chosen
        )

    @on(Button.Pressed, "#users")
    def manage_users(self) -> None:
        def then(plan: Plan, path: str) -> None:
            self.wizard.set_mode("new")
            self.wizard.load_plan_into_state(plan, Path(path))
            self.wizard.goto("users")

        self.ask_plan("Manage users of a plan", "Open", then)

    @on(Button.Pressed, "#gc")
    def reclaim_disk(self) -> None:
        def then(plan: Plan, path: str) -> None:
            self.wizard.set_mode("new")
            self.wizard.load_plan_into_state(plan, Path(path))
            self.wizard.goto("gc")

        self.ask_plan("Reclaim disk: the registry's plan file", "Open", then)

    @on(Button.Pressed, "#browse")
    def browse_images(self) -> None:
        def then(plan: Plan, _path: str) -> None:
            from regwizard.plan import Secrets
            from regwizard.screens.browse import BrowseScreen

            keys = set(self.state.secrets.accepted_host_keys)
            self.app.push_screen(BrowseScreen(plan, Secrets(accepted_host_keys=keys)))

        self.ask_plan("Browse images: the registry's plan file", "Browse", then)

    @on(Button.Pressed, "#open")
    def open_plan(self) -> None:
        def then(plan: Plan, path: str) -> None:
            self.wizard.set_mode("new")
            self.wizard.load_plan_into_state(plan, Path(path))
            self.notify(f"Loaded {path}", title="Plan opened", markup=False)
            self.wizard.goto("review")

        self.ask_plan("Open a plan file", "Open", then)
