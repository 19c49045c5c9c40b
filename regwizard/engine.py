"""The engine: run a plan's steps against real hosts, emitting events.

``run(plan, secrets, emit=..., cancel=...)`` takes plain inputs, a cancel event and an
``emit(event)`` callback. It never imports textual or rich (nor the CLI): the UI turns
events into messages, the CLI into lines on stderr.

A run connects to every host, takes the registry host's run lock (a second run waits,
then names the holder), and walks ``steps.STEPS``: each step's ``check`` decides, its
``apply`` changes only what differs, its ``verify`` confirms.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import TYPE_CHECKING

from regwizard.diagnose import clean, explain
from regwizard.errors import Cancelled, RegwizardError
from regwizard.events import (
    Event,
    HostFacts,
    Notice,
    Progress,
    RunFinished,
    RunResult,
    StepFailed,
    StepFinished,
    StepRecord,
    StepStarted,
)
from regwizard.plan import Connection, Plan, Secrets

if TYPE_CHECKING:  # steps pull in cryptography and bcrypt: imported when a run starts
    from collections.abc import Sequence

    from regwizard.steps.base import Ctx, HostEntry, Step

CONNECT_TIMEOUT = 10.0
MAX_PARALLEL_HOSTS = 16  # hosts worked on at once (a registry host and 15 clients)
LOCK_WAIT = 120.0  # how long a second run waits for the first before it refuses
STOP_WAIT = 5.0  # an early proof's push or pull under way ends well within this


def _run_unit(
    ctx: Ctx,
    step: Step,
    e: HostEntry,
    records: list[StepRecord],
    before_change=lambda: None,  # noqa: ANN001
) -> None:
    from regwizard.steps.base import Unchanged

    ctx.check_cancel()
    t0 = time.monotonic()
    ctx.emit(StepStarted(step.name, e.label, step.title))
    outcome = step.check(ctx, e)
    if isinstance(outcome, Unchanged):
        status, detail = "unchanged", outcome.detail
    elif ctx.dry_run:
        status, detail = "would-change", outcome.detail
    else:
        before_change()
        ctx.check_cancel()
        detail = step.apply(ctx, e, outcome) or outcome.detail
        ctx.forget(e)
        step.verify(ctx, e)
        status = "unchanged" if step.reads_only else "changed"
    secs = time.monotonic() - t0
    records.append(StepRecord(step.name, e.label, step.title, status, secs, detail))
    diffs = tuple(outcome.diffs) if status == "would-change" else ()
    ctx.emit(StepFinished(step.name, e.label, status, secs, detail, tuple(outcome.commands), diffs))


class _EarlyProof:
    """A rerun's verification, started once the steps that settle name resolution found
    nothing to change, beside the remaining read-only checks. Before any step changes
    anything it is stopped, waited for and thrown away (the full verification then runs
    after the changes). It counts only when the whole run changed nothing and it
    succeeded: the same login, anonymous push, push and pulls, of the very setup every
    check found as planned. Its events are held back and emitted in the verify step's
    place, so a reader sees the usual order."""

    def __init__(self, ctx: Ctx, step: Step) -> None:
        self.events: list[Event] = []
        self.records: list[StepRecord] = []
        self.cancel = threading.Event()
        self.error: BaseException | None = None
        self.stopped = False
        self.shadow = ctx.fork(emit=self.events.append, cancel=self.cancel, early=True)
        self.thread = threading.Thread(target=self._run, args=(step,), daemon=True)
        self.thread.start()

    def _run(self, step: Step) -> None:
        try:
            for e in step.targets(self.shadow):
                _run_unit(self.shadow, step, e, self.records)
        except BaseException as ex:  # noqa: BLE001 - judged by take(); never reported
            self.error = ex

    def _join(self, cancel: threading.Event, limit: float | None = None) -> None:
        end = None if limit is None else time.monotonic() + limit
        while self.thread.is_alive() and (end is None or time.monotonic() < end):
            if cancel.is_set():
                self.cancel.set()
            self.thread.join(0.05)

    def stop(self, cancel: threading.Event) -> None:
        """Stop it and wait until it ends, at most STOP_WAIT: a proof stuck on a hung
        registry is left behind (a daemon thread whose result is never used) rather than
        hold up the repair of that registry."""
        self.stopped = True
        self.cancel.set()
        self._join(cancel, STOP_WAIT)

    def take(self, cancel: threading.Event) -> bool:
        """Wait for it; True when it may stand as this run's verification."""
        self._join(cancel)
        v = self.shadow.verification
        return not self.stopped and self.error is None and bool(v and v.ok)


