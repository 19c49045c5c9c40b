"""Connections opened early (regwizard.preconnect), with a fake hosts.connect: the one
opened early is the one taken, its error is raised where it is taken, a machine named
twice is opened once, and what nobody took is closed."""

from __future__ import annotations

import threading

import pytest

from regwizard import hosts, preconnect
from regwizard.errors import ConnectFailed
from regwizard.plan import Connection, Secrets
from tests.unit.sandbox import loopback_plan


class FakeHost:
    def __init__(self, conn: Connection) -> None:
        self.conn, self.closed, self.cancel = conn, False, None

    def close(self) -> None:
        self.closed = True

    def watch_cancel(self, cancel) -> None:  # noqa: ANN001
        self.cancel = cancel


@pytest.fixture
def opened(monkeypatch):  # noqa: ANN201
    made: list[FakeHost] = []
    lock = threading.Lock()

    def connect(conn, secrets, *, cancel=None, timeout=10.0):  # noqa: ANN001, ANN202
        if conn.address == "192.0.2.99":
            raise ConnectFailed("192.0.2.99: connection refused", "check the address")
        h = FakeHost(conn)
        with lock:
            made.append(h)
        return h

    monkeypatch.setattr(hosts, "connect", connect)
    return made


def _plan():  # noqa: ANN202
    plan = loopback_plan()
    plan.clients = [Connection(), Connection(address="192.0.2.7"), Connection(address="192.0.2.99")]
    return plan


def test_each_machine_is_opened_once_and_taken_from_the_early_one(opened):
    plan, secrets = _plan(), Secrets()
    early = preconnect.Preconnect(plan, secrets)
    cancel = threading.Event()
    local = early.connect(plan.host, secrets, cancel=cancel)
    remote = early.connect(plan.clients[1], secrets, cancel=cancel)
    assert local.conn is plan.host and remote.conn.address == "192.0.2.7"
    assert remote.cancel is cancel  # the run's cancel, not the early one's
    early.close_unused()
    assert len(opened) == 2  # "local" named twice: once; 192.0.2.99 failed
    assert not local.closed and not remote.closed


def test_an_early_failure_is_raised_where_it_is_taken(opened):
    plan, secrets = _plan(), Secrets()
    early = preconnect.Preconnect(plan, secrets)
    with pytest.raises(ConnectFailed):
        early.connect(plan.clients[2], secrets)
    early.close_unused()


def test_what_nobody_took_is_closed_and_other_secrets_connect_afresh(opened):
    plan, secrets = _plan(), Secrets()
    early = preconnect.Preconnect(plan, secrets)
    other = early.connect(plan.host, Secrets())  # not the secrets it was opened with
    early.close_unused()
    assert other in opened and not other.closed
    early_ones = [h for h in opened if h is not other]
    assert early_ones and all(h.closed for h in early_ones)
