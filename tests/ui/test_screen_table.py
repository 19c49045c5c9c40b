"""The one table of the wizard's screens (regwizard.screens.table) and what reads it:
the app's goto / reset_forms / adopt_plan and the step bar of each flow."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from textual.screen import Screen

from regwizard.plan import Plan
from regwizard.screens.base import StepsBar
from regwizard.screens.table import SCREENS, flow_steps, spec

from .conftest import SIZE, make_app
from .walk import screen_name

KEPT = [s.name for s in SCREENS if s.kept]
FRESH = [s.name for s in SCREENS if not s.kept]


def test_the_table_names_each_screen_class_once_and_its_step():
    assert len({s.name for s in SCREENS}) == len(SCREENS)
    for s in SCREENS:
        cls = getattr(importlib.import_module(f"regwizard.screens.{s.module}"), s.cls)
        assert cls.STEP == s.name, s
        assert s.kept or not s.form, s  # a form is always kept: Back keeps what was typed


def test_the_table_imports_no_textual():
    """app.py and screens/base.py read it; the engine side may too, without textual."""
    code = "import sys, regwizard.screens.table; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_each_flow_has_its_step_bar_order_and_labels():
    assert [(s.name, s.label) for s in flow_steps("new")] == [
        ("hosts", "Hosts"),
        ("certificate", "Certificate"),
        ("storage", "Storage"),
        ("review", "Review"),
        ("run", "Run"),
        ("results", "Results"),
    ]
    assert [(s.name, s.label) for s in flow_steps("repair")] == [
        ("repair", "Connect"),
        ("discovered", "Findings"),
        ("fixes", "Fixes"),
        ("review", "Review"),
        ("run", "Run"),
        ("results", "Results"),
    ]
    assert KEPT == ["welcome", "hosts", "certificate", "storage", "repair", "review"]
    assert FRESH == ["discovered", "fixes", "run", "results", "gc", "users"]


def steps_bar(pilot) -> tuple[list[str], str, list[str]]:
    """(labels, the lit one, the done ones) of the step bar on screen."""
    bar = pilot.app.screen.query_one("#steps-bar", StepsBar)
    text = [label for label, _ in bar.steps]
    current = [label for label, state in bar.steps if state == "current"]
    done = [label for label, state in bar.steps if state == "done"]
    line = bar.render_line(0).text  # what is drawn says the same
    assert line.split() == ["regwizard", *" › ".join(text).split()]
    return text, (current[0] if current else ""), done


@pytest.mark.parametrize(
    ("mode", "name", "current", "done"),
    [
        ("new", "welcome", "", []),
        ("new", "storage", "Storage", ["Hosts", "Certificate"]),
        ("new", "review", "Review", ["Hosts", "Certificate", "Storage"]),
        ("repair", "repair", "Connect", []),
        ("repair", "review", "Review", ["Connect", "Findings", "Fixes"]),
        ("repair", "hosts", "Hosts", []),  # a screen of one flow shows its own flow
    ],
)
async def test_the_step_bar_follows_the_flow(mode, name, current, done):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.state.mode = mode
        app.goto(name)
        await pilot.pause()
        await pilot.pause()
        labels, lit, finished = steps_bar(pilot)
        flow = "repair" if mode == "repair" and name != "hosts" else "new"
        assert labels == [s.label for s in flow_steps(flow)]
        assert (lit, finished) == (current, done)


async def test_kept_screens_are_installed_once_fresh_ones_never():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for name in ("hosts", "certificate", "storage", "review"):
            app.goto(name)
            await pilot.pause()
            await pilot.pause()
        hosts = app.get_screen("hosts")
        app.goto("hosts")
        await pilot.pause()
        await pilot.pause()
        assert pilot.app.screen is hosts  # the same screen: Back keeps what was typed
        for name in ("results",):  # (Run would start a run on mount)
            app.goto(name)
            await pilot.pause()
            await pilot.pause()
            first = pilot.app.screen
            assert screen_name(pilot) == spec(name).cls
            assert not app.is_screen_installed(name)
            app.goto(name)
            await pilot.pause()
            await pilot.pause()
            assert pilot.app.screen is not first  # made fresh each time


async def _visit_every_kept_screen(pilot) -> None:
    """Install every kept screen, then stand on Welcome (nothing else on the stack)."""
    app = pilot.app
    await pilot.pause()
    for name in ("hosts", "certificate", "storage", "review", "repair", "welcome"):
        app.goto(name)
        await pilot.pause()
        await pilot.pause()
    assert screen_name(pilot) == "WelcomeScreen"
    assert all(app.is_screen_installed(name) for name in KEPT)


async def test_reset_forms_forgets_every_form_but_not_welcome():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _visit_every_kept_screen(pilot)
        app.reset_forms()
        installed = [name for name in KEPT if app.is_screen_installed(name)]
        assert installed == ["welcome"]


async def test_adopt_plan_forgets_the_new_setup_forms_and_keeps_the_repair_connect():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _visit_every_kept_screen(pilot)
        app.adopt_plan(Plan())
        installed = [name for name in KEPT if app.is_screen_installed(name)]
        assert installed == ["welcome", "repair"]


async def test_a_form_on_the_stack_is_not_forgotten():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.goto("hosts")
        await pilot.pause()
        await pilot.pause()
        app.reset_forms()
        assert app.is_screen_installed("hosts")
        assert screen_name(pilot) == "HostsScreen"


def test_screen_modules_are_imported_only_when_first_shown():
    """First paint waits for the Welcome screen only (the table holds names, not classes)."""
    code = (
        "import sys\n"
        "from regwizard.app import RegwizardApp\n"
        "from regwizard.screens import table\n"
        "mods = sorted({s.module for s in table.SCREENS})\n"
        "print([m for m in mods if f'regwizard.screens.{m}' in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("width", "cls"), [(80, "-narrow"), (109, "-narrow"), (110, "-wide")])
async def test_a_screen_starts_with_the_width_class_textual_would_give_it(width, cls):
    """goto's screens start with their HORIZONTAL_BREAKPOINTS class (Textual's first Resize
    then changes nothing, so it does not restyle the screen again): the one Textual gives."""
    app = make_app()
    async with app.run_test(size=(width, 30)) as pilot:
        await pilot.pause()
        assert app.width_class() == cls
        # Textual's own choice, on a screen the app did not make
        await app.push_screen(Screen())
        await pilot.pause()
        await pilot.pause()
        assert app.screen.has_class(cls)
        app.pop_screen()
        await pilot.pause()
        assert app._make_screen("certificate").has_class(cls)  # before any Resize reached it
        for name in ("welcome", "hosts", "run"):
            app.goto(name)
            await pilot.pause()
            await pilot.pause()
            breakpoints = {c for _, c in app.HORIZONTAL_BREAKPOINTS}
            assert app.screen.classes & breakpoints == {cls}
