"""The engine: run a plan's steps against real hosts, emitting events.

``run(plan, secrets, emit=..., cancel=...)`` takes plain inputs, a cancel event
and an ``emit(event)`` callback. It never imports textual or rich: the UI turns
events into messages, the CLI into lines on stderr.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING

from regwizard.diagnose import clean, explain
from regwizard.errors import Cancelled, RegwizardError
from regwizard.events import (
    Event,
    HostFacts,
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
    from regwizard.steps import Ctx, HostEntry, Step

CONNECT_TIMEOUT = 10.0
MAX_PARALLEL_HOSTS = 16  # hosts worked on at once (a registry host and 15 clients)


def _conn_key(c: Connection) -> str:
    return "local" if c.is_local else f"{c.user}@{c.address}:{c.port}"


def host_entries(plan: Plan) -> list[HostEntry]:
    """The machines of a plan, deduplicated: the registry host first, then clients."""
    from regwizard.steps import HostEntry

    entries: dict[str, HostEntry] = {}
    reg = HostEntry(_conn_key(plan.host), plan.host.name, plan.host, is_registry=True)
    entries[reg.key] = reg
    for c in plan.clients:
        k = _conn_key(c)
        if k in entries:
            entries[k].is_client = True
        else:
            entries[k] = HostEntry(k, c.name, c, is_client=True)
    # labels must be unique for the step table
    seen: dict[str, int] = {}
    for e in entries.values():
        n = seen.get(e.label, 0)
        seen[e.label] = n + 1
        if n:
            e.label = f"{e.label}#{n + 1}"
    return list(entries.values())


def _connect_all(ctx: Ctx) -> None:
    from regwizard import hosts

    def one(e: HostEntry) -> None:
        e.host = hosts.connect(e.conn, ctx.secrets, cancel=ctx.cancel, timeout=CONNECT_TIMEOUT)

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_HOSTS, len(ctx.hosts))) as pool:
        futures = [pool.submit(one, e) for e in ctx.hosts]
        errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err


def _run_unit(ctx: Ctx, step: Step, e: HostEntry, records: list[StepRecord]) -> None:
    ctx.check_cancel()
    t0 = time.monotonic()
    ctx.emit(StepStarted(step.name, e.label, step.title))
    finding = step.check(ctx, e)
    if not finding.needed:
        status, detail = "unchanged", finding.detail
    elif ctx.dry_run:
        status, detail = "would-change", finding.detail
    else:
        ctx.check_cancel()
        detail = step.apply(ctx, e, finding) or finding.detail
        step.verify(ctx, e)
        status = "changed" if step.name != "verify" else "unchanged"
        if step.name == "health":
            status = "unchanged"  # waiting is not a change
    secs = time.monotonic() - t0
    records.append(StepRecord(step.name, e.label, step.title, status, secs, detail))
    ctx.emit(StepFinished(step.name, e.label, status, secs, detail, tuple(finding.commands)))


def run(
    plan: Plan,
    secrets: Secrets,
    *,
    emit=lambda e: None,
    cancel: threading.Event | None = None,
    dry_run: bool = False,
) -> RunResult:
    """Converge the plan step by step, then verify. Stops at the first failure."""
    from regwizard.steps import STEPS, Ctx

    cancel = cancel or threading.Event()
    lock = threading.Lock()

    def safe_emit(ev: Event) -> None:
        with lock:
            emit(ev)

    ctx = Ctx(plan, secrets, safe_emit, cancel, dry_run=dry_run, hosts=host_entries(plan))
    records: list[StepRecord] = []
    result = RunResult(ok=False, steps=records, dry_run=dry_run)
    t0 = time.monotonic()
    steps = [s for s in STEPS if not (dry_run and s.name in ("health", "verify"))]
    done = 0
    current = ("connect", ctx.registry.label)
    try:
        plan.validate()
        ctx.emit(StepStarted("connect", "all", "Connect to hosts"))
        tc = time.monotonic()
        _connect_all(ctx)
        ctx.emit(StepFinished("connect", "all", "unchanged", time.monotonic() - tc, "connected"))
        units = [(s, e) for s in steps for e in s.targets(ctx)]
        total = len(units)
        ctx.emit(Progress(0, total))
        for step in steps:
            targets = step.targets(ctx)
            ctx.check_cancel()
            if len(targets) > 1 and step.scope in ("all", "clients"):
                # independent hosts run in parallel
                with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_HOSTS, len(targets))) as pool:
                    futs = {pool.submit(_run_unit, ctx, step, e, records): e for e in targets}
                    for fut, e in futs.items():
                        current = (step.name, e.label)
                        fut.result()
            else:
                for e in targets:
                    current = (step.name, e.label)
                    _run_unit(ctx, step, e, records)
            done += len(targets)
            ctx.emit(Progress(done, total))
        result.ok = dry_run or bool(ctx.verification and ctx.verification.ok)
    except Exception as ex:  # noqa: BLE001 - every failure becomes one clear message
        result.failure = _failure(current, ex)
        ctx.emit(result.failure)
    finally:
        for e in ctx.hosts:
            if e.host is not None:
                try:
                    e.host.close()
                except Exception:  # noqa: BLE001
                    pass
    result.verification = ctx.verification
    result.seconds = time.monotonic() - t0
    ctx.emit(RunFinished(result))
    return result


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


def _subj_value(v: str) -> str:
    """Escape a value for openssl's -subj (/K=V/...): backslash, slash and plus."""
    return v.replace("\\", "\\\\").replace("/", "\\/").replace("+", "\\+")


