"""What every step shares: the run context, the hosts, and the typed result of a check.

A step is one small unit (kubeadm's phases):

- ``check(ctx, e)`` reads facts and changes nothing. It returns ``Unchanged(detail)`` or
  a typed ``Change`` (each step has its own subclass holding what apply needs);
- ``apply(ctx, e, change)`` changes only what the change names, and returns one line;
- ``verify(ctx, e)`` confirms: by default it reads again and expects ``Unchanged``.

Steps declare what they are instead of the engine comparing names: ``reads_only`` (its
"change" is waiting or proving, never a change of the host), ``needs_registry`` (it
talks to a running registry, so a dry run skips it) and ``fills_verification`` (the
run is ok only when the verification it fills holds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

from regwizard import sshconfig
from regwizard.diagnose import explain
from regwizard.errors import Cancelled, RegwizardError
from regwizard.events import Event, FileDiff, LogLine, Verification
from regwizard.layout import Layout, layout
from regwizard.plan import Connection, Plan, Secrets, conn_key

DOCKER_TIMEOUT = 60
CONNECT_TIMEOUT = 10.0
MAX_PARALLEL_HOSTS = 16  # hosts worked on at once (a registry host and 15 clients)
Scope = Literal["registry", "clients", "all", "verify"]


class StepError(RegwizardError):
    pass


def explained(
    what: str,
    text: str,
    *,
    fix: str = "see the evidence",
    shown: str | None = None,
    evidence: str | None = None,
) -> StepError:
    """A StepError for an error Docker reported: the known cause and fix when
    ``diagnose`` recognises the text, else the text itself with ``fix``."""
    hint = explain(text)
    return StepError(
        f"{what}: {hint[0] if hint else (text if shown is None else shown)}",
        hint[1] if hint else fix,
        text if evidence is None else evidence,
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Unchanged:
    detail: str
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """What apply will do, in words and as the equivalent shell commands (no secrets).

    ``diffs``: the files it would write, before and after, made from what check already
    read, cleaned of secrets (regwizard/diffs.py); keyword-only, so every subclass keeps
    its positional fields."""

    detail: str
    commands: tuple[str, ...] = ()
    diffs: tuple[FileDiff, ...] = field(default=(), kw_only=True)


Outcome = Unchanged | Change
C = TypeVar("C", bound=Change)


# --------------------------------------------------------------------------- hosts


@dataclass
class HostEntry:
    """One machine taking part in the run, with the roles it plays."""

    key: str
    label: str
    conn: Connection
    host: Any = None  # hosts.Host once connected
    is_registry: bool = False  # a registry host: the primary ([host]) or a replica
    is_replica: bool = False  # one of [[replicas]] (is_registry too)
    is_client: bool = False
    facts: Any = None  # events.HostFacts after preflight
    runtimes: tuple[str, ...] = ()  # as a client: the runtimes that must trust the registry

    def uses(self, runtime: str) -> bool:
        return runtime in self.runtimes

    @property
    def needs_docker(self) -> bool:
        """The registry host runs the registry in Docker; Docker clients pull with it."""
        return self.is_registry or self.uses("docker")


def host_entries(plan: Plan) -> list[HostEntry]:
    """The machines of a plan, deduplicated: the registry host (the primary) first, then
    its replicas, then clients (a replica may also be a client: merged like clients)."""
    entries: dict[str, HostEntry] = {}
    reg = HostEntry(conn_key(plan.host), plan.host.name, plan.host, is_registry=True)
    entries[reg.key] = reg
    for c in plan.replicas:
        k = conn_key(c)
        if k not in entries:  # the primary named again as a replica: validation refuses it
            entries[k] = HostEntry(k, c.name, c, is_registry=True, is_replica=True)
    for c in plan.clients:
        k = conn_key(c)
        runtimes = tuple(c.runtimes) if isinstance(c.runtimes, list) else ("docker",)
        if k in entries:
            entries[k].is_client = True
            entries[k].runtimes = runtimes
        else:
            entries[k] = HostEntry(k, c.name, c, is_client=True, runtimes=runtimes)
    seen: dict[str, int] = {}  # labels must be unique for the step table
    for e in entries.values():
        n = seen.get(e.label, 0)
        seen[e.label] = n + 1
        if n:
            e.label = f"{e.label}#{n + 1}"
    return list(entries.values())


def connect_each(
    entries: list[HostEntry],
    secrets: Secrets,
    cancel: threading.Event,
    connect: Callable | None = None,
) -> list[tuple[HostEntry, BaseException | None]]:
    """Connect every host at once; (entry, error or None) in order."""
    if connect is None:
        from regwizard.hosts import connect

    def one(e: HostEntry) -> None:
        e.host = connect(e.conn, secrets, cancel=cancel, timeout=CONNECT_TIMEOUT)

    workers = max(1, min(MAX_PARALLEL_HOSTS, len(entries)))
    with ThreadPoolExecutor(max_workers=workers + 1) as pool:
        futures = [(e, pool.submit(one, e)) for e in entries]
        # the Docker client and YAML, which every run and doctor needs next, load while
        # the SSH handshakes wait on the network (about 0.2 s of a short command's start)
        pool.submit(_preload)
        return [(e, f.exception()) for e, f in futures]


def _preload() -> None:
    import yaml  # noqa: F401

    from regwizard import dockerssh  # noqa: F401


def close_all(entries: list[HostEntry]) -> None:
    for e in entries:
        if e.host is not None:
            try:
                e.host.close()
            except Exception:  # noqa: BLE001 - closing never hides the run's own result
                pass


# --------------------------------------------------------------------------- context


class Network:
    """This machine talking to the registry's port (a seam: offline tests replace it)."""

    def served(self, domain: str, target: str, port: int):  # noqa: ANN201
        from regwizard.facts import tls

        return tls.served(domain, target, port)

    def request(self, domain, target, port, anchor, path, *, auth=None, method="GET", **kw):  # noqa: ANN001, ANN003, ANN201
        from regwizard.facts import tls

        return tls.request(domain, target, port, anchor, path, auth=auth, method=method, **kw)

    def bucket(self, endpoint, bucket, region, access_key, secret_key):  # noqa: ANN001, ANN201
        """An S3 bucket asked from this machine (facts.s3.BucketStatus; signed: the secret
        key never travels)."""
        from regwizard.facts import s3

        return s3.bucket_status(endpoint, bucket, region, access_key, secret_key, timeout=10)


