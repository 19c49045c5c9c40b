"""bcrypt never runs on the UI thread: the verify password (Storage), the password dialog
before a run (Review), hashing new users. Proved structurally, with no timing: every
bcrypt call records whether it ran on the main thread (the one running the app)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import bcrypt
import pytest
from textual.widgets import Button

import regwizard.screens.review as review_screen
import regwizard.screens.storage as storage_screen
from regwizard.htpasswd import hash_password
from regwizard.plan import Connection, Plan, RegistrySpec, User, load_plan, save_plan

from .conftest import SIZE, make_app
from .fakes import FakeBackend
from .test_repair import find_registry, start_repair, wait_for_screen
from .walk import (
    OTHER_PASSWORD,
    USER_PASSWORD,
    activate,
    back_step,
    enter_value,
    error_text,
    next_step,
    screen_name,
    settle,
    type_into,
    walk_to_results,
)

COST = 12  # ~0.25 s a check: slow enough to matter, as a cost-14 hash does more so

MISMATCH_STORAGE = "This is not alice's password (it does not match the stored hash)"
MISMATCH_REVIEW = "This is not alice's password (it does not match the plan's hash)"


@pytest.fixture(scope="module")
def costly_plan_file(tmp_path_factory) -> Path:
    """A saved plan whose user alice has a cost-12 bcrypt hash (made once, before any app)."""
    plan = Plan(
        registry=RegistrySpec(domain="reg.example.test", ip="10.0.0.2"),
        host=Connection(address="10.0.0.2", label="node1"),
        users=[User("alice", hash_password(USER_PASSWORD, rounds=COST))],
    )
    path = tmp_path_factory.mktemp("plan") / "regwizard-plan.toml"
    save_plan(plan, path)
    return path


@pytest.fixture
def bcrypt_threads(monkeypatch) -> list[bool]:
    """Every bcrypt check and hash from now on: True when it ran on the main thread."""
    on_main: list[bool] = []
    for name in ("checkpw", "hashpw"):
        real = getattr(bcrypt, name)

        def recorded(*args, _real=real):
            on_main.append(threading.current_thread() is threading.main_thread())
            return _real(*args)

        monkeypatch.setattr(bcrypt, name, recorded)
    return on_main


async def on_storage_with_costly_user(pilot) -> None:
    """Review → Back: Storage asks for alice's password (her hash came from the file)."""
    await pilot.pause()
    await pilot.pause()
    assert screen_name(pilot) == "ReviewScreen"
    await back_step(pilot)
    assert screen_name(pilot) == "StorageScreen"
    assert pilot.app.screen.query_one("#verify-password-field").display


async def test_verify_password_is_checked_off_the_ui_thread(costly_plan_file, bcrypt_threads):
    """Typed key by key: each key is handled without bcrypt; a wrong password still
    blocks Next with the same words, and the right one passes."""
    path = costly_plan_file
    app = make_app(plan=load_plan(path), plan_path=path, start_at="review")
    async with app.run_test(size=SIZE) as pilot:
        await on_storage_with_costly_user(pilot)
        await type_into(pilot, "#verify-password", "wrong-password")
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        assert error_text(pilot, "verify-password") == MISMATCH_STORAGE
        await type_into(pilot, "#verify-password", USER_PASSWORD)
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        assert app.state.secrets.verify_password == USER_PASSWORD
    assert bcrypt_threads, "the password was never checked"
    assert not any(bcrypt_threads), "bcrypt ran on the UI thread"


async def test_a_wrong_verify_password_shows_while_typing_and_blocks_back_too(
    costly_plan_file, bcrypt_threads
):
    """The verdict arrives from the worker (no Next needed); Back keeps only a right one."""
    path = costly_plan_file
    app = make_app(plan=load_plan(path), plan_path=path, start_at="review")
    async with app.run_test(size=SIZE) as pilot:
        await on_storage_with_costly_user(pilot)
        await type_into(pilot, "#verify-password", "wrong-password")
        await pilot.press("enter")  # submitted: checked at once
        await settle(pilot)
        assert error_text(pilot, "verify-password") == MISMATCH_STORAGE
        await back_step(pilot)  # Back waits for the check: a wrong password is not kept
        assert screen_name(pilot) == "CertificateScreen"
        assert app.state.secrets.verify_password == ""
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        await enter_value(pilot, "#verify-password", USER_PASSWORD)
        await back_step(pilot)  # a right one is
        assert app.state.secrets.verify_password == USER_PASSWORD
    assert bcrypt_threads and not any(bcrypt_threads)


