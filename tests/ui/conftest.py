"""Fixtures and helpers for the Textual UI tests (pilot + snapshots). No SSH, no Docker."""

from __future__ import annotations

import pytest

import regwizard.screens.repair as repair_screen
import regwizard.screens.storage as storage_screen
from regwizard.app import RegwizardApp
from regwizard.htpasswd import hash_password
from regwizard.plan import Plan

from .fakes import FakeBackend

SIZE = (80, 24)
WIDE = (120, 40)


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    """Real bcrypt, cheapest cost: the UI hashes users in a worker; tests stay quick."""
    monkeypatch.setattr(storage_screen, "hash_password", lambda pw: hash_password(pw, rounds=4))
    monkeypatch.setattr(repair_screen, "hash_password", lambda pw: hash_password(pw, rounds=4))


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch, tmp_path):
    """Same look everywhere: no TERM=linux fallback, no NO_COLOR, run in a temp dir."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


def make_app(backend: FakeBackend | None = None, plan: Plan | None = None, **kw) -> RegwizardApp:
    """An app as the tests want it: no cursor blink, no animation (stable snapshots)."""
    kw.setdefault("cursor_blink", False)
    kw.setdefault("ascii_borders", False)
    app = RegwizardApp(backend if backend is not None else FakeBackend(), plan, **kw)
    app.animation_level = "none"  # scrolling into view is instant: same picture every time
    return app
