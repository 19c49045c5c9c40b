"""Work the engine starts ahead of the step that needs it (issue 15), with fake steps:

- a rerun's verification starts once the name-settling step found nothing to change, and
  stands only when the whole run changed nothing; it is stopped and thrown away before
  any change, and the proof then runs after the changes, as always;
- a step's ``prepare`` starts CPU work (keys) that its apply takes; a failed or missing
  piece of ahead work means the step does the work itself;
- a fact read that started before ``forget`` is not cached after it.

No timing is asserted: order is observed through events and flags.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import ClassVar

from regwizard import engine
from regwizard.events import StepFinished, StepStarted, Verification
from regwizard.plan import Connection, Plan, Secrets
from regwizard.steps.base import Change, Ctx, HostEntry, Step, Unchanged


class FakeHost:
    def run_lock(self, *a, **kw):  # noqa: ANN002, ANN003, ANN201
        return contextlib.nullcontext()

    def close(self) -> None:
        pass


def fake_connect(conn, secrets, cancel=None, timeout=None):  # noqa: ANN001, ANN201
    return FakeHost()


def _plan() -> Plan:
    from tests.unit.sandbox import loopback_plan

    return loopback_plan()  # valid; nothing runs on it (fake hosts, fake steps)


@dataclass(frozen=True)
class Fix(Change):
    pass


class Names(Step[Fix]):
    name = "names"
    scope = "registry"
    settles_names = True
    changes = False

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | Fix:
        return Fix("differs") if self.changes else Unchanged("ok")

    def apply(self, ctx: Ctx, e: HostEntry, change: Fix) -> str:
        return "fixed"

    def verify(self, ctx: Ctx, e: HostEntry) -> None:
        pass


class Later(Step[Fix]):
    """A step after the name step; it records whether the proof ran during its apply."""

    name = "later"
    scope = "registry"

    def __init__(self, changes: bool, proof: Proof) -> None:
        self.changes = changes
        self.proof = proof
        self.proof_running_during_apply: bool | None = None

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | Fix:
        # the early proof has started by now when it may: give it the chance to run
        self.proof.started.wait(2)
        return Fix("differs") if self.changes else Unchanged("ok")

    def apply(self, ctx: Ctx, e: HostEntry, change: Fix) -> str:
        self.proof_running_during_apply = self.proof.running.is_set()
        return "fixed"

    def verify(self, ctx: Ctx, e: HostEntry) -> None:
        pass


class Proof(Step[Fix]):
    name = "verify"
    scope = "verify"
    reads_only = True
    fills_verification = True
    fail_when_early: ClassVar[bool] = False

    def __init__(self) -> None:
        self.started = threading.Event()
        self.running = threading.Event()
        self.runs: list[bool] = []  # ctx.early of each run
        self.stopped_early = False

    def check(self, ctx: Ctx, e: HostEntry) -> Fix:
        return Fix("always verified")

    def apply(self, ctx: Ctx, e: HostEntry, change: Fix) -> str:
        self.runs.append(ctx.early)
        self.running.set()
        self.started.set()
        try:
            if ctx.early:
                # an early proof is slow here: it must be stopped before a change
                if ctx.cancel.wait(0.5):
                    self.stopped_early = True
                    raise RuntimeError("stopped")
                if self.fail_when_early:
                    raise RuntimeError("not yet")
            ctx.log(self.name, e, "proved" + (" early" if ctx.early else ""))
            ctx.verification = Verification(
                user="demo", login_ok=True, anonymous_refused=True, push_digest="sha256:x",
                pull_digest="sha256:x", trust={e.label: True},
            )  # fmt: skip
            return "proved"
        finally:
            self.running.clear()

    def verify(self, ctx: Ctx, e: HostEntry) -> None:
        pass


def _run(names_change: bool, later_change: bool, proof: Proof | None = None):  # noqa: ANN202
    proof = proof or Proof()
    names = Names()
    names.changes = names_change
    later = Later(later_change, proof)
    events: list = []
    result = engine.run(
        _plan(),
        Secrets(verify_password="pw"),
        emit=events.append,
        connect=fake_connect,
        steps=[names, later, proof],
    )
    return result, events, proof, later


def test_a_rerun_that_changes_nothing_keeps_the_proof_started_early():
    result, events, proof, later = _run(False, False)
    assert result.ok, result.failure
    assert proof.runs == [True]  # one proof, the early one
    assert later.proof_running_during_apply is None  # nothing was applied
    # its events come in the verify step's place, after every other step's
    order = [
        (type(ev).__name__, ev.step) for ev in events if isinstance(ev, (StepStarted, StepFinished))
    ]
    assert order[-2:] == [("StepStarted", "verify"), ("StepFinished", "verify")]
    assert [r.step for r in result.steps][-1] == "verify"


def test_a_change_stops_the_early_proof_before_it_and_the_proof_runs_after():
    result, events, proof, later = _run(False, True)
    assert result.ok, result.failure
    assert later.proof_running_during_apply is False  # stopped before the apply started
    assert proof.stopped_early
    assert proof.runs == [True, False]  # the early one thrown away, then the real one
    logs = [ev.text for ev in events if type(ev).__name__ == "LogLine"]
    assert logs == ["proved"]  # nothing of the thrown-away proof is shown


def test_no_early_proof_when_the_name_step_changes_something():
    """A lookup before /etc/hosts is written would leave dockerd's 5 s cache stale."""
    result, _events, proof, _later = _run(True, False)
    assert result.ok, result.failure
    assert proof.runs == [False]


