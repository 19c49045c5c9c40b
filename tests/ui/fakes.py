"""A scripted Backend for the UI tests: no SSH, no Docker, deterministic output."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from regwizard.errors import Cancelled, HostKeyChanged, HostKeyUnknown, RegwizardError
from regwizard.events import (
    Event,
    HostFacts,
    LogLine,
    Progress,
    RunFinished,
    RunResult,
    StepFailed,
    StepFinished,
    StepRecord,
    StepStarted,
    Verification,
)
from regwizard.plan import Connection, Plan, Secrets

FINGERPRINT = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
OTHER_FINGERPRINT = "SHA256:AAAAbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
DIGEST = "sha256:3f1a9c0d2e4b5a6978877665544332211ffeeddccbbaa99887766554433221100"

# (name, title, targets): "reg" = the registry host, "all" = every host.
STEPS = [
    ("preflight", "Preflight", "all"),
    ("hosts-file", "/etc/hosts entry", "all"),
    ("certificate", "TLS certificate", "reg"),
    ("trust", "Docker trust (certs.d)", "all"),
    ("htpasswd", "htpasswd users (bcrypt)", "reg"),
    ("storage", "Storage directory", "reg"),
    ("image", "Registry image", "reg"),
    ("container", "Registry container", "reg"),
    ("health", "Registry answers over TLS", "reg"),
    ("verify", "Verification: login, push, pull", "reg"),
]

MARKUP_LINE = "[bold]x[/] and [red]not red[/red] [link=http://e]y[/link]"


def facts_for(conn: Connection, storage: str = "/opt/docker-image") -> HostFacts:
    local = conn.is_local
    return HostFacts(
        label=conn.name,
        address=conn.address,
        fingerprint="" if local else FINGERPRINT,
        key_type="" if local else "ssh-ed25519",
        os="Debian GNU/Linux 12 (bookworm)",
        arch="x86_64",
        docker_version="26.1.5",
        free_bytes=42 * 1024**3,
        is_root=conn.user == "root",
        sudo_ok=conn.user != "root",
    )


@dataclass
class FakeBackend:
    """Configurable outcomes.

    probe_mode: "ok" | "unknown-key" (HostKeyUnknown until the fingerprint is accepted)
                | "changed-key" | "error"
    run_modes:  one per call to run(), the last one repeats:
                "success" | "fail" (StepFailed at step ``fail_at``) | "slow" (respects cancel)
                | "raise" (an exception escapes run()) | "unverified" | "chatty"
    """

    probe_mode: str = "ok"
    run_modes: list[str] = field(default_factory=lambda: ["success"])
    fail_at: int = 3
    step_delay: float = 0.0
    chatty_lines: int = 3000
    probe_calls: list[tuple[Connection, set[str]]] = field(default_factory=list)
    run_calls: list[tuple[Plan, Secrets]] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)

    # -- Backend ----------------------------------------------------------------------

    def probe(
        self, conn: Connection, secrets: Secrets, storage: str, cancel: threading.Event
    ) -> HostFacts:
        self.probe_calls.append((conn, set(secrets.accepted_host_keys)))
        if conn.is_local or self.probe_mode == "ok":
            return facts_for(conn, storage)
        if self.probe_mode == "unknown-key":
            if FINGERPRINT in secrets.accepted_host_keys:
                return facts_for(conn, storage)
            raise HostKeyUnknown(conn.address, FINGERPRINT, "ssh-ed25519")
        if self.probe_mode == "changed-key":
            raise HostKeyChanged(conn.address, FINGERPRINT, OTHER_FINGERPRINT)
        raise RegwizardError(
            f"{conn.address}:{conn.port}: connection refused",
            "check that sshd runs on the host and the port is right",
        )

    def shell_commands(self, plan: Plan) -> list[str]:
        reg = plan.registry
        return [
            f"# on {plan.host.name}",
            f"mkdir -p {reg.storage} {reg.config_dir}/certs {reg.config_dir}/auth",
            f"openssl req -x509 -newkey rsa:4096 -days {plan.certificate.days} -nodes \\",
            f'  -subj "/CN={plan.common_name}" -addext "subjectAltName=DNS:{reg.domain}"',
            f"docker run -d --restart=always --name {reg.container} -p {reg.port}:5000 \\",
            f"  -v {reg.storage}:/var/lib/registry {reg.image}",
        ]

    def run(
        self,
        plan: Plan,
        secrets: Secrets,
        *,
        emit,
        cancel: threading.Event,
        dry_run: bool = False,
    ) -> RunResult:
        index = len(self.run_calls)
        self.run_calls.append((plan, secrets))
        mode = self.run_modes[min(index, len(self.run_modes) - 1)]
        self.started.set()
        second_try = index > 0
        hosts = ["node1"] + [c.name for c in plan.clients if c.address != plan.host.address]
        units = [
            (name, title, host)
            for name, title, scope in STEPS
            for host in (hosts if scope == "all" else ["node1"])
        ]
        records: list[StepRecord] = []
        result = RunResult(ok=False, steps=records)

        def send(event: Event) -> None:
            emit(event)

        send(Progress(0, len(units)))
        for i, (name, title, host) in enumerate(units):
            if cancel.is_set():
                self.cancelled.set()
                raise Cancelled()
            send(StepStarted(name, host, title))
            send(LogLine(name, host, f"checking {title.lower()}"))
            if name == "preflight" and host == "node1":
                send(LogLine(name, host, MARKUP_LINE))
                send(LogLine(name, host, "\x1b[31mcoloured\x1b[0m output"))
            if mode == "chatty" and i == 0:
                for n in range(self.chatty_lines):
                    send(LogLine(name, host, f"chatty line {n}"))
            if mode == "slow":
                # a long step that stops at a safe point when asked
                for _ in range(200):
                    if cancel.wait(0.02):
                        self.cancelled.set()
                        raise Cancelled()
            elif self.step_delay:
                time.sleep(self.step_delay)
            if mode == "fail" and i == self.fail_at:
                failure = StepFailed(
                    name,
                    host,
                    "the registry host cannot write /opt/docker-image: disk full",
                    "free space on the registry host (df -h /opt), then Retry",
                    "write /opt/docker-image/x: no space left on device",
                    1.5,
                )
                send(failure)
                result.failure = failure
                result.seconds = 12.0
                send(RunFinished(result))
                return result
            if mode == "raise" and i == self.fail_at:
                raise RuntimeError("socket closed unexpectedly")
            status = (
                "unchanged" if (second_try and i < self.fail_at) or name == "health" else "changed"
            )
            records.append(StepRecord(name, host, title, status, 1.0 + i / 10))
            send(StepFinished(name, host, status, 1.0 + i / 10, f"{title} ok"))
            send(Progress(i + 1, len(units)))
        verification = Verification(
            user=plan.verify_user,
            login_ok=True,
            anonymous_refused=True,
            push_digest=DIGEST,
            pull_digest=DIGEST if mode != "unverified" else "",
            catalog=["regwizard/hello"],
            trust={h: True for h in hosts},
            image_ref=f"{plan.registry.address}/regwizard/hello:latest",
        )
        result.verification = verification
        result.ok = verification.ok
        result.seconds = 42.0
        send(RunFinished(result))
        return result
