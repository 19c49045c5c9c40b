"""Pilot tests of the Repair flow at 80x24 against the fake backend:
Welcome → Repair → connect → discovered + findings → choose fixes → Review → Run → Results."""

from __future__ import annotations

import io

from rich.console import Console
from textual.markup import escape
from textual.widgets import Button, DataTable, Select, SelectionList, Static

from regwizard.app import EXIT_VERIFIED
from regwizard.htpasswd import check_password, is_bcrypt

from .conftest import SIZE, make_app
from .fakes import FINGERPRINT, MARKUP_EVIDENCE, FakeBackend
from .walk import (
    OTHER_PASSWORD,
    SSH_PASSWORD,
    SUDO_PASSWORD,
    USER_PASSWORD,
    activate,
    back_step,
    enter_value,
    next_step,
    run_from_review,
    screen_name,
    screen_svg,
    screen_text,
    settle,
    type_into,
    widget_text,
)

SECRETS = (SSH_PASSWORD, SUDO_PASSWORD, USER_PASSWORD, OTHER_PASSWORD)


async def wait_for_screen(pilot, *names: str, rounds: int = 100) -> str:
    """Pause until one of ``names`` is on top (a dialog-driven worker cannot be settled)."""
    for _ in range(rounds):
        if screen_name(pilot) in names:
            return screen_name(pilot)
        await pilot.pause(0.02)
    raise AssertionError(f"still on {screen_name(pilot)}, wanted {names}")


def no_secret_on_screen(pilot) -> None:
    text = screen_text(pilot) + screen_svg(pilot)
    for secret in SECRETS:
        assert secret not in text, (screen_name(pilot), secret)


async def start_repair(pilot) -> None:
    await pilot.pause()
    await activate(pilot, "#repair")
    assert screen_name(pilot) == "RepairConnectScreen"


async def find_registry(pilot, address: str = "10.0.0.2", typing: bool = False) -> None:
    await enter_value(pilot, "#host-address", address, typing)
    await next_step(pilot)
    await settle(pilot)


async def walk_to_findings(pilot) -> None:
    await start_repair(pilot)
    await find_registry(pilot)
    assert screen_name(pilot) == "DiscoveredScreen"
    await settle(pilot)


async def add_first_user(pilot, name: str = "alice", password: str = USER_PASSWORD) -> None:
    await wait_for_screen(pilot, "AddUserDialog")
    await type_into(pilot, "#user-name", name)
    await type_into(pilot, "#user-password", password)
    await type_into(pilot, "#user-confirm", password)
    no_secret_on_screen(pilot)
    await activate(pilot, "#add")


async def findings_to_fixes(pilot) -> None:
    """From the findings, Next: the registry has no users, so add one; the Fixes screen follows."""
    await next_step(pilot)
    await add_first_user(pilot)
    await wait_for_screen(pilot, "FixesScreen")


async def walk_to_fixes(pilot) -> None:
    await walk_to_findings(pilot)
    await findings_to_fixes(pilot)


def setup_text(pilot) -> str:
    """The discovered-setup table as plain text (one line per row)."""
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(pilot.app.screen.query_one("#setup", Static).content)
    return console.export_text()


