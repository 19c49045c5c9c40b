"""Doctor: check a registry setup against its plan, read-only, and name every problem.

``diagnose(plan, secrets, *, emit=None, cancel=None) -> DoctorReport`` validates the plan,
connects to its hosts and reads their facts (``regwizard.facts``, through the same cached
readers the steps use), then interprets them with ``regwizard.problems``: every problem
is defined there once. Each :class:`Finding` carries the check, the host, a severity
(``ok``/``warn``/``fail``, or ``skip`` for a check that was not safe to run), a message,
the evidence (what a Docker user sees) and the fix. Last, each step's read-only
``check`` says what ``regwizard apply`` would change.

Credentials are only ever sent over a connection verified against the plan's trust
anchor: when the server at the registry's address does not prove it is the registry,
that is the finding, and the login is not tried.

Checks that do not read each other's results run at once (``_graph``); ``emit`` gets
findings as they finish, ``report.findings`` is in the sequential order whatever finished
first.

Exit codes: 0 healthy, 1 findings, 2 could not check.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

from regwizard import problems
from regwizard.diagnose import clean
from regwizard.errors import Cancelled, RegwizardError
from regwizard.events import Event
from regwizard.plan import Plan, Secrets, validate_plan

CHECKS = (
    "connect",
    "docker",
    "container",
    "restart",
    "tls",
    "port",
    "certificate",
    "auth",
    "login",
    "htpasswd",
    "storage",
    "mirror",
    "maintenance",
    "replicas",
    "bucket",
    "hosts-file",
    "trust",
    "containerd",
    "podman",
    "plan",
)


@dataclass(frozen=True)
class Finding(Event):
    check: str  # one of CHECKS
    host: str  # host label
    severity: str  # ok | warn | fail | skip
    message: str
    evidence: str = ""  # what the user sees: Docker's error text, log lines, file lines
    fix: str = ""
    id: str = ""  # the known problem's id (problems.CATALOGUE), "" for ok findings


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    incomplete: list[str] = field(default_factory=list)  # what could not be checked, and why

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity in ("warn", "fail")]

    @property
    def healthy(self) -> bool:
        return not self.problems and not self.incomplete

    @property
    def exit_code(self) -> int:
        if self.incomplete:
            return 2
        return 1 if self.problems else 0

    def of(self, check: str, host: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.check == check and host in (None, f.host)]

    def to_json(self) -> dict:
        return {
            "exit": self.exit_code,
            "healthy": self.healthy,
            "seconds": round(self.seconds, 3),
            "problems": len(self.problems),
            "incomplete": list(self.incomplete),
            "findings": [asdict(f) for f in self.findings],
        }


NO_S3_SECRET_HINT = "pass --s3-secret-file FILE or set REGWIZARD_S3_SECRET_KEY"


# Checks run at once, bounded: the work is mostly waiting on SSH and the registry's port.
WORKERS = 8
# SSH checks at once on one host. (The connection dropped with 4, about one lab run in a
# hundred: paramiko's EOF race, fixed in hosts._send_eof.) 2 and 4 measure no faster on
# the lab once login is off the host's slot: the checks are CPU-bound here, not waiting.
PER_HOST = 1


def _always() -> bool:
    return True


@dataclass
class _Node:
    """One check of the run: ``fn`` runs (guarded) when its ``after`` nodes are done and
    ``when()`` then holds. Its index is its place in the sequential order of the report."""

    check: str
    entry: object  # steps.base.HostEntry: its label names the check; its host is bounded
    fn: Callable[[], None]
    after: tuple[int, ...] = ()
    when: Callable[[], bool] = _always
    # False: the check talks to the registry's port from this machine (its SSH use, if
    # any, is one cached read), so it does not take the host's PER_HOST slot
    on_host: bool = True


def _first(pair: tuple) -> object:
    return pair[0]


def _short_logs(container, n: int = 8) -> str:  # noqa: ANN001
    try:
        text = container.logs(tail=n).decode(errors="replace")
    except Exception:  # noqa: BLE001
        return ""
    return clean(text, 1200)


class _Doctor:
    def __init__(self, plan: Plan, secrets: Secrets, emit, cancel, connect, net) -> None:  # noqa: ANN001
        from regwizard.steps.base import Ctx, Network, host_entries

        self.plan = plan
        self.secrets = secrets
        self.emit = emit
        self.cancel = cancel
        self.connect = connect
        self.ctx = Ctx(
            plan, secrets, lambda e: None, cancel, dry_run=True, hosts=host_entries(plan)
        )
        self.ctx.net = net or Network()
        self.report = DoctorReport()
        self.lock = threading.Lock()
        self.docker_ok: dict[str, bool] = {}
        self.facts = None  # the registry container's facts
        self.replica_facts: dict = {}  # replica label -> its registry container's facts
        self.container = None
        self.served = None  # facts.tls.Served
        self.verified = False  # the served certificate verifies against the trust anchor
        # what the port served and the anonymous verified request gave, read before the
        # container facts are known (see _probe); _tls interprets them
        self._probed: tuple | None = None  # (Served | None, error | None)
        self._verify_probe: tuple | None = None  # (anchor, error | None)
        self._drifted = False
        # the report's order: each finding's (node index, sequence), whatever thread
        # finished first; index -1 is the main thread (validate, connect)
        self._slot = threading.local()
        self._seq = 0
        self._order: list[tuple[int, int]] = []
        self._inc_order: list[tuple[int, int]] = []

    # -- recording

    def add(self, check, host, severity, message, evidence="", fix="", id=""):  # noqa: ANN001, ANN201, A002
        f = Finding(check, host, severity, message, clean(evidence, 1500), fix, id)
        with self.lock:
            self._seq += 1
            self._order.append((getattr(self._slot, "index", -1), self._seq))
            self.report.findings.append(f)
            self.emit(f)
        return f

    def problem(self, host: str, p: problems.Problem) -> None:
        self.add(p.check, host, p.severity, p.message, p.evidence, p.fix, p.id)

    def ok(self, check: str, host: str, message: str) -> None:
        self.add(check, host, "ok", message)

    def incomplete(self, check: str, host: str, why: str, evidence="", fix="") -> None:  # noqa: ANN001
        self.add(check, host, "fail", f"cannot check: {why}", evidence, fix)
        with self.lock:
            self._seq += 1
            self._inc_order.append((getattr(self._slot, "index", -1), self._seq))
            self.report.incomplete.append(f"{check}@{host}: {why}")

    def _in_order(self) -> None:
        """Findings and incomplete in the sequential order (node by node), not the order
        the threads finished in: the text and --json output stay the same run to run."""
        with self.lock:
            r = self.report
            pairs = sorted(zip(self._order, r.findings, strict=True), key=_first)
            self._order, r.findings = [k for k, _ in pairs], [f for _, f in pairs]
            pairs = sorted(zip(self._inc_order, r.incomplete, strict=True), key=_first)
            self._inc_order, r.incomplete = [k for k, _ in pairs], [x for _, x in pairs]

    def guarded(self, check: str, host: str, fn: Callable[[], None]) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        try:
            fn()
        except Cancelled:
            raise
        except RegwizardError as e:
            self.incomplete(check, host, e.cause, e.evidence, e.fix)
        except Exception as e:  # noqa: BLE001 - a check that breaks is reported, not fatal
            self.incomplete(check, host, f"{type(e).__name__}: {clean(str(e), 300)}")

    # -- run

    def run(self) -> DoctorReport:
        from regwizard.steps.base import close_all

        t0 = time.monotonic()
        try:
            errors = validate_plan(self.plan)
            if errors:
                self.incomplete(
                    "plan",
                    "plan",
                    f"the plan is invalid: {'; '.join(e.cause for e in errors[:3])}",
                    fix=errors[0].fix or "edit the plan",
                )
                return self.report
            self._connect()
            self._run_nodes(self._graph())
        finally:
            close_all(self.ctx.hosts)
            self._in_order()
            self.report.seconds = time.monotonic() - t0
        return self.report

    def _graph(self) -> list[_Node]:
        """Every check as a node, in the sequential order of the report, each after only
        what it reads: a host's Docker engine, the registry container's facts, what the
        port serves (tls). Facts two checks share are read once (``Ctx.fact``)."""
        nodes: list[_Node] = []

        def node(check, entry, fn, after=(), when=_always, on_host=True) -> int:  # noqa: ANN001
            nodes.append(_Node(check, entry, fn, tuple(after), when, on_host))
            return len(nodes) - 1

        reg = self.ctx.registry
        up = reg.host is not None
        docker = {
            e.label: node("docker", e, lambda e=e: self._docker(e))
            for e in self.ctx.hosts
            if e.host is not None and e.needs_docker
        }

        def on_docker(e) -> tuple[int, ...]:  # noqa: ANN001
            return (docker[e.label],) if e.label in docker else ()

        def docker_ok(e) -> Callable[[], bool]:  # noqa: ANN001
            return lambda: e.host is not None and bool(self.docker_ok.get(e.label))

        # the network reads, at once with docker: tls interprets them with the facts
        probe = node("tls", reg, self._probe, on_host=False)
        container = node("container", reg, self._container, on_docker(reg), docker_ok(reg))
        tls = node("tls", reg, self._tls, (container, probe))
        node("port", reg, self._port, (container, tls), lambda: self.facts is not None)
        node(
            "port", reg, lambda: self._port_free(report_ok=True), (container, tls),
            lambda: self.facts is None and docker_ok(reg)(),
        )  # fmt: skip
        node("certificate", reg, self._certificate, (container, tls), lambda: up)
        node(
            "auth", reg, self._auth, (container, tls),
            lambda: self.facts is not None or bool(self.served and self.served.tls),
        )  # fmt: skip
        if self.secrets.verify_password and self.plan.verify_user:
            node("login", reg, self._login, (tls,), on_host=False)
        has_facts = lambda: self.facts is not None  # noqa: E731
        node("htpasswd", reg, self._htpasswd, (container,), has_facts)
        node("storage", reg, self._storage, (container,), has_facts)
        if up:
            node("maintenance", reg, self._maintenance)
        replicas = [
            node("container", r, lambda r=r: self._replica(r), on_docker(r), docker_ok(r))
            for r in self.ctx.registries[1:]
        ]
        if len(self.ctx.registries) > 1:
            node("replicas", reg, self._replicas, (container, *replicas))
        if self.plan.storage.is_s3 and up:
            node("bucket", reg, self._bucket)
        for e in self.ctx.hosts:  # each host's checks, one host after the other
            if e.host is None:
                continue
            node("hosts-file", e, lambda e=e: self._hosts_file(e))
            if e.needs_docker:
                node("trust", e, lambda e=e: self._trust(e), (probe,))
            if e.uses("containerd"):
                node("containerd", e, lambda e=e: self._containerd(e))
            if e.uses("podman"):
                node("podman", e, lambda e=e: self._podman(e))
        units = [
            node("plan", h, lambda step=step, h=h: self._drift_unit(step, h), after, when)
            for step, h, after, when in self._drift_units(on_docker, docker_ok)
        ]
        node("plan", reg, self._drift_done, units, lambda: up)
        return nodes

    def _run_nodes(self, nodes: list[_Node]) -> None:
        """Run each node once its ``after`` nodes are done: at most WORKERS at once and
        PER_HOST on one host, the earliest in the report first. Cancelled stops new ones
        from starting; the running ones end at their next guarded check."""
        done: set[int] = set()
        waiting = list(range(len(nodes)))
        running: dict[Future, int] = {}
        busy: Counter = Counter()
        cancelled: BaseException | None = None

        def host_of(n: _Node):  # noqa: ANN202 - whose SSH connection the node uses
            h = getattr(n.entry, "host", None)
            return None if h is None or not n.on_host else id(h)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            while True:
                for i in [] if cancelled else list(waiting):
                    n = nodes[i]
                    h = host_of(n)
                    if len(running) >= WORKERS:
                        break
                    if all(d in done for d in n.after) and (h is None or busy[h] < PER_HOST):
                        waiting.remove(i)
                        busy[h] += 1
                        running[pool.submit(self._node, i, n)] = i
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = running.pop(fut)
                    busy[host_of(nodes[i])] -= 1
                    done.add(i)
                    err = fut.exception()
                    if isinstance(err, Cancelled):
                        cancelled = err
                    elif err is not None:  # _node reports every check's error: a bug here
                        raise err
        if cancelled is not None:
            raise cancelled
        if waiting:  # an ``after`` that names a later node: never started
            raise AssertionError(f"doctor nodes never ran: {[nodes[i].check for i in waiting]}")

    def _node(self, index: int, n: _Node) -> None:
        self._slot.index = index
        try:
            if self.cancel.is_set():
                raise Cancelled()
            if n.when():
                self.guarded(n.check, n.entry.label, n.fn)
        finally:
            self._slot.index = -1

    # -- connect / docker

    def _connect(self) -> None:
        from regwizard.steps.base import connect_each

        for e, err in connect_each(self.ctx.hosts, self.secrets, self.cancel, self.connect):
            if isinstance(err, Cancelled):
                raise err
            if err is None:
                who = "local" if e.conn.is_local else f"{e.conn.user}@{e.conn.address}"
                self.ok("connect", e.label, f"connected ({who})")
            elif isinstance(err, RegwizardError):
                self.incomplete("connect", e.label, err.cause, err.evidence, err.fix)
            else:
                self.incomplete("connect", e.label, f"{type(err).__name__}: {clean(str(err), 300)}")

    def _docker(self, e) -> None:  # noqa: ANN001
        from regwizard.steps.base import DOCKER_TIMEOUT

        try:
            # the timeout the container's facts are read with: one Docker client (and on
            # a remote host one SSH tunnel) serves both checks
            version = e.host.docker(DOCKER_TIMEOUT).version()
        except Cancelled:
            raise
        except RegwizardError as err:
            self.docker_ok[e.label] = False
            self.add(
                "docker", e.label, "fail", f"the Docker engine is unreachable: {err.cause}",
                err.evidence or err.cause, err.fix, "docker-unreachable",
            )  # fmt: skip
            return
        self.docker_ok[e.label] = True
        self.ok("docker", e.label, f"Docker {version.get('Version', '?')}")

    # -- the registry host

    def _container(self) -> None:
        from regwizard.facts.registry import describe, looks_like_registry
        from regwizard.steps.container import registry_facts

        e = self.ctx.registry
        reg = self.plan.registry
        facts, c = registry_facts(self.ctx, e)
        if facts is None:
            others = [
                describe(o.attrs)
                for o in e.host.docker(60).containers.list(all=True)
                if looks_like_registry(o.attrs)
            ]
            self.problem(
                e.label,
                problems.CONTAINER_MISSING(
                    name=reg.container,
                    others=("registry containers on this host: " + "; ".join(others))
                    if others
                    else "",
                    adopt_hint="; or adopt the existing one: regwizard adopt ... --container NAME"
                    if others
                    else "",
                ),
            )
            return
        self.facts, self.container = facts, c
        looping = facts.crash_looping()
        logs = _short_logs(c, 8 if looping else 5) if looping or not facts.running else ""
        found = problems.container(facts, logs)
        for p in found:
            self.problem(e.label, p)
        ids = {p.id for p in found}
        if not ids & {"container-crash-loop", "container-stopped"}:
            self.ok(
                "container", e.label,
                f"{facts.name} running ({facts.image}) since {facts.started_at[:19]}",
            )  # fmt: skip
        if "restart-policy" not in ids:
            self.ok("restart", e.label, "restart policy always")

    def _replica(self, e) -> None:  # noqa: ANN001
        """A replica: its container (the primary's checks, labelled by this host) and its
        port, through its own address, verified against the registry's name."""
        from regwizard.facts.tls import Untrusted
        from regwizard.steps.container import registry_facts

        reg = self.plan.registry
        facts, c = registry_facts(self.ctx, e)
        if facts is None:
            self.problem(e.label, problems.CONTAINER_MISSING(
                name=reg.container, others="", adopt_hint="",
            ))  # fmt: skip
            return
        self.replica_facts[e.label] = facts
        looping = facts.crash_looping()
        logs = _short_logs(c, 8 if looping else 5) if looping or not facts.running else ""
        found = problems.container(facts, logs)
        for p in found:
            self.problem(e.label, p)
        if not found:
            self.ok("container", e.label, f"{facts.name} running ({facts.image})")
        from regwizard.steps.base import served

        where = f"{self.ctx.target_of(e)}:{reg.port}"
        now = served(self.ctx, e)
        port = problems.port(facts, reg.port, now, where)
        for p in port:
            self.problem(e.label, p)
        anchor = self._anchor()
        if port or not anchor or not now.tls:
            return
        try:
            status, _, _ = self.ctx.net.request(
                reg.domain, self.ctx.target_of(e), reg.port, anchor, "/v2/"
            )
        except Untrusted as ex:
            self.problem(e.label, problems.UNTRUSTED_SERVER(
                where=where, address=reg.address, anchor="the primary's trust anchor",
                evidence=ex.reason,
            ))  # fmt: skip
            return
        except OSError as ex:
            self.incomplete("tls", e.label, f"{where}: {clean(str(ex), 200)}")
            return
        self.ok("tls", e.label, f"{where} answers GET /v2/ with {status}, verified")

    def _replicas(self) -> None:
        """Every registry host: one http secret (compared by hash) and one storage."""
        from regwizard.steps.config import stored_config

        primary = self.ctx.registry.label
        secrets: dict[str, str] = {}
        storages: dict[str, tuple[str, str, str, str]] = {}
        every = {primary: self.facts, **self.replica_facts}
        for r in self.ctx.registries:
            if r.host is None:
                continue
            secrets[r.label] = stored_config(self.ctx, r).secret
            f = every.get(r.label)
            if f is not None:
                storages[r.label] = problems.storage_identity(f.storage)
        found = problems.replicas(secrets, storages, primary)
        found += self._catalogs()
        for host, p in found:
            self.problem(host, p)
        if not found:
            self.ok("replicas", primary, f"{len(secrets)} registry hosts: one http secret, "
                    "one storage, the same repositories through each")  # fmt: skip

    def _catalogs(self) -> list[tuple[str, problems.Problem]]:
        """Each registry host reads the storage itself: the verify user's catalog through
        every host's own address (only to a server verified against the anchor), and all
        must list the same repositories. Skipped without the verify password."""
        import json as _json

        from regwizard.facts.tls import Untrusted

        reg, user, pw = self.plan.registry, self.plan.verify_user, self.secrets.verify_password
        anchor = self._anchor()
        if not (user and pw and anchor):
            return []
        lists: dict[str, list[str]] = {}
        out: list[tuple[str, problems.Problem]] = []
        for r in self.ctx.registries:
            where = f"{self.ctx.target_of(r)}:{reg.port}"
            try:
                status, _, body = self.ctx.net.request(
                    reg.domain, self.ctx.target_of(r), reg.port, anchor,
                    "/v2/_catalog?n=1000", auth=(user, pw),
                )  # fmt: skip
            except (Untrusted, ConnectionError):
                continue  # the host's own tls or port finding says why; nothing was sent
            except OSError as ex:  # connected, then no answer in time: the storage hangs
                status, body = 0, str(ex).encode()
            if status != 200:
                what = f"HTTP {status}" if status else "no answer"
                out.append((r.label, problems.REPLICA_STORAGE_UNREADABLE(
                    host=r.label, where=where, what=what, endpoint=self.plan.storage.endpoint,
                    container=reg.container, evidence=clean(body.decode(errors="replace"), 300),
                )))  # fmt: skip
                continue
            try:
                lists[r.label] = sorted(_json.loads(body).get("repositories") or [])
            except (ValueError, AttributeError):
                lists[r.label] = []
        primary = self.ctx.registry.label
        mine = lists.get(primary)
        for host, theirs in lists.items():
            if host != primary and mine is not None and theirs != mine:
                out.append((host, problems.REPLICA_CATALOG_DIFFERS(
                    host=host, primary=primary, mine=f"{len(theirs)} repositories",
                    theirs=f"{len(mine)}",
                    evidence=f"only on {host}: {sorted(set(theirs) - set(mine))[:5]}; only on "
                    f"{primary}: {sorted(set(mine) - set(theirs))[:5]}",
                )))  # fmt: skip
        return out

    def _bucket(self) -> None:
        """The plan's bucket, asked from this machine with a signed request (the secret
        key never travels): the given key, else the one the primary's config.yml holds."""
        from regwizard.steps.config import stored_config, stored_s3_secret

        e, st = self.ctx.registry, self.plan.storage
        secret = self.secrets.s3_secret_key or stored_s3_secret(
            self.ctx, stored_config(self.ctx, e).parsed
        )
        if not secret:
            self.add("bucket", e.label, "skip", f"bucket {st.bucket} not checked: no secret "
                     "key given and none stored", "", NO_S3_SECRET_HINT)  # fmt: skip
            return
        status = self.ctx.net.bucket(st.endpoint, st.bucket, st.region, st.access_key, secret)
        if status.kind == "unreachable":  # maybe only from here: the hosts' reads decide
            self.add("bucket", e.label, "skip", f"{st.endpoint} does not answer this machine; "
                     "each registry host's own reads are checked under replicas and storage",
                     status.evidence)  # fmt: skip
            return
        found = problems.bucket(status, st.access_key)
        for p in found:
            self.problem(e.label, p)
        if not found:
            self.ok("bucket", e.label, f"bucket {st.bucket} at {st.endpoint} answers "
                    f"access key {st.access_key}")  # fmt: skip

    def _anchor(self) -> bytes:
        """The plan's trust anchor ("" when the registry host or its files cannot tell)."""
        from regwizard.steps.trust import anchor

        if self.ctx.registry.host is None:
            return b""
        try:
            return anchor(self.ctx)
        except RegwizardError:
            return b""

    def _served(self):  # noqa: ANN202
        from regwizard.steps.base import served

        return served(self.ctx)

    def _probe(self) -> None:
        """tls's reads, made before the container facts are known: what the port serves,
        then the anonymous request verified against the anchor (no credential: login
        still waits for tls to say the server is the registry). Finds nothing itself."""
        try:
            served = self._served()
        except Cancelled:
            raise
        except Exception as ex:  # noqa: BLE001 - tls reports it, as if it had read it
            self._probed = (None, ex)
            return
        self._probed = (served, None)
        self.served = served  # trust reads it; tls sets the same value again
        try:
            trust = self._anchor() if served.tls else b""
        except Exception:  # noqa: BLE001 - tls reads it again and reports it, once
            return
        if not trust:
            return
        reg = self.plan.registry
        try:
            self.ctx.net.request(reg.domain, self.ctx.target, reg.port, trust, "/v2/")
        except Exception as ex:  # noqa: BLE001 - kept for tls: Untrusted, OSError, a bug
            self._verify_probe = (trust, ex)
            return
        self._verify_probe = (trust, None)

    def _served_once(self):  # noqa: ANN202
        """What _probe read (its error raised again), else read now."""
        if self._probed is None:
            return self._served()
        served, err = self._probed
        if err is not None:
            raise err
        return served

    def _verify(self, trust: bytes) -> None:
        """The anonymous request verified against ``trust``: _probe's outcome when it
        used the same anchor, else made now. Raises as facts.tls.request does."""
        if self._verify_probe is not None and self._verify_probe[0] == trust:
            if self._verify_probe[1] is not None:
                raise self._verify_probe[1]
            return
        reg = self.plan.registry
        self.ctx.net.request(reg.domain, self.ctx.target, reg.port, trust, "/v2/")

    def _tls(self) -> None:
        from regwizard.facts.tls import Untrusted

        e = self.ctx.registry
        reg = self.plan.registry
        self.served = served = self._served_once()
        found = problems.tls(self.facts, served)
        for p in found:
            self.problem(e.label, p)
        if found or not served.tls:
            if not found and self.facts is not None:
                self.ok(
                    "tls", e.label,
                    "TLS is configured; nothing answers yet (see port)",
                )  # fmt: skip
            return
        trust = self._anchor()
        where = f"{self.ctx.target}:{reg.port}"
        if not trust:
            self.ok("tls", e.label, f"TLS answers on {where} (no trust anchor on disk yet)")
            return
        try:
            self._verify(trust)
        except Untrusted as ex:
            from regwizard import pki

            try:
                anchor_words = pki.inspect_cert(trust).common_name or "the plan's certificate"
            except RegwizardError:
                anchor_words = "the plan's certificate"
            self.problem(
                e.label,
                problems.UNTRUSTED_SERVER(
                    where=where, address=reg.address, anchor=anchor_words, evidence=ex.reason
                ),
            )
            return
        except OSError:
            pass  # the port check says why it does not answer
        self.verified = True
        self.ok("tls", e.label, f"TLS answers on {where} and verifies as {reg.domain}")

    def _port(self) -> None:
        e = self.ctx.registry
        reg = self.plan.registry
        served = self.served
        found = problems.port(self.facts, reg.port, served, f"{self.ctx.target}:{reg.port}")
        for p in found:
            self.problem(e.label, p)
        if not found:
            f = self.facts
            if f.host_network:
                self.ok(
                    "port", e.label, f"host networking, the registry listens on {f.listen_port}"
                )
            else:
                mapping = ", ".join(
                    f"-p {hp}:{cp}" for cp, hps in sorted(f.published.items()) for hp in hps
                )
                self.ok("port", e.label, f"{mapping}, the registry listens on {f.listen_port}")
        self._port_free(report_ok=False)

    def _port_free(self, report_ok: bool) -> None:
        from regwizard.facts.registry import published_ports

        e = self.ctx.registry
        reg = self.plan.registry
        holders = [
            c.name
            for c in e.host.docker(60).containers.list()
            if c.name != reg.container
            and reg.port in {p for ps in published_ports(c.attrs).values() for p in ps}
        ]
        for p in problems.port_taken(reg.port, holders):
            self.problem(e.label, p)
        if not holders and report_ok:
            self.ok("port", e.label, f"port {reg.port} is free for {reg.container}")

    def _certificate(self) -> None:
        from regwizard import pki
        from regwizard.facts.read import container_reader
        from regwizard.steps.certificate import tls_files

        e = self.ctx.registry
        lay = self.ctx.layout
        served = self.served
        files = tls_files(self.ctx)
        pem, what, source = (served.pem if served else b""), "the served certificate", "served"
        if not pem and self.facts is not None and self.facts.tls.certificate:
            data, where = container_reader(e.host, self.container)(self.facts.tls.certificate)
            pem, what, source = data or b"", f"the certificate {where}", where
        if not pem and files.cert:
            pem, what, source = files.cert, f"the certificate {lay.cert_path}", lay.cert_path
        if not pem:
            if served is not None and served.plain_http:
                return  # tls already says it all
            self.problem(
                e.label,
                problems.CERT_MISSING(
                    path=lay.cert_path, evidence=served.docker_error if served else ""
                ),
            )
            return
        info = pki.inspect_cert(pem)
        found = problems.certificate(info, self.plan, f"{what}: ")
        for p in found:
            self.problem(e.label, p)
        if not found:
            sans = ", ".join([*info.dns_sans, *info.ip_sans])
            self.ok(
                "certificate", e.label,
                f"{what}: SANs {sans}; expires {info.not_after:%Y-%m-%d}, "
                f"{info.days_left} days left ({info.key_type})",
            )  # fmt: skip
        if source == "served" and files.cert and self.facts is not None and self.facts.managed:
            disk = pki.inspect_cert(files.cert).sha256
            if disk != info.sha256:
                self.problem(
                    e.label,
                    problems.CERT_STALE(
                        path=lay.cert_path,
                        name=self.plan.registry.container,
                        served=info.sha256[:23],
                        disk=disk[:23],
                    ),
                )
        if files.ca_where == "legacy" and files.ca_key is not None:
            self.problem(
                e.label,
                problems.CA_KEY_MOUNTED(
                    path=lay.legacy_ca_key, dest=lay.ca_key_path, certs=lay.certs_dir
                ),
            )

    def _auth(self) -> None:
        e = self.ctx.registry
        found = problems.auth(self.facts, self.served)
        for p in found:
            self.problem(e.label, p)
        if not found:
            s = self.served
            if s is not None and s.tls and s.status == 401:
                realm = s.headers.get("www-authenticate", "")
                self.ok("auth", e.label, f"anonymous requests refused (401, {realm})")
            elif self.facts is not None and self.facts.auth.kind == "htpasswd":
                self.ok(
                    "auth", e.label, "htpasswd auth is configured (the registry does not answer)"
                )

    def _login(self) -> None:
        from regwizard import htpasswd
        from regwizard.facts.tls import Untrusted
        from regwizard.steps.trust import anchor

        e = self.ctx.registry
        reg = self.plan.registry
        user, pw = self.plan.verify_user, self.secrets.verify_password
        if not self.verified:
            self.add(
                "login", e.label, "skip", problems.LOGIN_SKIPPED(user=user).message,
                "", problems.LOGIN_SKIPPED.fix, problems.LOGIN_SKIPPED.id,
            )  # fmt: skip
            return
        try:
            status, _h, _b = self.ctx.net.request(
                reg.domain, self.ctx.target, reg.port, anchor(self.ctx), "/v2/", auth=(user, pw)
            )
        except Untrusted as ex:  # changed between the two connections: still never sent
            self.add("login", e.label, "skip", f"login as {user} not checked: {ex.reason}")
            return
        except OSError as ex:
            self.incomplete("login", e.label, f"login as {user}: {ex}")
            return
        if status == 200:
            self.ok("login", e.label, f"login as {user} works")
            return
        u = self.plan.user(user)
        if u is not None and not htpasswd.check_password(u.bcrypt, pw):
            fix = f"the password given is not the one of the plan's hash for {user}"
        else:
            fix = f"regwizard apply writes the plan's bcrypt hash for {user} into htpasswd"
        url = f"https://{reg.address}/v2/"
        self.problem(
            e.label,
            problems.LOGIN_REFUSED(
                user=user,
                status=status,
                fix=fix,
                evidence=f"login attempt to {url} failed with status: 401 Unauthorized"
                if status == 401
                else f"GET {url} -> {status}",
            ),
        )

    def _htpasswd(self) -> None:
        from regwizard import htpasswd
        from regwizard.facts.read import container_reader

        e = self.ctx.registry
        f = self.facts
        if f.auth.kind != "htpasswd":
            return
        text, where = None, f.auth.htpasswd
        if f.auth.htpasswd:
            data, where = container_reader(e.host, self.container)(f.auth.htpasswd)
            text = data.decode(errors="replace") if data is not None else None
        logs = _short_logs(self.container, 5) if text is None else ""
        found = problems.htpasswd(f, text, where, self.plan)
        for p in found:
            self.problem(
                e.label,
                p
                if p.id != "htpasswd-missing"
                else problems.HTPASSWD_MISSING(where=where, logs=logs),
            )
        if text is not None and not any(p.severity == "fail" for p in found):
            entries = htpasswd.parse(text)
            names = ", ".join(x.name for x in entries) or "none"
            self.ok("htpasswd", e.label, f"{len(entries)} user(s), all bcrypt: {names}")

    def _storage(self) -> None:
        e = self.ctx.registry
        f = self.facts
        st = f.storage
        repos = ""
        if st.host_path:
            # a repository is a directory holding _manifests (names may have slashes)
            r = e.host.run(
                ["sh", "-c", 'cd "$1/docker/registry/v2/repositories" 2>/dev/null && '
                 "find . -maxdepth 6 -type d -name _manifests -prune | head -n 1000", "sh",
                 st.host_path],
                check=False, timeout=30,
            )  # fmt: skip
            names = sorted(
                ln[2:].rsplit("/_manifests", 1)[0]
                for ln in r.stdout.decode(errors="replace").splitlines()
                if ln.startswith("./")
            )
            repos = f"{len(names)} repositories" + (f" ({', '.join(names[:5])})" if names else "")
        found = problems.unsupported(f) + problems.s3(f, self.plan)
        if not self.plan.storage.is_s3:  # with s3, a filesystem registry is storage-differs
            found += problems.storage(f, self.plan.registry.storage, repos)
        found += problems.delete(f, self.plan)
        for p in found:
            self.problem(e.label, p)
        if not found and st.driver == "s3":
            from regwizard.facts.registry import s3_spec

            have = s3_spec(st)
            self.ok("storage", e.label, f"s3 bucket {have.bucket} at {have.endpoint}")
        elif not found:
            self.ok("storage", e.label, f"{st.root} <- {st.host_path} (bind): {repos or 'empty'}")
        self._mirror()

    def _mirror(self) -> None:
        """A mirror refuses pushes by design: a note, never a failure. The upstream is not
        contacted (doctor stays read-only and sends no upstream login anywhere)."""
        e = self.ctx.registry
        url = self.plan.registry.proxy_remote_url
        found = problems.proxy(self.facts, url)
        for p in found:
            self.problem(e.label, p)
        if url and not found:
            self.ok("mirror", e.label, problems.MIRROR_NOTE.format(url=url))

    def _maintenance(self) -> None:
        from regwizard.facts.read import snapshot
        from regwizard.facts.registry import parse_config, read_only

        e = self.ctx.registry
        lay = self.ctx.layout
        snap = snapshot(e.host, files=[lay.maintenance_marker, lay.config_path])
        parsed, _err = parse_config(snap.files.get(lay.config_path))
        found = problems.maintenance(
            snap.files.get(lay.maintenance_marker), read_only(parsed), lay.maintenance_marker
        )
        for p in found:
            self.problem(e.label, p)

    # -- every host

    def _containerd(self, e) -> None:  # noqa: ANN001
        from regwizard.steps.containerd_config import containerd_facts

        cf = containerd_facts(self.ctx, e)
        found = problems.containerd(
            cf, self.plan, e.label, self._anchor(), bool(e.conn.manage_containerd_config)
        )
        for p in found:
            self.problem(e.label, p)
        if not found:
            where = f"{cf.hosts_dir}/{self.plan.registry.address}"
            self.ok(
                "containerd", e.label, f"CRI reads {cf.hosts_dir}; {where}/ trusts the registry"
            )

    def _podman(self, e) -> None:  # noqa: ANN001
        from regwizard.facts.runtimes import podman_trust_dir
        from regwizard.steps.trust_podman import podman_facts

        installed = e.host.run(["sh", "-c", "command -v podman"], check=False, timeout=15).rc == 0
        pf = podman_facts(self.ctx, e) if installed else None
        found = problems.podman(pf, self.plan, e.label, self._anchor(), installed)
        for p in found:
            self.problem(e.label, p)
        if not found:
            d = podman_trust_dir(self.plan.registry.address)
            self.ok("podman", e.label, f"{d}/ trusts the registry")

    def _hosts_file(self, e) -> None:  # noqa: ANN001
        from regwizard.steps.hosts_file import hosts_facts

        reg = self.plan.registry
        hf = hosts_facts(self.ctx, e)
        found = problems.hosts_file(hf, self.plan, e.label)
        for p in found:
            self.problem(e.label, p)
        if found:
            return
        if hf.entry.maps_to(reg.ip):
            self.ok("hosts-file", e.label, f"{reg.domain} -> {reg.ip} in /etc/hosts")
        else:
            addrs = ", ".join(hf.entry.addresses or hf.resolves_to)
            self.ok("hosts-file", e.label, f"{reg.domain} resolves to {addrs}")

    def _trust(self, e) -> None:  # noqa: ANN001
        from regwizard.steps.trust import certs_d

        want = self._anchor()
        served_pem = self.served.pem if self.served is not None else b""
        found = problems.trust(certs_d(self.ctx, e), self.plan, e.label, want, served_pem)
        for p in found:
            self.problem(e.label, p)
        if not found:
            self.ok("trust", e.label, f"{self.ctx.layout.trust_dir}/ trusts the served certificate")

    # -- what apply would change

    def _drift_units(self, on_docker, docker_ok) -> list[tuple]:  # noqa: ANN001
        """(step, host, after, when): each step's read-only check on each of its hosts,
        in the order apply runs them; Image and Container only where Docker answers."""
        from regwizard.steps import (
            Certificate,
            Config,
            Container,
            ContainerdConfig,
            Htpasswd,
            Image,
            Storage,
            Trust,
            TrustContainerd,
            TrustPodman,
        )

        units: list[tuple] = []
        for r in self.ctx.registries:  # the primary, then each replica
            if r.host is not None:
                units += [(s, r, (), _always) for s in (Certificate(), Htpasswd(), Storage())]
                units += [(Config(), r, (), _always)]
                units += [(s, r, on_docker(r), docker_ok(r)) for s in (Image(), Container())]
        if self.ctx.registry.host is None:
            return units  # the clients' checks compare with what the registry host holds
        for step in (Trust(), ContainerdConfig(), TrustContainerd(), TrustPodman()):
            units += [(step, h, (), _always) for h in step.targets(self.ctx) if h.host is not None]
        return units

    def _drift_unit(self, step, h) -> None:  # noqa: ANN001
        """What apply would do with one step on one host: a change, a refusal, or nothing."""
        from regwizard.steps.base import Change, StepError

        try:
            outcome = step.check(self.ctx, h)
        except StepError as ex:
            self._drifted = True
            self.add(
                "plan", h.label, "fail", f"apply would refuse at {step.name}: {ex.cause}",
                ex.evidence, ex.fix, "apply-refuses",
            )  # fmt: skip
            return
        except Cancelled:
            raise
        except RegwizardError as ex:
            self.incomplete("plan", h.label, f"{step.name}: {ex.cause}", ex.evidence, ex.fix)
            return
        if isinstance(outcome, Change):
            self._drifted = True
            self.add(
                "plan", h.label, "warn", f"apply would change {step.name}: {outcome.detail}",
                "\n".join(outcome.commands[:3]), "regwizard apply", "apply-would-change",
            )  # fmt: skip

    def _drift_done(self) -> None:
        """After every unit: nothing drifted (a unit that could not check is incomplete)."""
        if not self._drifted:
            self.ok("plan", self.ctx.registry.label, "apply would change nothing")


def diagnose(
    plan: Plan,
    secrets: Secrets,
    *,
    emit: Callable[[Finding], None] | None = None,
    cancel: threading.Event | None = None,
    connect=None,  # noqa: ANN001 - hosts.connect; offline tests pass fakes
    net=None,  # noqa: ANN001 - steps.base.Network
) -> DoctorReport:
    """Check the setup a plan describes, read-only. Never raises for what it finds.

    Raises only Cancelled. An invalid plan, unreachable hosts and checks that broke are
    findings too, listed in ``report.incomplete`` (exit code 2).
    """
    from regwizard.preconnect import Preconnect

    # every host's handshake starts now, while the checks import (regwizard.preconnect)
    pre = None if validate_plan(plan) else Preconnect(plan, secrets, connect)
    try:
        return _Doctor(
            plan,
            secrets,
            emit or (lambda f: None),
            cancel or threading.Event(),
            pre.connect if pre is not None else connect,
            net,
        ).run()
    finally:
        if pre is not None:
            pre.close_unused()


def format_finding(f: Finding) -> list[str]:
    lines = [f"{f.severity:<4}  {f.check:<11} {f.host:<16} {f.message}"]
    if f.severity not in ("ok",):
        if f.evidence:
            ev = f.evidence.splitlines()
            lines.append(f"      evidence: {ev[0]}")
            lines.extend(f"                {x}" for x in ev[1:8])
        if f.fix:
            lines.append(f"      fix:      {f.fix}")
    return lines