@dataclass
class Ctx:
    plan: Plan
    secrets: Secrets
    emit: Callable[[Event], None]
    cancel: threading.Event
    dry_run: bool = False
    hosts: list[HostEntry] = field(default_factory=list)
    net: Network = field(default_factory=Network)
    verification: Verification | None = None
    # host key -> monotonic time its /etc/hosts was written in this run
    hosts_changed_at: dict[str, float] = field(default_factory=dict)
    # facts read this run: (kind, host key) -> value; a host's entries are forgotten
    # whenever a step changes that host, so a check after a change reads afresh
    _facts: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _facts_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # bumped by forget(): a read that started before a forget is not cached after it
    _facts_epoch: int = field(default=0, repr=False)
    # one lock per fact being read: a second thread asking for it waits for the first
    # reader instead of reading it again (doctor runs checks that share facts at once)
    _reading: dict[tuple[str, str], threading.Lock] = field(default_factory=dict, repr=False)
    # work started ahead of the step that needs it (Step.prepare): a name -> Future
    ahead: dict[str, Future] = field(default_factory=dict, repr=False)
    # verification started before the last checks (engine._EarlyProof): never waits
    early: bool = False

    @property
    def layout(self) -> Layout:
        return layout(self.plan)

    @property
    def registry(self) -> HostEntry:
        """The primary registry host ([host]): its run lock, its certificate and CA, gc."""
        return next(h for h in self.hosts if h.is_registry and not h.is_replica)

    @property
    def registries(self) -> list[HostEntry]:
        """Every registry host, the primary first, then the replicas in plan order."""
        return [h for h in self.hosts if h.is_registry]

    @property
    def clients(self) -> list[HostEntry]:
        return [h for h in self.hosts if h.is_client]

    @property
    def pusher(self) -> HostEntry:
        """Where verification pushes from: the first Docker client, else the registry host."""
        return next((h for h in self.clients if h.uses("docker")), self.registry)

    def target_of(self, e: HostEntry) -> str:
        """The address this machine uses to reach registry host ``e``'s port (TLS is
        verified against the registry's name, not this address)."""
        if not e.is_replica:
            return self.target
        if e.conn.is_local:
            return "127.0.0.1"
        return sshconfig.resolve(e.conn).hostname or e.conn.address

    @property
    def target(self) -> str:
        """The address this machine uses to reach the primary registry host's port."""
        reg = self.plan.registry
        if reg.ip:
            return reg.ip
        host = self.plan.host
        if host.is_local:
            return "127.0.0.1"
        # an ~/.ssh/config alias is no network name: its HostName is
        return sshconfig.resolve(host).hostname or reg.domain

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def log(self, step: str, entry: HostEntry, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.emit(LogLine(step, entry.label, line))

    def fact(self, kind: str, e: HostEntry | None, read: Callable[[], Any]) -> Any:
        key = (kind, e.key if e is not None else "")
        with self._facts_lock:
            if key in self._facts:
                return self._facts[key]
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:  # a read that raises caches nothing: the next waiter reads itself
            with self._facts_lock:
                if key in self._facts:
                    return self._facts[key]
                epoch = self._facts_epoch
            value = read()
            with self._facts_lock:
                if epoch == self._facts_epoch:
                    self._facts[key] = value
        return value

    def fork(self, **changes: Any) -> Ctx:
        """The same plan, secrets, hosts and network, with ``changes`` and this run's
        state afresh: no facts read, no verification, no writes recorded, no ahead work
        (engine._EarlyProof works on one beside this context)."""
        import dataclasses

        fresh = {
            "verification": None,
            "hosts_changed_at": {},
            "_facts": {},
            "_facts_lock": threading.Lock(),
            "_facts_epoch": 0,
            "_reading": {},
            "ahead": {},
        }
        return dataclasses.replace(self, **{**fresh, **changes})

    def forget(self, e: HostEntry | None = None) -> None:
        """Forget what was read of ``e`` (and everything read from this machine)."""
        with self._facts_lock:
            self._facts_epoch += 1
            for key in [k for k in self._facts if e is None or k[1] in (e.key, "")]:
                del self._facts[key]

    def start_ahead(self, name: str, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on a thread of its own now; ``take_ahead(name)`` waits for it."""
        fut: Future = Future()

        def work() -> None:
            try:
                fut.set_result(fn())
            except BaseException as ex:  # noqa: BLE001 - handed to whoever takes it
                fut.set_exception(ex)

        self.ahead[name] = fut
        threading.Thread(target=work, name=f"ahead-{name}", daemon=True).start()

    def take_ahead(self, name: str) -> Any:
        """The result of work started ahead under ``name`` (None: none was started, or it
        failed: the caller then does the work itself)."""
        fut = self.ahead.pop(name, None)
        if fut is None:
            return None
        try:
            return fut.result()
        except Exception:  # noqa: BLE001 - ahead work is an optimisation only
            return None


# --------------------------------------------------------------------------- steps


class Step(Generic[C]):
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    scope: ClassVar[Scope] = "registry"
    reads_only: ClassVar[bool] = False  # its work never changes a host (waiting, proving)
    needs_registry: ClassVar[bool] = False  # talks to a running registry: skipped in dry runs
    fills_verification: ClassVar[bool] = False  # sets ctx.verification: the run's ok needs it
    settles_names: ClassVar[bool] = False  # after it, the registry's name resolves as planned

    runtime: ClassVar[str] = ""  # scope "clients": only the clients that use this runtime

    def targets(self, ctx: Ctx) -> list[HostEntry]:
        if self.scope == "registry":
            return ctx.registries
        if self.scope == "clients":
            return [e for e in ctx.clients if not self.runtime or e.uses(self.runtime)]
        if self.scope == "verify":
            return [ctx.pusher]
        return list(ctx.hosts)

    def prepare(self, ctx: Ctx) -> None:
        """Called once right after connecting, before any step runs: may start CPU-bound
        work this step will likely need with ``ctx.start_ahead`` (it reads, never changes)."""

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | C:
        raise NotImplementedError

    def apply(self, ctx: Ctx, e: HostEntry, change: C) -> str:
        raise NotImplementedError

    def verify(self, ctx: Ctx, e: HostEntry) -> None:
        again = self.check(ctx, e)
        if isinstance(again, Change):
            raise StepError(
                f"{self.title} on {e.label}: still not as planned after the change "
                f"({again.detail})",
                "rerun; if it persists, check the host by hand",
            )


def backup(ctx: Ctx, e: HostEntry, path: str, step: str, *, into: str | None = None) -> str | None:
    """Copy ``path`` aside before it is replaced: next to it, or into ``into`` (root only).

    Returns the copy's path (None: there was nothing to copy)."""
    b = e.host.backup(path) if into is None else backup_into(e.host, path, into)
    if b:
        ctx.log(step, e, f"backed up {path} -> {b}")
    return b


def backup_into(host, path: str, directory: str) -> str | None:  # noqa: ANN001
    """Copy ``path`` (file or directory) into ``directory`` (made 0700) under a dated name."""
    return _stash(host, path, directory, "cp -a")


def move_into(host, path: str, directory: str) -> str | None:  # noqa: ANN001
    """Move ``path`` into ``directory`` (0700) under a dated name: kept, out of the way."""
    return _stash(host, path, directory, "mv")


def _stash(host, path: str, directory: str, op: str) -> str | None:  # noqa: ANN001
    import time

    script = (
        '[ -e "$1" ] || [ -L "$1" ] || exit 100\n'
        'mkdir -p -m 700 -- "$2" && chmod 700 -- "$2" || exit 1\n'
        'b="$2/$(basename -- "$1").$3"; n=1\n'
        'while [ -e "$b" ]; do b="$2/$(basename -- "$1").$3.$n"; n=$((n+1)); done\n'
        f'{op} -- "$1" "$b" && printf %s "$b"\n'
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    r = host.run(["sh", "-c", script, "sh", path, directory, stamp], check=False, timeout=120)
    if r.rc == 100:
        return None
    if r.rc != 0:
        raise StepError(
            f"cannot put {path} aside into {directory}: "
            f"{r.stderr.decode(errors='replace').strip()[-200:]}",
            "check free space and permissions on the registry host, then rerun",
        )
    return r.stdout.decode(errors="replace")


def served(ctx: Ctx, e: HostEntry | None = None):  # noqa: ANN201
    """What registry host ``e``'s port (default: the primary's) serves now
    (facts.tls.Served), read once until ``e`` is forgotten."""
    reg, e = ctx.plan.registry, e or ctx.registry
    return ctx.fact("served", e, lambda: ctx.net.served(reg.domain, ctx.target_of(e), reg.port))