def findings_rows(pilot) -> list[list[str]]:
    table = pilot.app.screen.query_one("#findings", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


# -- welcome ---------------------------------------------------------------------------------------


async def test_welcome_repair_button_is_enabled_and_described(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        button = pilot.app.screen.query_one("#repair", Button)
        assert not button.disabled
        text = screen_text(pilot)
        assert "coming soon" not in text
        assert "Find an existing registry, show what is broken," in text
        assert "fix it without losing data." in text


# -- the happy path -----------------------------------------------------------------------------------


async def test_repair_walk_to_results(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_repair(pilot)
        assert "Connect" in screen_text(pilot).splitlines()[0]
        await enter_value(pilot, "#container", "registry")
        await find_registry(pilot, typing=True)
        assert screen_name(pilot) == "DiscoveredScreen"
        conn, container, _keys = backend.adopt_calls[0]
        assert (conn.address, conn.port, conn.user, container) == (
            "10.0.0.2",
            22,
            "root",
            "registry",
        )
        await settle(pilot)
        assert len(backend.diagnose_calls) == 1
        # the discovered setup (names only for users; the anonymous volume in words)
        setup = setup_text(pilot)
        assert "reg.example.test" in setup and "registry (registry:2)" in setup
        assert "data in an anonymous volume" in setup
        assert "expires in 200 days" in setup
        assert "none: no auth" in setup
        # the findings: failures first, with a mark, check, host and message
        rows = findings_rows(pilot)
        assert [r[0] for r in rows[:3]] == ["✗", "✗", "!"]
        assert {r[1] for r in rows[:2]} == {"auth", "storage"}
        assert all(r[0] == "✓" for r in rows[3:])
        text = screen_text(pilot)
        assert "Findings" in text and "registry without auth" in text  # visible at 80x24
        # the highlighted finding's evidence and fix are shown below the table
        assert "without credentials -> 200" in widget_text(pilot, "#finding-evidence")
        assert widget_text(pilot, "#finding-fix").startswith("Fix: add a user")
        # choose fixes: the registry has no users, so one is asked for first
        await findings_to_fixes(pilot)
        await settle(pilot)
        fixes = pilot.app.screen.query_one("#fixes", SelectionList)
        assert fixes.option_count == 3 and len(fixes.selected) == 3  # all checked
        assert not pilot.app.screen.query_one("#partial").display
        text = " ".join(screen_text(pilot).split())
        assert "Data is never deleted" in text and "backed up first" in text
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"  # the same Review → Run → Results
        assert "Review" in screen_text(pilot).splitlines()[0]
        await run_from_review(pilot)  # the verify password is known: no dialog
        assert screen_name(pilot) == "RunScreen"
        await pilot.click("#results")
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "ResultsScreen"
        assert "works" in widget_text(pilot, "#verdict")
        await pilot.click("#finish")
        await pilot.pause()
    assert app.return_code == EXIT_VERIFIED
    plan, secrets = backend.run_calls[0]
    assert [u.name for u in plan.users] == ["alice"]
    assert check_password(plan.users[0].bcrypt, USER_PASSWORD)
    assert plan.verify_user == "alice" and secrets.verify_password == USER_PASSWORD
    assert plan.registry.storage == "/opt/docker-image"
    assert plan.host.host_key == FINGERPRINT


async def test_findings_detail_follows_the_cursor_and_remote_text_is_literal(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_findings(pilot)
        table = pilot.app.screen.query_one("#findings", DataTable)
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        assert widget_text(pilot, "#finding-message").startswith("✗ storage on 10.0.0.2")
        evidence = widget_text(pilot, "#finding-evidence")
        assert MARKUP_EVIDENCE in evidence and "[team]/app" in evidence
        assert "nothing is deleted" in widget_text(pilot, "#finding-fix")
        # DataTable cells are markup: remote text is escaped and shows literally
        last = table.row_count - 1
        assert table.get_row_at(last)[3] == escape("reg.example.test -> 10.0.0.2 [managed]")
        table.move_cursor(row=last)
        await pilot.pause()
        assert "[managed]" in screen_text(pilot)
        assert not pilot.app.screen.query_one("#finding-fix").display  # ok: nothing to fix


async def test_back_from_fixes_keeps_the_findings_without_checking_again(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_fixes(pilot)
        await back_step(pilot)
        await settle(pilot)
        assert screen_name(pilot) == "DiscoveredScreen"
        assert len(backend.diagnose_calls) == 1
        assert len(findings_rows(pilot)) == 7
        await next_step(pilot)  # the user is there now: no dialog
        await wait_for_screen(pilot, "FixesScreen")
        await back_step(pilot)
        await back_step(pilot)
        assert screen_name(pilot) == "RepairConnectScreen"
        assert pilot.app.screen.query_one("#host-address").value == "10.0.0.2"


async def test_check_again_runs_the_doctor_again(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_findings(pilot)
        await activate(pilot, "#recheck")
        await settle(pilot)
        assert len(backend.diagnose_calls) == 2
        assert len(findings_rows(pilot)) == 7


async def test_unchecking_a_fix_blocks_fix_and_says_why(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_fixes(pilot)
        await settle(pilot)
        fixes = pilot.app.screen.query_one("#fixes", SelectionList)
        fixes.focus()
        await pilot.press("space")  # uncheck the first one
        await pilot.pause()
        assert len(fixes.selected) == 2
        assert pilot.app.screen.query_one("#partial").display
        assert pilot.app.screen.query_one("#next", Button).disabled
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert screen_name(pilot) == "FixesScreen"
        assert backend.run_calls == []
        await pilot.press("space")  # check it again
        await pilot.pause()
        assert not pilot.app.screen.query_one("#next", Button).disabled
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"


async def test_no_user_added_stays_on_findings(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_findings(pilot)
        await next_step(pilot)
        await wait_for_screen(pilot, "AddUserDialog")
        await pilot.press("escape")
        await wait_for_screen(pilot, "DiscoveredScreen")
        await settle(pilot)
        assert app.state.repair is not None and app.state.repair.plan.users == []


# -- host keys ------------------------------------------------------------------------------------------


async def test_unknown_host_key_in_repair_is_confirmed_then_retried():
    backend = FakeBackend(adopt_mode="unknown-key")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_repair(pilot)
        await find_registry(pilot)
        assert screen_name(pilot) == "HostKeyDialog"
        assert FINGERPRINT in screen_text(pilot)
        assert pilot.app.focused.id == "cancel"  # the safe answer has the focus
        await pilot.click("#trust")
        await settle(pilot)
        assert screen_name(pilot) == "DiscoveredScreen"
        assert FINGERPRINT in app.state.secrets.accepted_host_keys
        assert len(backend.adopt_calls) == 2
        assert FINGERPRINT in backend.adopt_calls[1][2]


async def test_unknown_host_key_refused_in_repair_does_not_connect():
    backend = FakeBackend(adopt_mode="unknown-key")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_repair(pilot)
        await find_registry(pilot)
        assert screen_name(pilot) == "HostKeyDialog"
        await pilot.press("escape")
        await settle(pilot)
        assert screen_name(pilot) == "RepairConnectScreen"
        assert app.state.secrets.accepted_host_keys == set()
        assert len(backend.adopt_calls) == 1
        assert "not trusted" in widget_text(pilot, "#adopt-status")


async def test_changed_host_key_blocks_repair_without_bypass():
    backend = FakeBackend(adopt_mode="changed-key")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_repair(pilot)
        await find_registry(pilot)
        assert screen_name(pilot) == "RepairConnectScreen"  # no dialog to click through
        box = pilot.app.screen.query_one("#adopt-status", Static)
        assert box.has_class("-error")
        text = widget_text(pilot, "#adopt-status")
        assert "CHANGED" in text and "refusing" in text
        assert "CHANGED" in screen_text(pilot)  # scrolled into view at 80x24
        assert app.state.secrets.accepted_host_keys == set()
        assert app.state.repair is None
        assert not pilot.app.screen.query("#trust")
        assert backend.diagnose_calls == []


async def test_no_registry_found_shows_cause_and_fix():
    backend = FakeBackend(adopt_mode="error")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_repair(pilot)
        await find_registry(pilot)
        assert screen_name(pilot) == "RepairConnectScreen"
        text = widget_text(pilot, "#adopt-status")
        assert "no registry container found" in text and "Fix: pass --container" in text


async def test_bad_connect_fields_block_the_search(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_repair(pilot)
        await enter_value(pilot, "#host-address", "")
        await enter_value(pilot, "#container", "bad name")
        await next_step(pilot)
        await settle(pilot)
        assert screen_name(pilot) == "RepairConnectScreen"
        assert backend.adopt_calls == []
        assert pilot.app.screen.query_one("#container-error").has_class("-shown")


# -- users the registry ignores ----------------------------------------------------------------------------


async def test_non_bcrypt_users_are_asked_for_new_passwords():
    backend = FakeBackend(adopt_scenario="md5")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_findings(pilot)
        setup = setup_text(pilot)
        assert "carol" in setup and "dave (needs a new password)" in setup
        assert rows_have(pilot, "htpasswd")
        await next_step(pilot)
        for name, password in (("dave", USER_PASSWORD), ("erin", OTHER_PASSWORD)):
            await wait_for_screen(pilot, "PasswordDialog")
            text = screen_text(pilot)
            assert f"New password for {name}" in text and "apr1-md5" in text
            await type_into(pilot, "#password", "short")
            await activate(pilot, "#ok")
            assert screen_name(pilot) == "PasswordDialog"  # too short: refused
            await type_into(pilot, "#password", password)
            no_secret_on_screen(pilot)
            await activate(pilot, "#ok")
        await wait_for_screen(pilot, "FixesScreen")
        await settle(pilot)
        no_secret_on_screen(pilot)
        assert "carol, dave, erin" in widget_text(pilot, "#fix-users")
        plan = app.state.repair.plan
        users = {u.name: u.bcrypt for u in plan.users}
        assert set(users) == {"carol", "dave", "erin"}
        assert all(is_bcrypt(h) for h in users.values())
        assert check_password(users["dave"], USER_PASSWORD)
        assert check_password(users["erin"], OTHER_PASSWORD)
        # the proof logs in as a user whose password is known
        assert plan.verify_user == "dave"
        assert app.state.secrets.verify_password == USER_PASSWORD
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        no_secret_on_screen(pilot)
        await run_from_review(pilot)
        await pilot.click("#results")
        await pilot.pause()
        await pilot.pause()
        no_secret_on_screen(pilot)
        assert "login as dave" in screen_text(pilot)


async def test_cancelling_a_new_password_stays_on_findings():
    backend = FakeBackend(adopt_scenario="md5")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_findings(pilot)
        await next_step(pilot)
        await wait_for_screen(pilot, "PasswordDialog")
        await pilot.press("escape")
        await wait_for_screen(pilot, "DiscoveredScreen")
        await settle(pilot)
        assert all(is_bcrypt(u.bcrypt) for u in app.state.repair.plan.users)
        assert [u.name for u in app.state.repair.plan.users] == ["carol"]


def rows_have(pilot, check: str) -> bool:
    return any(r[1] == check and r[0] == "✗" for r in findings_rows(pilot))


# -- secrets --------------------------------------------------------------------------------------------


async def test_repair_passwords_never_reach_the_screen(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_repair(pilot)
        await enter_value(pilot, "#host-address", "10.0.0.2")
        pilot.app.screen.query_one("#host-auth", Select).value = "password"
        await pilot.pause()
        await type_into(pilot, "#host-password", SSH_PASSWORD)
        await type_into(pilot, "#host-user", "admin")
        await activate(pilot, "#host-sudo")
        await type_into(pilot, "#host-sudo-password", SUDO_PASSWORD)
        no_secret_on_screen(pilot)
        await next_step(pilot)
        await settle(pilot)
        assert screen_name(pilot) == "DiscoveredScreen"
        no_secret_on_screen(pilot)
        await findings_to_fixes(pilot)
        no_secret_on_screen(pilot)
        await next_step(pilot)
        await run_from_review(pilot)
        no_secret_on_screen(pilot)
        await pilot.click("#results")
        await pilot.pause()
        await pilot.pause()
        no_secret_on_screen(pilot)
    conn, _container, _keys = backend.adopt_calls[0]
    assert (conn.user, conn.auth, conn.sudo) == ("admin", "password", True)
    _plan, secrets = backend.run_calls[0]
    assert secrets.ssh_passwords["10.0.0.2"] == SSH_PASSWORD
    assert secrets.sudo_passwords["10.0.0.2"] == SUDO_PASSWORD
    assert SSH_PASSWORD not in repr(_plan)