def shell_commands(plan: Plan) -> list[str]:
    """The tutorial-style shell equivalent of the plan, with SANs (no secrets).

    Every plan value is shell-quoted: each line runs exactly the command it shows.
    """
    import re
    import shlex

    from regwizard.steps import Ctx, _san_text, docker_run_command

    q = shlex.quote
    reg, cert = plan.registry, plan.certificate
    ctx = Ctx(plan, Secrets(), lambda e: None, threading.Event())
    cn = cert.common_name or reg.domain
    subj = "/" + "/".join(
        f"{k}={_subj_value(v)}"
        for k, v in (
            ("C", cert.country),
            ("ST", cert.state),
            ("L", cert.locality),
            ("O", cert.organization),
            ("OU", cert.organizational_unit),
            ("CN", cn),
        )
        if v
    )
    newkey = (
        ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        if cert.key == "ecdsa-p256"
        else ["rsa:" + cert.key.split("-")[1]]
    )
    out = [f"# on the registry host ({plan.host.name})"]
    if reg.manage_hosts_file and reg.ip:
        out.append(f"echo {q(f'{reg.ip} {reg.domain}')} >> /etc/hosts   # on every host")
    openssl = [
        "openssl", "req", "-x509", "-newkey", *newkey, "-nodes", "-sha256",
        "-days", str(cert.days), "-keyout", ctx.key_path, "-out", ctx.cert_path,
        "-subj", subj, "-addext", f"subjectAltName={_san_text(plan)}",
    ]  # fmt: skip
    out += [
        shlex.join(["mkdir", "-p", ctx.certs_dir, ctx.auth_dir, reg.storage]),
        shlex.join(openssl),
        shlex.join(["chmod", "600", ctx.key_path]),
    ]
    for u in plan.users:
        var = "PASSWORD_" + re.sub(r"[^A-Z0-9_]", "_", u.name.upper())
        out.append(f'{shlex.join(["htpasswd", "-Bb", ctx.htpasswd_path, u.name])} "${var}"')
    out.append(f"openssl rand -hex 32 > {q(ctx.secret_path)}")
    out.append(docker_run_command(ctx))
    out.append(f"# on every Docker host ({', '.join(c.name for c in plan.clients)})")
    trust = ctx.ca_path if cert.mode == "local-ca" else ctx.cert_path
    out.append(
        f"{shlex.join(['mkdir', '-p', ctx.trust_dir])} && "
        f"{shlex.join(['scp', f'REGISTRY:{trust}', f'{ctx.trust_dir}/ca.crt'])}"
    )
    out.append("# from the first client")
    out.append(shlex.join(["docker", "login", reg.address, "-u", plan.verify_user]))
    ref = f"{reg.address}/IMAGE"
    out.append(f"docker tag IMAGE {q(ref)} && docker push {q(ref)}")
    return out