@pytest.mark.parametrize(
    ("password", "lands_on", "error"),
    [(USER_PASSWORD, "ReviewScreen", ""), ("wrong-password", "StorageScreen", MISMATCH_STORAGE)],
    ids=["right", "wrong"],
)
async def test_next_waits_for_a_running_check_and_the_app_keeps_running(
    costly_plan_file, monkeypatch, password, lands_on, error
):
    """Next pressed while the check is still running (held in its thread by a gate):
    the app's loop keeps running, Next does not go on without the verdict, then obeys it."""
    path = costly_plan_file
    real = storage_screen.password_matches
    entered = threading.Event()
    release = threading.Event()
    on_main: list[bool] = []

    def gated(password: str, bcrypt_hash: str) -> bool:
        on_main.append(threading.current_thread() is threading.main_thread())
        entered.set()
        release.wait(10)  # on the UI thread this would freeze the loop: the test would see it
        return real(password, bcrypt_hash)

    monkeypatch.setattr(storage_screen, "password_matches", gated)
    app = make_app(plan=load_plan(path), plan_path=path, start_at="review")
    async with app.run_test(size=SIZE) as pilot:
        await on_storage_with_costly_user(pilot)
        await enter_value(pilot, "#verify-password", password)
        pilot.app.screen.query_one("#next", Button).press()  # no pilot wait: it would wait too
        turns = 0
        while not entered.is_set() and turns < 500:
            await asyncio.sleep(0.01)  # the app's loop runs: this coroutine gets turns
            turns += 1
        assert entered.is_set()
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert screen_name(pilot) == "StorageScreen"  # waiting for the verdict, not past it
        assert on_main == [False]
        release.set()
        await settle(pilot)
        await pilot.pause()
        assert screen_name(pilot) == lands_on
        if error:
            assert error_text(pilot, "verify-password") == error
        assert app.state.secrets.verify_password == ("" if error else USER_PASSWORD)
    assert not any(on_main)


async def test_review_password_dialog_checks_off_the_ui_thread(costly_plan_file, bcrypt_threads):
    """Run from Review asks for alice's password; the dialog's bcrypt check runs in a
    worker, refuses a wrong password with the same words, and accepts the right one."""
    path = costly_plan_file
    app = make_app(plan=load_plan(path), plan_path=path, start_at="review")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        await pilot.click("#next")
        await pilot.pause()
        assert screen_name(pilot) == "PasswordDialog"
        await type_into(pilot, "#password", "not-the-password")
        await pilot.press("enter")
        await pilot.pause()
        assert screen_name(pilot) == "PasswordDialog"
        assert error_text(pilot, "password") == MISMATCH_REVIEW
        await type_into(pilot, "#password", USER_PASSWORD)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "RunScreen"
        await settle(pilot)
    assert bcrypt_threads and not any(bcrypt_threads)
    assert app.backend.run_calls[0][1].verify_password == USER_PASSWORD


async def test_escape_while_the_dialog_checks_cancels_cleanly(costly_plan_file, monkeypatch):
    """Esc while the check runs answers "cancel" once; the late verdict changes nothing."""
    path = costly_plan_file
    real = review_screen.password_matches
    entered = threading.Event()
    release = threading.Event()

    def gated(password: str, bcrypt_hash: str) -> bool:
        entered.set()
        release.wait(10)
        return real(password, bcrypt_hash)

    monkeypatch.setattr(review_screen, "password_matches", gated)
    app = make_app(plan=load_plan(path), plan_path=path, start_at="review")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        await pilot.click("#next")
        await pilot.pause()
        assert screen_name(pilot) == "PasswordDialog"
        await enter_value(pilot, "#password", USER_PASSWORD)
        dialog = pilot.app.screen
        dialog.query_one("#ok", Button).press()  # no pilot wait: it would wait too
        turns = 0
        while not entered.is_set() and turns < 500:
            await asyncio.sleep(0.01)
            turns += 1
        assert entered.is_set()
        # what Esc does (the app runs the binding's action while the dialog waits)
        await pilot.app.run_action("cancel", dialog)
        assert screen_name(pilot) == "ReviewScreen"
        release.set()
        await settle(pilot)
        await pilot.pause()
        assert screen_name(pilot) == "ReviewScreen"  # cancelled: not run, not popped twice
        assert len(app.screen_stack) == 2
    assert app.backend.run_calls == []
    assert app.state.secrets.verify_password == ""


async def test_the_whole_walk_hashes_off_the_ui_thread(bcrypt_threads):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_results(pilot)
    assert bcrypt_threads and not any(bcrypt_threads)


async def test_repair_new_passwords_hash_off_the_ui_thread(bcrypt_threads):
    """Users the registry ignores (md5) get new passwords, hashed in a thread."""
    app = make_app(FakeBackend(adopt_scenario="md5"))
    async with app.run_test(size=SIZE) as pilot:
        await start_repair(pilot)
        await find_registry(pilot)
        assert screen_name(pilot) == "DiscoveredScreen"
        await settle(pilot)
        await next_step(pilot)
        for password in (USER_PASSWORD, OTHER_PASSWORD):
            await wait_for_screen(pilot, "PasswordDialog")
            await type_into(pilot, "#password", password)
            await activate(pilot, "#ok")
        await wait_for_screen(pilot, "FixesScreen")
    assert bcrypt_threads and not any(bcrypt_threads)