def test_a_failed_early_proof_is_thrown_away_and_the_proof_runs_again():
    proof = Proof()
    proof.fail_when_early = True
    result, events, proof, _later = _run(False, False, proof)
    assert result.ok, result.failure
    assert proof.runs == [True, False]
    assert not [ev for ev in events if type(ev).__name__ == "StepFailed"]


def test_no_early_proof_in_a_dry_run():
    proof = Proof()
    events: list = []
    names = Names()
    result = engine.run(
        _plan(),
        Secrets(verify_password="pw"),
        emit=events.append,
        connect=fake_connect,
        dry_run=True,
        steps=[names, proof],
    )
    assert result.ok
    assert proof.runs == []


class Pre(Step[Fix]):
    """A read-only step before the name step (as preflight): it records whether the early
    proof was already under way when it ran."""

    name = "pre"
    scope = "registry"
    reads_only = True

    def __init__(self, proof: Proof) -> None:
        self.proof = proof
        self.proof_started: bool | None = None

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged:
        self.proof_started = self.proof.started.wait(2)
        return Unchanged("ok")


class EditedMeanwhile(Names):
    """Settled when asked ahead; someone edits it before its own turn."""

    def __init__(self) -> None:
        self.calls = 0

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | Fix:
        self.calls += 1
        return Unchanged("ok") if self.calls == 1 else Fix("edited meanwhile")


def test_settled_names_start_the_proof_before_the_read_only_steps_before_them():
    proof = Proof()
    pre, names = Pre(proof), Names()
    events: list = []
    result = engine.run(
        _plan(), Secrets(verify_password="pw"), emit=events.append, connect=fake_connect,
        steps=[pre, names, Later(False, proof), proof],
    )  # fmt: skip
    assert result.ok, result.failure
    assert pre.proof_started is True
    assert proof.runs == [True]
    # asked ahead in silence: each step still starts and finishes once, in order
    started = [ev.step for ev in events if isinstance(ev, StepStarted)]
    assert started == ["connect", "pre", "names", "later", "verify"]


def test_names_edited_after_the_early_start_stop_the_proof_and_it_runs_after():
    proof = Proof()
    names = EditedMeanwhile()
    result = engine.run(
        _plan(), Secrets(verify_password="pw"), emit=lambda ev: None, connect=fake_connect,
        steps=[Pre(proof), names, Later(False, proof), proof],
    )  # fmt: skip
    assert result.ok, result.failure
    assert names.calls == 2  # asked ahead, then its own check
    assert proof.stopped_early
    assert proof.runs == [True, False]


# --------------------------------------------------------------------- ahead work


def _ctx() -> Ctx:
    return Ctx(_plan(), Secrets(), lambda ev: None, threading.Event())


def test_ahead_work_is_taken_once_and_a_failure_means_do_it_yourself():
    ctx = _ctx()
    ctx.start_ahead("a", lambda: 42)
    assert ctx.take_ahead("a") == 42
    assert ctx.take_ahead("a") is None  # taken: gone
    assert ctx.take_ahead("never started") is None

    def boom() -> int:
        raise ValueError("no")

    ctx.start_ahead("b", boom)
    assert ctx.take_ahead("b") is None


