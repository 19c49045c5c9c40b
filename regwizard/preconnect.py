"""Connections opened early: a run (``engine.run``) or a doctor (``doctor.diagnose``)
starts every host's SSH handshake as soon as the plan is known valid, then imports its
steps (about 0.3 s of CPU: cryptography's x509, the Docker client) while the handshakes
wait on the network. It then takes them through the same ``connect`` it was given, so a
connection opened early behaves exactly as one opened then: the same host-key checks,
the same errors, raised where it is taken.

    early = Preconnect(plan, secrets, connect)      # connect: hosts.connect or a fake
    try:
        host = early.connect(conn, secrets, cancel=cancel, timeout=timeout)
    finally:
        early.close_unused()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future

from regwizard.plan import Connection, Plan, Secrets, conn_key

TIMEOUT = 10.0  # the engine's own CONNECT_TIMEOUT
AT_ONCE = 16  # handshakes at a time (steps.base.MAX_PARALLEL_HOSTS)


def plan_connections(plan: Plan) -> list[Connection]:
    """Each machine of the plan once (as steps.base.host_entries merges them)."""
    seen: dict[str, Connection] = {}
    for c in [plan.host, *plan.replicas, *plan.clients]:
        seen.setdefault(conn_key(c), c)
    return list(seen.values())


class Preconnect:
    def __init__(
        self, plan: Plan, secrets: Secrets, connect: Callable | None = None, timeout=TIMEOUT
    ) -> None:  # noqa: ANN001
        self.secrets = secrets
        self._connect = connect
        self.cancel = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._slots = threading.Semaphore(AT_ONCE)
        self._pending: dict[str, Future] = {}
        for conn in plan_connections(plan):
            fut: Future = Future()
            self._pending[conn_key(conn)] = fut
            threading.Thread(
                target=self._open, args=(conn, fut, timeout), daemon=True, name="preconnect"
            ).start()

    def _dial(self) -> Callable:
        if self._connect is not None:
            return self._connect
        from regwizard import hosts

        return hosts.connect

    def _open(self, conn: Connection, fut: Future, timeout: float) -> None:
        with self._slots:
            try:
                if self.cancel.is_set():
                    raise RuntimeError("not needed")
                host = self._dial()(conn, self.secrets, cancel=self.cancel, timeout=timeout)
            except BaseException as ex:  # noqa: BLE001 - raised again where it is taken
                fut.set_exception(ex)
                return
        with self._lock:
            if not self._closed:
                fut.set_result(host)
                return
        _close(host)  # opened after the run stopped waiting for it

    def connect(self, conn: Connection, secrets: Secrets, *, cancel=None, timeout=TIMEOUT):  # noqa: ANN001, ANN201
        """``hosts.connect``'s signature: the early connection to ``conn`` when one was
        opened with these secrets, else a new one."""
        with self._lock:
            fut = self._pending.pop(conn_key(conn), None) if secrets is self.secrets else None
        if fut is None:
            return self._dial()(conn, secrets, cancel=cancel, timeout=timeout)
        host = fut.result()
        if hasattr(host, "watch_cancel"):
            host.watch_cancel(cancel)  # the run's cancel from now on, not ours
        return host

    def close_unused(self) -> None:
        """Stop the handshakes nobody took and close what they opened; never waits (a
        handshake under way closes its connection itself when it ends)."""
        self.cancel.set()
        with self._lock:
            self._closed = True
            left, self._pending = list(self._pending.values()), {}
        for fut in left:
            if fut.done() and fut.exception() is None:
                _close(fut.result())


def _close(host) -> None:  # noqa: ANN001
    try:
        host.close()
    except Exception:  # noqa: BLE001, S110 - closing an unused connection never fails a run
        pass
