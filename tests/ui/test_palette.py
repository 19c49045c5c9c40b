"""The command palette (Ctrl+P): the app's commands next to Textual's, running the same
code as the Welcome rows and Review's Save plan; the remembered theme and recent plans."""

from __future__ import annotations

import json
from pathlib import Path

from textual.command import CommandList, CommandPalette
from textual.widgets import Input, OptionList

from regwizard import settings
from regwizard.plan import EXAMPLE_PLAN

from .conftest import SIZE, make_app
from .walk import activate, screen_name, settle, walk_to_review

APP_COMMANDS = (
    "New setup",
    "Open plan…",
    "Repair a registry",
    "Manage users",
    "Browse images",
    "Reclaim disk",
)


async def palette_hits(pilot, search: str = "") -> list[str]:
    """Open the palette, type ``search``, return the prompts it lists (after they arrive)."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    assert CommandPalette.is_open(pilot.app)
    if search:
        await pilot.press(*search)
    hits: list[str] = []
    for _ in range(100):  # the palette gathers hits in the background: poll, no deadline
        await pilot.pause(0.05)
        commands = pilot.app.screen.query_one(CommandList)
        hits = [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]
        if hits and (not search or any(search in h for h in hits)):
            break
    return hits


async def run_command(pilot, title: str, closes: bool = True) -> None:
    """Open the palette, search ``title``, pick that command (Enter), let it run."""
    hits = await palette_hits(pilot, title)
    index = next(i for i, h in enumerate(hits) if h.startswith(title))
    commands = pilot.app.screen.query_one(CommandList)
    commands.highlighted = index
    await pilot.pause()
    await pilot.press("enter")
    await settle(pilot)
    assert CommandPalette.is_open(pilot.app) != closes


def _titles(hits: list[str]) -> set[str]:
    return {h.splitlines()[0] for h in hits}


async def test_the_palette_lists_the_app_commands_and_textuals(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        hits = _titles(await palette_hits(pilot))
    assert set(APP_COMMANDS) <= hits
    assert {"Keys", "Theme", "Quit"} <= hits
    assert "Save plan" not in hits  # nothing to save on the Welcome screen


async def test_new_setup_from_the_palette_is_the_welcome_row(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await run_command(pilot, "New setup")
        assert screen_name(pilot) == "HostsScreen"
        assert app.state.mode == "new"
        # and from another step: the same place
        await run_command(pilot, "Repair a registry")
        assert screen_name(pilot) == "RepairConnectScreen"
        assert app.state.mode == "repair"
        await run_command(pilot, "New setup")
        assert screen_name(pilot) == "HostsScreen"
        assert app.state.mode == "new"
        assert [type(s).__name__ for s in app.screen_stack[1:]] == ["HostsScreen"]


async def test_browse_images_from_the_palette_asks_for_the_plan_like_the_row(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await activate(pilot, "#new")
        await run_command(pilot, "Browse images")
        assert screen_name(pilot) == "PathDialog"
        assert "Browse images" in str(app.screen.query_one(".dialog-title").render())
        # the Welcome screen is under it, as after pressing the row
        assert type(app.screen_stack[-2]).__name__ == "WelcomeScreen"
        # over a dialog the app's commands are not offered
        hits = _titles(await palette_hits(pilot))
        assert not set(APP_COMMANDS) & hits
        assert "Theme" in hits


async def test_save_plan_is_offered_on_review_and_saves(backend, tmp_path):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await run_command(pilot, "Save plan")
        assert screen_name(pilot) == "PathDialog"
        app.screen.query_one("#path", Input).value = str(tmp_path / "saved.toml")
        await pilot.press("enter")
        await settle(pilot)
        assert screen_name(pilot) == "ReviewScreen"
    assert (tmp_path / "saved.toml").is_file()
    assert settings.load().recent_plans == [str(tmp_path / "saved.toml")]


async def test_no_app_commands_during_a_run(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.state.running = True
        hits = _titles(await palette_hits(pilot))
        app.state.running = False
    assert not set(APP_COMMANDS) & hits
    assert "Quit" in hits


async def test_a_chosen_theme_is_saved_and_restored(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        default = app.theme
        await run_command(pilot, "Theme", closes=False)  # the theme picker
        await pilot.press(*"nord")
        hits: list[str] = []
        for _ in range(100):
            await pilot.pause(0.05)
            commands = app.screen.query_one(CommandList)
            hits = [
                str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)
            ]
            if "nord" in hits:
                break
        commands.highlighted = hits.index("nord")
        await pilot.press("enter")
        await settle(pilot)
        assert app.theme == "nord" != default
    assert settings.load().theme == "nord"
    again = make_app(backend)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.theme == "nord"


async def test_an_unknown_or_corrupt_saved_theme_gives_the_default(backend, isolated_config):
    plain = make_app(backend)
    async with plain.run_test(size=SIZE) as pilot:
        await pilot.pause()
        default = plain.theme
    isolated_config.mkdir(parents=True, exist_ok=True)
    for text in ('{"theme": "no-such-theme"}', "{not json", '["a list"]', "\xff\xfe"):
        (isolated_config / "settings.json").write_text(text, encoding="latin-1")
        app = make_app(backend)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.theme == default
            await activate(pilot, "#new")
            assert screen_name(pilot) == "HostsScreen"


def _plan_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(EXAMPLE_PLAN)
    return path


async def test_recent_plans_are_recorded_listed_and_open(backend, tmp_path):
    first = _plan_file(tmp_path, "first.toml")
    second = _plan_file(tmp_path, "second.toml")
    gone = _plan_file(tmp_path, "gone.toml")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for path in (gone, first, second):
            await activate(pilot, "#open")
            assert screen_name(pilot) == "PathDialog"
            app.screen.query_one("#path", Input).value = str(path)
            await pilot.press("enter")
            await settle(pilot)
            assert screen_name(pilot) == "ReviewScreen"
            await app.goto("welcome")
            await settle(pilot)
    stored = settings.load().recent_plans
    assert stored == [str(second), str(first), str(gone)]
    gone.unlink()
    again = make_app(backend)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await activate(pilot, "#open")
        recent = again.screen.query_one("#recent", OptionList)
        listed = [str(recent.get_option_at_index(i).prompt) for i in range(recent.option_count)]
        assert listed == [str(second), str(first)]  # most recent first; gone.toml left out
        recent.focus()
        recent.highlighted = 1
        await pilot.press("enter")
        await settle(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        assert again.state.plan_path == first
        # the palette's Open plan… is the same dialog, the same list
        await run_command(pilot, "Open plan…")
        assert screen_name(pilot) == "PathDialog"
        recent = again.screen.query_one("#recent", OptionList)
        assert str(recent.get_option_at_index(0).prompt) == str(first)
    assert settings.load().recent_plans == [str(first), str(second), str(gone)]


def test_the_settings_file_holds_no_secrets(tmp_path, isolated_config):
    settings.remember_plan(tmp_path / "p.toml")
    data = json.loads((isolated_config / "settings.json").read_text())
    assert set(data) == {"theme", "recent_plans"}