def test_a_fact_read_before_a_forget_is_not_cached_after_it():
    ctx = _ctx()
    e = HostEntry("k", "h", Connection(address="192.0.2.10"), is_registry=True)
    reading, release = threading.Event(), threading.Event()

    def slow_read() -> str:
        reading.set()
        release.wait(2)
        return "before"

    t = threading.Thread(target=lambda: ctx.fact("kind", e, slow_read))
    t.start()
    reading.wait(2)
    ctx.forget(e)  # e.g. a step changed the host while the read was under way
    release.set()
    t.join()
    assert ctx.fact("kind", e, lambda: "after") == "after"


def test_certificate_prepare_generates_only_when_its_check_says_issue(monkeypatch):
    from regwizard import pki
    from regwizard.steps import certificate

    made: list[str] = []
    monkeypatch.setattr(pki, "generate_key", lambda kind: made.append(kind) or f"key-{kind}")
    step = certificate.Certificate()
    ctx = _ctx()
    ctx.hosts = [HostEntry("k", "h", Connection(address="192.0.2.10"), is_registry=True)]
    ctx.plan.certificate.mode = "self-signed"
    ctx.plan.certificate.key = "rsa-4096"

    monkeypatch.setattr(step, "check", lambda c, e: Unchanged("valid"))
    step.prepare(ctx)
    assert step._key_ahead(ctx, "server") is None and made == []

    monkeypatch.setattr(
        step, "check", lambda c, e: certificate.CertificateChange("no certificate yet", issue=True)
    )
    step.prepare(ctx)
    assert step._key_ahead(ctx, "server") == "key-rsa-4096"
    assert step._key_ahead(ctx, "ca") is None  # no new CA was due
    assert made == ["rsa-4096"]


# ------------------------------------------------- a started container, awaited


class FakeContainer:
    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.status = "created"
        self.reloads = 0

    def reload(self) -> None:
        self.status = self.statuses[min(self.reloads, len(self.statuses) - 1)]
        self.reloads += 1


class Answers:
    def __init__(self, after: int) -> None:
        self.after, self.asked = after, 0

    def request(self, *a, **kw):  # noqa: ANN002, ANN003, ANN201
        self.asked += 1
        if self.asked <= self.after:
            raise ConnectionResetError("docker-proxy: nothing listens yet")
        return 401, {}, b""


def _registry_ctx(net: Answers) -> tuple[Ctx, HostEntry]:
    ctx = _ctx()
    e = HostEntry("k", "h", Connection(address="192.0.2.10"), is_registry=True)
    ctx.hosts = [e]
    ctx.net = net  # type: ignore[assignment]
    ctx._facts[("trust-anchor", e.key)] = b"anchor"
    return ctx, e


def test_a_started_registry_is_awaited_until_it_answers_not_a_fixed_time():
    from regwizard.steps import container

    net = Answers(after=2)
    ctx, e = _registry_ctx(net)
    c = FakeContainer(["running"])
    container._await_start(ctx, e, c)
    assert net.asked == 3 and c.status == "running"


def test_a_registry_that_exits_at_start_is_seen_at_once():
    from regwizard.steps import container

    net = Answers(after=10**6)
    ctx, e = _registry_ctx(net)
    c = FakeContainer(["running", "exited"])
    container._await_start(ctx, e, c)
    assert c.status == "exited" and net.asked == 1


def test_an_early_proof_stuck_on_a_hung_registry_does_not_hold_up_the_repair(monkeypatch):
    """It is left behind after STOP_WAIT; its result is never used, and the proof runs
    again after the change."""
    monkeypatch.setattr(engine, "STOP_WAIT", 0.1)
    release = threading.Event()

    stuck: list[threading.Thread] = []

    class Stuck(Proof):
        def apply(self, ctx: Ctx, e: HostEntry, change: Fix) -> str:
            if ctx.early:
                stuck.append(threading.current_thread())
                self.runs.append(True)
                self.started.set()
                release.wait(5)  # a push that ignores the cancel, as a hung one does
                raise RuntimeError("hung")
            return super().apply(ctx, e, change)

    proof = Stuck()
    try:
        result, _events, proof, _later = _run(False, True, proof)
        assert stuck[0].is_alive()  # the run did not wait for it, neither at the change
        # nor at the verify step
    finally:
        release.set()
    assert result.ok, result.failure
    assert proof.runs == [True, False]