def run(
    plan: Plan,
    secrets: Secrets,
    *,
    emit=lambda e: None,
    cancel: threading.Event | None = None,
    dry_run: bool = False,
    lock_wait: float = LOCK_WAIT,
    connect=None,
    steps: Sequence[Step] | None = None,
    net=None,
) -> RunResult:
    """Converge the plan step by step, then verify. Stops at the first failure.

    ``steps`` runs a subset instead of ``steps.STEPS`` (e.g. ``steps.named("htpasswd")``
    and a proof of its own): only the hosts those steps target are connected, the run
    lock is taken as always, and the run is ok when every step finished (and, if a step
    ``fills_verification``, that verification holds)."""
    cancel = cancel or threading.Event()
    pre = _preconnect(plan, secrets, connect) if steps is None else None
    try:
        dial = pre.connect if pre is not None else connect
        return _run(plan, secrets, emit, cancel, dry_run, lock_wait, dial, steps, net)
    finally:
        if pre is not None:
            pre.close_unused()


def _preconnect(plan: Plan, secrets: Secrets, connect):  # noqa: ANN001, ANN202
    """A whole run needs every host of a valid plan: their handshakes start now, while
    the steps import (regwizard.preconnect). None for an invalid plan (reported below)."""
    from regwizard.plan import validate_plan
    from regwizard.preconnect import Preconnect

    return None if validate_plan(plan) else Preconnect(plan, secrets, connect)


def _run(plan, secrets, emit, cancel, dry_run, lock_wait, connect, steps, net) -> RunResult:  # noqa: ANN001, PLR0913
    from regwizard.steps import STEPS
    from regwizard.steps.base import Ctx, close_all, connect_each, host_entries

    lock = threading.Lock()

    def safe_emit(ev: Event) -> None:
        with lock:
            emit(ev)

    ctx = Ctx(plan, secrets, safe_emit, cancel, dry_run=dry_run, hosts=host_entries(plan))
    if net is not None:  # offline tests: the registry's port, faked
        ctx.net = net
    records: list[StepRecord] = []
    result = RunResult(ok=False, steps=records, dry_run=dry_run)
    t0 = time.monotonic()
    chosen = list(STEPS if steps is None else steps)
    steps = [s for s in chosen if not (dry_run and s.needs_registry)]
    # the registry host always (its lock); other hosts only when a step works on them
    wanted = {ctx.registry.key} | {e.key for s in chosen for e in s.targets(ctx)}
    done = 0
    early: list[_EarlyProof | None] = [None]
    current = ("connect", ctx.registry.label)
    with ExitStack() as held:
        try:
            plan.validate()
            ctx.emit(StepStarted("connect", "all", "Connect to hosts"))
            tc = time.monotonic()
            hosts = [e for e in ctx.hosts if e.key in wanted]
            for _e, err in connect_each(hosts, secrets, cancel, connect):
                if err is not None:
                    raise err
            if not dry_run:
                held.enter_context(_run_lock(ctx, lock_wait))
                for step in steps:  # e.g. keys generated while preflight runs
                    step.prepare(ctx)
            ctx.emit(
                StepFinished("connect", "all", "unchanged", time.monotonic() - tc, "connected")
            )
            units = [(s, e) for s in steps for e in s.targets(ctx)]
            total = len(units)
            ctx.emit(Progress(0, total))
            proof = next((s for s in steps if s.fills_verification), None)
            may_start_early = not dry_run and proof is steps[-1]
            if may_start_early and proof is not None and _names_settled(ctx, steps):
                early[0] = _EarlyProof(ctx, proof)  # beside preflight and every check

            def before_change() -> None:
                nonlocal may_start_early
                may_start_early = False
                proof_ahead = early[0]  # hosts of one step call this from their threads
                if proof_ahead is not None:
                    proof_ahead.stop(cancel)
                    early[0] = None  # thrown away: the proof runs after the changes

            for step in steps:
                targets = step.targets(ctx)
                ctx.check_cancel()
                if step is proof and early[0] is not None:
                    if early[0].take(cancel):
                        for ev in early[0].events:
                            ctx.emit(ev)
                        records.extend(early[0].records)
                        ctx.verification = early[0].shadow.verification
                        done += len(targets)
                        ctx.emit(Progress(done, total))
                        continue
                    early[0] = None  # it failed or was stopped: verify now, as always
                if len(targets) > 1 and step.scope in ("all", "clients"):
                    # independent hosts run in parallel
                    with ThreadPoolExecutor(
                        max_workers=min(MAX_PARALLEL_HOSTS, len(targets))
                    ) as pool:
                        futs = {
                            pool.submit(_run_unit, ctx, step, e, records, before_change): e
                            for e in targets
                        }
                        for fut, e in futs.items():
                            current = (step.name, e.label)
                            fut.result()
                else:
                    for e in targets:
                        current = (step.name, e.label)
                        _run_unit(ctx, step, e, records, before_change)
                done += len(targets)
                ctx.emit(Progress(done, total))
                if may_start_early and step.settles_names and proof is not None and not early[0]:
                    early[0] = _EarlyProof(ctx, proof)
            if dry_run or proof is None:
                result.ok = True
            else:
                result.ok = bool(ctx.verification and ctx.verification.ok)
        except Exception as ex:  # noqa: BLE001 - every failure becomes one clear message
            result.failure = _failure(current, ex)
            ctx.emit(result.failure)
        finally:
            if early[0] is not None:
                early[0].stop(cancel)  # before the connections it uses close
            held.close()  # the lock goes before the connections it rides on
            close_all(ctx.hosts)
    result.verification = ctx.verification
    result.seconds = time.monotonic() - t0
    ctx.emit(RunFinished(result))
    return result