class EngineBackend:
    """The real backend for the UI (see regwizard.backend.Backend)."""

    def probe(self, conn, secrets, storage, cancel):
        return probe(conn, secrets, storage, cancel)

    def run(self, plan, secrets, *, emit, cancel, dry_run=False):
        return run(plan, secrets, emit=emit, cancel=cancel, dry_run=dry_run)

    def shell_commands(self, plan):
        return shell_commands(plan)

    def adopt(self, conn, secrets, container, cancel):
        from regwizard.adopt import adopt

        return adopt(conn, secrets, container, cancel=cancel, timeout=CONNECT_TIMEOUT)

    def diagnose(self, plan, secrets, cancel):
        from regwizard.doctor import diagnose

        return diagnose(plan, secrets, cancel=cancel)


# ---------------------------------------------------------------- CLI


def _stderr_printer(verbose: bool = False):
    def emit(ev: Event) -> None:
        if isinstance(ev, StepFinished):
            mark = {"changed": "~", "unchanged": "=", "would-change": "?", "skipped": "-"}.get(
                ev.status, "*"
            )
            print(
                f"{mark} {ev.step:<12} {ev.host:<16} {ev.status:<12} {ev.seconds:5.1f}s  {ev.detail}",
                file=sys.stderr,
                flush=True,
            )
        elif isinstance(ev, StepFailed):
            print(f"x {ev.step:<12} {ev.host:<16} failed", file=sys.stderr)
            print(f"  cause: {ev.cause}", file=sys.stderr)
            if ev.fix:
                print(f"  fix:   {ev.fix}", file=sys.stderr)
            if ev.evidence and ev.evidence != ev.cause:
                print(f"  evidence: {ev.evidence.splitlines()[-1][:300]}", file=sys.stderr)

    return emit


def result_json(result: RunResult) -> dict:
    v = result.verification
    return {
        "ok": result.ok,
        "dry_run": result.dry_run,
        "seconds": round(result.seconds, 3),
        "changed": [f"{s.step}@{s.host}" for s in result.changed],
        "steps": [asdict(s) for s in result.steps],
        "login": bool(v and v.login_ok),
        "login_user": v.user if v else "",
        "anonymous_refused": bool(v and v.anonymous_refused),
        "push_digest": v.push_digest if v else "",
        "pull_digest": v.pull_digest if v else "",
        "catalog": v.catalog if v else [],
        "trust": v.trust if v else {},
        "failure": asdict(result.failure) if result.failure else None,
    }


def apply_cli(args) -> int:
    from regwizard.cli import read_connection_secrets, read_verify_password
    from regwizard.plan import load_plan

    plan = load_plan(args.plan)
    secrets = Secrets(accepted_host_keys=set(args.accept_host_key))
    read_connection_secrets(plan, secrets)
    if not args.dry_run:
        secrets.verify_password = read_verify_password(args.password_file, plan.verify_user)
    if args.dry_run:
        print("dry run: nothing will be changed", file=sys.stderr)
    result = run(plan, secrets, emit=_stderr_printer(), dry_run=args.dry_run)
    v = result.verification
    if args.json:
        print(json.dumps(result_json(result), indent=2))
    elif args.dry_run:
        print("\n# equivalent shell commands")
        for line in shell_commands(plan):
            print(line)
    if result.ok and v and not args.dry_run:
        print(
            f"verified in {result.seconds:.1f}s: login as {v.user} ok, anonymous push refused, "
            f"pushed {v.push_digest}, pulled the same digest on {', '.join(v.trust)}; "
            f"{len(result.changed)} step(s) changed",
            file=sys.stderr,
        )
        print(f"next: docker login {plan.registry.address}", file=sys.stderr)
    if result.ok:
        return 0
    return 1
