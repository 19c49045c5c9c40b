"""Manage users from Welcome: open a plan, add / re-password / remove, Apply runs the
users backend in a worker, shows the proof, and saves the plan in place (comments kept)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Log

from regwizard.htpasswd import check_password, hash_password
from regwizard.plan import Plan, RegistrySpec, User, VerifySpec, dump_plan, load_plan

from .conftest import SIZE, make_app
from .fakes import FakeBackend
from .walk import OTHER_PASSWORD, USER_PASSWORD, activate, enter_value, screen_name, settle

COMMENT = "# hand-written: who asked for bob, and when"


def write_plan(path: Path) -> Path:
    plan = Plan(
        registry=RegistrySpec(domain="reg.example.test", ip="10.0.0.2"),
        users=[
            User("alice", hash_password("x-unused-pw", 4)),
            User("bob", hash_password("y-unused-pw", 4)),
        ],
        verify=VerifySpec("alice"),
    )
    path.write_text(dump_plan(plan).replace("[policy]", f"{COMMENT}\n[policy]"))
    return path


async def open_users(pilot, path: Path) -> None:
    await pilot.pause()  # as open_browse: run_before can start before Welcome has its widgets
    await activate(pilot, "#users")
    await enter_value(pilot, "#path", str(path))
    await activate(pilot, "#ok")
    await settle(pilot)
    assert screen_name(pilot) == "UsersScreen"


def rows(pilot) -> dict[str, str]:
    table = pilot.app.screen.query_one("#user-list", DataTable)
    return {
        str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1]) for i in range(table.row_count)
    }


async def select(pilot, name: str) -> None:
    table = pilot.app.screen.query_one("#user-list", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()


async def add_carol(pilot) -> None:
    await activate(pilot, "#add-user")
    await enter_value(pilot, "#user-name", "carol")
    await enter_value(pilot, "#user-password", USER_PASSWORD)
    await enter_value(pilot, "#user-confirm", USER_PASSWORD)
    await activate(pilot, "#add")


async def test_add_passwd_remove_then_apply(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.toml")
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await open_users(pilot, path)
        assert rows(pilot) == {"alice": "verification logs in as this user", "bob": ""}
        await add_carol(pilot)
        await select(pilot, "bob")
        await activate(pilot, "#passwd-user")
        await enter_value(pilot, "#user-password", OTHER_PASSWORD)
        await enter_value(pilot, "#user-confirm", OTHER_PASSWORD)
        await activate(pilot, "#set")
        assert rows(pilot)["carol"] == "new: added on Apply"
        assert rows(pilot)["bob"] == "new password on Apply"
        # the verify user cannot go: the refusal names the fix
        await select(pilot, "alice")
        await activate(pilot, "#remove-user")
        await activate(pilot, "#yes")
        assert screen_name(pilot) == "ErrorDialog"
        await activate(pilot, "#ok")
        await activate(pilot, "#apply")
        await settle(pilot)
        log = "\n".join(pilot.app.screen.query_one("#users-log", Log).lines)
        assert "proved: login as carol works (200); login as bob works (200)" in log
        assert len(backend.users_calls) == 1
        assert [(e.action, e.name) for e in backend.users_calls[0][1]] == [
            ("add", "carol"),
            ("passwd", "bob"),
        ]
        assert rows(pilot) == {
            "alice": "verification logs in as this user",
            "bob": "",
            "carol": "",
        }
    saved = load_plan(path)
    assert check_password(saved.user("carol").bcrypt, USER_PASSWORD)
    assert check_password(saved.user("bob").bcrypt, OTHER_PASSWORD)
    assert COMMENT in path.read_text()
    for pw in (USER_PASSWORD, OTHER_PASSWORD):
        assert pw not in path.read_text()


async def test_remove_then_a_failed_proof_shows_cause_and_fix(tmp_path: Path) -> None:
    path = write_plan(tmp_path / "plan.toml")
    backend = FakeBackend(users_mode="fail")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await open_users(pilot, path)
        await select(pilot, "bob")
        await activate(pilot, "#remove-user")
        await activate(pilot, "#yes")
        assert rows(pilot)["bob"] == "removed on Apply"
        await activate(pilot, "#apply")
        await settle(pilot)
        log = "\n".join(pilot.app.screen.query_one("#users-log", Log).lines)
        assert "logins (node1) failed" in log and "fix: check that the container" in log
    saved = load_plan(path)
    assert saved.remove_users == ["bob"] and saved.user("bob") is None


def test_users_screen_snapshot(snap_compare, tmp_path: Path) -> None:
    """The list with one pending addition and the verify user marked."""
    write_plan(tmp_path / "plan.toml")  # the tests run in tmp_path: a relative name

    async def run_before(pilot) -> None:
        await open_users(pilot, Path("plan.toml"))
        await add_carol(pilot)
        await select(pilot, "carol")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


async def test_wizard_save_over_the_opened_plan_keeps_its_comment(tmp_path: Path) -> None:
    """Open a plan file, Save on Review over the same file: the comment survives."""
    path = write_plan(tmp_path / "plan.toml")
    before = path.read_text()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await activate(pilot, "#open")
        await enter_value(pilot, "#path", str(path))
        await activate(pilot, "#ok")
        await settle(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        pilot.app.state.plan.registry.port = 5000  # a change the Save must write
        await activate(pilot, "#save-plan")
        await enter_value(pilot, "#path", str(path))
        await activate(pilot, "#ok")
        await settle(pilot)
    text = path.read_text()
    assert COMMENT in text
    assert load_plan(path).registry.port == 5000
    changed = [line for line in text.splitlines() if line not in before.splitlines()]
    assert changed == ["port = 5000"]
