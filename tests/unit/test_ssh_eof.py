"""Our EOF on a command's channel never follows our CLOSE (paramiko#1115, #1705).

paramiko's ``shutdown_write`` builds the EOF under the channel's lock and sends it after
releasing it; the transport thread can answer the server's CLOSE in between, and OpenSSH
then drops the whole connection ("ieof packet referred to nonexistent channel"). Seen on
the lab with four doctor checks at once on one host, about one run in a hundred."""

from __future__ import annotations

import threading

from regwizard import hosts


class Transport:
    def __init__(self, chan: Chan) -> None:
        self.chan = chan
        self.sent: list[tuple[object, bool]] = []

    def _send_user_message(self, m: object) -> None:
        self.sent.append((m, self.chan.lock.locked()))


class Chan:
    def __init__(self, closed: bool = False, eof_sent: bool = False) -> None:
        self.lock = threading.Lock()
        self.closed, self.eof_sent = closed, eof_sent
        self.transport = Transport(self)

    def _send_eof(self) -> object | None:  # paramiko: None once sent
        if self.eof_sent:
            return None
        self.eof_sent = True
        return "EOF"


def test_the_eof_is_sent_while_the_channel_lock_is_held() -> None:
    chan = Chan()
    hosts._send_eof(chan)  # type: ignore[arg-type]
    assert chan.transport.sent == [("EOF", True)]
    hosts._send_eof(chan)  # type: ignore[arg-type]
    assert len(chan.transport.sent) == 1  # once


def test_no_eof_on_a_closed_channel() -> None:
    chan = Chan(closed=True)
    hosts._send_eof(chan)  # type: ignore[arg-type]
    assert chan.transport.sent == []


def test_a_close_waits_for_an_eof_under_way() -> None:
    """The transport thread's CLOSE handling takes the same lock: it cannot slip in."""
    chan = Chan()
    order: list[str] = []
    sending = threading.Event()
    go_on = threading.Event()

    def slow_send(m: object) -> None:
        sending.set()
        go_on.wait(5)
        order.append("EOF")

    chan.transport._send_user_message = slow_send  # type: ignore[method-assign]
    writer = threading.Thread(target=hosts._send_eof, args=(chan,))
    writer.start()
    assert sending.wait(5)

    def handle_close() -> None:  # as paramiko's Channel._handle_close
        with chan.lock:
            chan.closed = True
        order.append("CLOSE")

    closer = threading.Thread(target=handle_close)
    closer.start()
    closer.join(0.2)  # the closer is stuck on the lock while the EOF is being sent
    go_on.set()
    writer.join(5)
    closer.join(5)
    assert order == ["EOF", "CLOSE"]


def test_a_paramiko_without_those_internals_still_gets_its_eof() -> None:
    """_send_eof uses paramiko's channel internals; should they change, a fed command
    still gets an EOF (paramiko's own), never none (it would wait for it forever)."""

    class Plain:
        def __init__(self) -> None:
            self.shut = False

        def shutdown_write(self) -> None:
            self.shut = True

    chan = Plain()
    hosts._send_eof(chan)  # type: ignore[arg-type]
    assert chan.shut


def test_a_command_fed_nothing_reads_dev_null_and_gets_no_eof() -> None:
    assert hosts._PID_SCRIPT_NO_STDIN.endswith('exec "$@" </dev/null')
    assert "</dev/null" not in hosts._PID_SCRIPT  # fed commands (and sudo -S) read stdin
