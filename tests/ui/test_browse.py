"""The Browse screen over the fake backend: Welcome → plan file → password → repositories
→ tags (paged) → Delete tag (confirmed), and delete refused (405) with problems.py's words."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, DataTable, Input, Static

from regwizard import problems
from regwizard.plan import EXAMPLE_PLAN

from .conftest import SIZE, WIDE, make_app
from .fakes import FakeBackend
from .walk import USER_PASSWORD, activate, screen_name, settle


def _plan_file() -> str:
    # the example's registry host is 10.0.0.2 over key auth: no SSH password is asked
    Path("plan.toml").write_text(EXAMPLE_PLAN)
    return "plan.toml"


async def open_browse(pilot, password: str = USER_PASSWORD, lands: str = "BrowseScreen") -> None:
    await pilot.pause()
    await activate(pilot, "#browse")
    assert screen_name(pilot) == "PathDialog"
    pilot.app.screen.query_one("#path", Input).value = _plan_file()
    await activate(pilot, "#ok")
    await pilot.pause()
    assert screen_name(pilot) == "PasswordDialog"
    pilot.app.screen.query_one("#password", Input).value = password
    await activate(pilot, "#ok")
    await settle(pilot)
    assert screen_name(pilot) == lands


async def show_tags(pilot, row: int) -> None:
    repos = pilot.app.screen.query_one("#repos", DataTable)
    repos.focus()
    repos.move_cursor(row=row)
    await pilot.pause()
    await pilot.press("enter")
    await settle(pilot)


def _tags(pilot) -> list[str]:
    t = pilot.app.screen.query_one("#tags", DataTable)
    return [str(t.get_row_at(i)[0]) for i in range(t.row_count)]


async def test_browse_lists_pages_and_deletes(tmp_path) -> None:
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=WIDE) as pilot:
        await open_browse(pilot)
        assert backend.browse_calls[0][1] == USER_PASSWORD
        repos = app.screen.query_one("#repos", DataTable)
        assert repos.row_count == 4
        await show_tags(pilot, 1)  # team/api: 130 tags, 100 a page
        assert len(_tags(pilot)) == 100
        assert not app.screen.query_one("#more-tags", Button).disabled
        await activate(pilot, "#more-tags")
        await settle(pilot)
        assert len(_tags(pilot)) == 130
        assert app.screen.query_one("#more-tags", Button).disabled
        assert backend.browser.calls.count("tags team/api 1.099") == 1
        # delete the first tag, after confirming
        tags = app.screen.query_one("#tags", DataTable)
        tags.focus()
        tags.move_cursor(row=0)
        await activate(pilot, "#delete")
        assert screen_name(pilot) == "ConfirmDialog"
        text = str(app.screen.query_one(".dialog-text", Static).render())
        assert "team/api:1.000" in text and "sha256:" in text
        await activate(pilot, "#yes")
        await settle(pilot)
        assert screen_name(pilot) == "BrowseScreen"
        assert backend.browser.deleted and backend.browser.deleted[0][0] == "team/api"
        assert "1.000" not in _tags(pilot) and len(_tags(pilot)) == 129


async def test_delete_refused_says_how_to_enable_it() -> None:
    backend = FakeBackend()
    backend.browser.allow_delete = False
    app = make_app(backend)
    async with app.run_test(size=WIDE) as pilot:
        await open_browse(pilot)
        await show_tags(pilot, 2)  # team/web
        app.screen.query_one("#tags", DataTable).focus()
        await activate(pilot, "#delete")
        await activate(pilot, "#yes")
        await settle(pilot)
        assert screen_name(pilot) == "ErrorDialog"
        cause = str(app.screen.query_one("#error-cause", Static).render())
        fix = str(app.screen.query_one("#error-fix", Static).render())
        assert cause == problems.DELETE_DISABLED.message
        assert "allow_delete = true" in fix
        assert backend.browser.deleted == []


async def test_keeping_the_tag_deletes_nothing() -> None:
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=WIDE) as pilot:
        await open_browse(pilot)
        await show_tags(pilot, 0)
        app.screen.query_one("#tags", DataTable).focus()
        await activate(pilot, "#delete")
        await pilot.press("escape")
        await settle(pilot)
        assert backend.browser.deleted == [] and len(_tags(pilot)) == 3


async def test_a_refused_login_is_an_error_and_esc_goes_back() -> None:
    backend = FakeBackend(browse_mode="error")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await open_browse(pilot, "wrong-password", lands="ErrorDialog")
        await activate(pilot, "#ok")
        await pilot.press("escape")
        await pilot.pause()
        assert screen_name(pilot) == "WelcomeScreen"


async def on_browse(pilot) -> None:
    await open_browse(pilot)
    await show_tags(pilot, 3)  # tools/buildkit: a multi-platform tag
    await show_tags(pilot, 0)  # library/alpine
    await settle(pilot)


def test_browse_snapshot(snap_compare):
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=on_browse)
