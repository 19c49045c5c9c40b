"""Opening an SSH session on a busy sshd: one timeout is retried (nothing has run yet),
a second one, or any other failure, is one clear ConnectFailed."""

from __future__ import annotations

import paramiko
import pytest

from regwizard.errors import ConnectFailed
from regwizard.hosts import SSHHost


class FakeTransport:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.calls = 0

    def is_active(self) -> bool:
        return True

    def open_session(self, timeout: float) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "channel"


def _host(t: FakeTransport) -> SSHHost:
    h = SSHHost.__new__(SSHHost)  # no connection: only _open_channel is exercised
    h.label, h._timeout = "node1", 10.0
    h._live = lambda: t  # type: ignore[method-assign]
    return h


def test_one_channel_timeout_is_retried() -> None:
    t = FakeTransport([paramiko.SSHException("Timeout opening channel.")])
    assert _host(t)._open_channel(30) == "channel" and t.calls == 2


def test_a_second_timeout_is_one_clear_failure() -> None:
    t = FakeTransport([paramiko.SSHException("Timeout opening channel.")] * 2)
    with pytest.raises(ConnectFailed, match="cannot open an SSH session"):
        _host(t)._open_channel(30)
    assert t.calls == 2


def test_a_refused_channel_is_not_retried() -> None:
    t = FakeTransport([paramiko.ChannelException(1, "Administratively prohibited")])
    with pytest.raises(ConnectFailed, match="cannot open an SSH session"):
        _host(t)._open_channel(30)
    assert t.calls == 1