def _names_settled(ctx: Ctx, steps: Sequence[Step]) -> bool:
    """Whether the step that settles name resolution would change nothing on any host,
    asked before the steps run, when only read-only steps come before it (preflight): then
    the early proof need not wait for them. Asked on a silent copy of the context: the
    step itself reads afresh when its turn comes (an edit in between is a change, which
    stops the early proof), and a host that cannot tell just means no early start."""
    from regwizard.steps.base import Unchanged

    settler = next((s for s in steps if s.settles_names), None)
    if settler is None or not all(s.reads_only for s in steps[: steps.index(settler)]):
        return False
    quiet = ctx.fork(emit=lambda ev: None)
    targets = settler.targets(quiet)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_HOSTS, len(targets)))) as pool:
            outcomes = list(pool.map(lambda e: settler.check(quiet, e), targets))
    except Exception:  # noqa: BLE001 - the step itself reads again and reports it
        return False
    return all(isinstance(o, Unchanged) for o in outcomes)


def _run_lock(ctx: Ctx, wait: float):  # noqa: ANN202
    """The primary registry host's run lock, held for the whole run (it frees itself if
    we die). Replicas take none: every run that changes a replica holds this one first."""
    e = ctx.registry

    def waiting(holder: str) -> None:
        ctx.emit(Notice("connect", e.label, f"another run holds {e.label}: {holder}; waiting"))

    return e.host.run_lock("registry", wait=wait, on_wait=waiting, cancel=ctx.cancel)


def _failure(current: tuple[str, str], ex: BaseException) -> StepFailed:
    step, host = current
    if isinstance(ex, RegwizardError):
        return StepFailed(step, host, ex.cause, ex.fix, ex.evidence)
    text = clean(str(ex) or type(ex).__name__)
    hint = explain(text)
    if hint:
        return StepFailed(step, host, hint[0], hint[1], text)
    return StepFailed(
        step,
        host,
        f"{type(ex).__name__}: {text}",
        "rerun; completed steps are kept. If it persists, report it with this message",
        text,
    )


def probe(conn: Connection, secrets: Secrets, storage: str, cancel: threading.Event) -> HostFacts:
    """Connect to one host and read what "Test connection" shows."""
    from regwizard import hosts

    if cancel.is_set():
        raise Cancelled()
    with hosts.connect(conn, secrets, cancel=cancel, timeout=CONNECT_TIMEOUT) as host:
        facts = host.facts()
        try:
            facts.free_bytes = host.free_bytes(storage)
        except RegwizardError:
            facts.free_bytes = None
        return facts


def shell_commands(plan: Plan) -> list[str]:
    """The tutorial-style shell equivalent of the plan (no secrets), built from the very
    commands each step shows for a change, so the two never drift apart."""
    from regwizard.steps import STEPS
    from regwizard.steps.base import Ctx, host_entries

    ctx = Ctx(plan, Secrets(), lambda e: None, threading.Event(), hosts=host_entries(plan))
    out: list[str] = []
    where = ""
    for step in STEPS:
        script = getattr(step, "script", None)
        if script is None:
            continue
        targets = step.targets(ctx)
        if not targets:
            continue
        if step.scope == "registry" and len(targets) > 1:
            head = "# on each registry host (" + ", ".join(e.label for e in targets) + ")"
        elif step.scope == "registry":
            head = f"# on the registry host ({targets[0].label})"
        elif step.scope == "verify":
            head = "# from the first client"
        else:
            head = "# on every host (" + ", ".join(e.label for e in targets) + ")"
        if head != where:
            out.append(head)
            where = head
        out.extend(script(ctx))
    return out
