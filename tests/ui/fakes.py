"""A scripted Backend for the UI tests: no SSH, no Docker, deterministic output."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from regwizard.adopt import Adoption, CertSummary, DataPlace
from regwizard.doctor import DoctorReport, Finding
from regwizard.errors import Cancelled, HostKeyChanged, HostKeyUnknown, RegwizardError
from regwizard.events import (
    Event,
    GcFinished,
    GcOutput,
    GcResult,
    HostFacts,
    LogLine,
    Progress,
    Proof,
    RunFinished,
    RunResult,
    StepFailed,
    StepFinished,
    StepProgress,
    StepRecord,
    StepStarted,
    Verification,
)
from regwizard.htpasswd import hash_password
from regwizard.plan import (
    CertificateSpec,
    Connection,
    Plan,
    RegistrySpec,
    Secrets,
    User,
    VerifySpec,
)

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

REPLICA_FAILURE = "manifest: HTTP 404, digest none (want sha256:3f1a9c0d2e4b…)"

MARKUP_LINE = "[bold]x[/] and [red]not red[/red] [link=http://e]y[/link]"

# A real bcrypt hash (cheapest cost) of a password nobody types: an adopted user.
ADOPTED_BCRYPT = hash_password("Carol-pw-unknown", rounds=4)
ANON_VOLUME = "9f2c4e1a7b3d" + "0" * 52
MARKUP_EVIDENCE = '[registry] level=info msg="[red]listening[/red] on [::]:5000"'


def adopted_plan(conn: Connection, scenario: str) -> Adoption:
    """What adopt() finds on the tutorial's registry.

    scenario "no-auth": no REGISTRY_AUTH, images in an anonymous volume.
    scenario "md5": htpasswd with carol (bcrypt) and dave + erin (apr1-md5, ignored).
    """
    host = Connection(**vars(conn))
    host.host_key = host.host_key or FINGERPRINT
    users = [User("carol", ADOPTED_BCRYPT)] if scenario == "md5" else []
    ignored = [("dave", "apr1-md5"), ("erin", "apr1-md5")] if scenario == "md5" else []
    notes = [
        "found container registry (registry:2), running, restart policy always",
        "port: 443 -> 5000 in the container",
        "certificate /certs/domain.crt: CN=reg.example.test, SANs reg.example.test, 10.0.0.2, "
        "rsa-4096, 365 days, 200 left",
    ]
    if scenario == "md5":
        for name, kind in ignored:
            notes.append(
                f"user {name}: a {kind} hash that the registry ignores (login gets 401); give "
                f"it a new password (`regwizard user hash {name}`) and add it to [[users]]"
            )
        notes.append("htpasswd /auth/htpasswd: 1 bcrypt user(s): carol")
        notes.append("verify user: carol (its password is asked when apply runs)")
    else:
        notes.append(
            "no auth: anyone can push and pull (no REGISTRY_AUTH); add a user (`regwizard user "
            "hash NAME`) to [[users]] and set [verify] user"
        )
        notes.append("the plan has no users yet: add one (`regwizard user hash NAME`) before apply")
    notes.append(
        f"storage not persisted: images are in anonymous volume {ANON_VOLUME[:12]} "
        "(/var/lib/registry); `docker rm -v` or a volume prune loses them. The plan stores them "
        "in /opt/docker-image; apply copies them there before it replaces the container, and "
        "keeps the old volume"
    )
    notes.append("clients: this machine; add every other Docker host to [[clients]]")
    plan = Plan(
        registry=RegistrySpec(
            domain="reg.example.test",
            ip="10.0.0.2",
            manage_hosts_file=True,
            port=443,
            container="registry",
            image="registry:2",
            storage="/opt/docker-image",
            config_dir="/etc/regwizard",
        ),
        host=host,
        clients=[Connection()],
        certificate=CertificateSpec(
            mode="self-signed", country="CN", organization="ACME", days=825
        ),
        users=users,
        verify=VerifySpec(user=users[0].name if users else ""),
    )
    return Adoption(
        plan=plan,
        notes=notes,
        ignored_users=ignored,
        unpersisted_data=DataPlace("anonymous-volume", ANON_VOLUME[:12]),
        certificate=CertSummary(
            "CN=reg.example.test, SANs reg.example.test, 10.0.0.2, rsa-4096, 365 days", 200
        ),
    )


def findings_for(plan: Plan, scenario: str) -> list[Finding]:
    host = plan.host.name
    out = [
        Finding("connect", host, "ok", f"connected to {plan.host.address}"),
        Finding("container", host, "ok", "registry (registry:2) running, restart always"),
        Finding("certificate", host, "ok", "reg.example.test: SANs ok, 200 days left"),
    ]
    if scenario == "md5":
        out.append(
            Finding(
                "htpasswd", host, "fail",
                "non-bcrypt htpasswd line(s) in /opt/auth/htpasswd: dave (apr1-md5), erin "
                "(apr1-md5); the registry ignores them, so these users get 401",
                "dave:$apr1$x…\nerin:$apr1$y…\ndocker login: unauthorized: authentication "
                "required / 401 Unauthorized",
                "give dave a new password (regwizard user hash dave), add it to [[users]], "
                "then regwizard apply",
            )
        )  # fmt: skip
    else:
        out.append(
            Finding(
                "auth", host, "fail",
                "registry without auth: anonymous requests are served, anyone can push and pull "
                "(no REGISTRY_AUTH in the container)",
                "GET https://reg.example.test/v2/ without credentials -> 200",
                "add a user to the plan (regwizard user hash NAME) and run regwizard apply: it "
                "turns on htpasswd auth",
            )
        )  # fmt: skip
    out.append(
        Finding(
            "storage", host, "fail",
            f"storage not persisted: images are in anonymous volume {ANON_VOLUME[:12]}; "
            "`docker rm -v` or `docker volume prune` deletes them",
            f"/var/lib/registry <- volume {ANON_VOLUME}: 2 repositories (alpine, [team]/app)\n"
            + MARKUP_EVIDENCE,
            "regwizard apply copies the images to /opt/docker-image (bound at /var/lib/registry) "
            "before it replaces the container; the old volume is kept, nothing is deleted",
        )
    )  # fmt: skip
    out.append(
        Finding(
            "trust", "this machine", "warn",
            "/etc/docker/certs.d/reg.example.test/ca.crt is missing",
            "x509: certificate signed by unknown authority",
            "regwizard apply copies the certificate into certs.d",
        )
    )  # fmt: skip
    out.append(
        Finding("hosts-file", "this machine", "ok", "reg.example.test -> 10.0.0.2 [managed]")
    )
    return out


# What "Test connection" finds on these client addresses (any other: Docker alone).
PODMAN_CLIENT = "10.0.0.5"  # Docker and podman
CONTAINERD_CLIENT = "10.0.0.6"  # a Kubernetes node: a standalone containerd, no Docker
BARE_CLIENT = "10.0.0.7"  # no runtime at all
DETECTED = {
    PODMAN_CLIENT: ["docker", "podman"],
    CONTAINERD_CLIENT: ["containerd"],
    BARE_CLIENT: [],
}

PODMAN_PROOF = f"pulled {DIGEST[:19]}… with podman"
CONTAINERD_PROOF = (
    "trusts the registry: an anonymous pull was refused with 401 Unauthorized, not an x509 error"
)
PROOF_FAILURES = {  # what a runtime that does not trust the registry says
    "containerd": 'failed to resolve reference "reg.example.test/regwizard/hello:latest": '
    "tls: failed to verify certificate: x509: certificate signed by unknown authority",
    "podman": "Error: authenticating creds for reg.example.test: pinging container registry "
    "reg.example.test: x509: certificate signed by unknown authority",
}


def facts_for(conn: Connection, storage: str = "/opt/docker-image") -> HostFacts:
    local = conn.is_local
    runtimes = DETECTED.get(conn.address, ["docker"])
    return HostFacts(
        label=conn.name,
        address=conn.address,
        fingerprint="" if local else FINGERPRINT,
        key_type="" if local else "ssh-ed25519",
        os="Debian GNU/Linux 12 (bookworm)",
        arch="x86_64",
        docker_version="26.1.5" if "docker" in runtimes else "",
        docker_error="" if "docker" in runtimes else "cannot reach /var/run/docker.sock",
        free_bytes=42 * 1024**3,
        is_root=conn.user == "root",
        sudo_ok=conn.user != "root",
        runtimes=list(runtimes),
    )


# --------------------------------------------------------------------------- browse images


def _fake_digest(text: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# repo -> tags: one repository with more tags than a page, a multi-platform one
BROWSE_REPOS: dict[str, list[str]] = {
    "library/alpine": ["3.19", "3.20", "latest"],
    "team/api": [f"1.{i:03d}" for i in range(130)],
    "team/web": ["2024-05-01", "latest"],
    "tools/buildkit": ["v0.13"],
}


@dataclass
class FakeBrowser:
    """registry_api.RegistryApi's words over a dict: paged like distribution."""

    repos: dict[str, list[str]] = field(
        default_factory=lambda: {k: list(v) for k, v in BROWSE_REPOS.items()}
    )
    allow_delete: bool = True
    deleted: list[tuple[str, str]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    @staticmethod
    def _page(names: list[str], last: str, n: int):  # noqa: ANN205
        from regwizard.registry_api import Page

        rest = [x for x in sorted(names) if x > last]
        return Page(tuple(rest[:n]), rest[n - 1] if len(rest) > n else "")

    def repositories(self, last: str = "", n: int = 100):  # noqa: ANN201
        self.calls.append(f"repositories {last}")
        return self._page(list(self.repos), last, n)

    def tags(self, repo: str, last: str = "", n: int = 100):  # noqa: ANN201
        self.calls.append(f"tags {repo} {last}")
        return self._page(self.repos[repo], last, n)

    def tag_info(self, repo: str, tag: str):  # noqa: ANN201
        from regwizard.registry_api import DOCKER_MANIFEST, OCI_INDEX, Platform, TagInfo

        digest = _fake_digest("latest" if tag == "latest" else f"{repo}:{tag}")
        if repo == "tools/buildkit":
            plats = (
                Platform("linux/amd64", _fake_digest("amd64"), 31_457_280),
                Platform("linux/arm64", _fake_digest("arm64"), 29_360_128),
            )
            return TagInfo(repo, tag, digest, OCI_INDEX, 58_720_256, plats)
        size = 3_408_000 + 1000 * len(tag) + 17 * len(repo)
        return TagInfo(repo, tag, digest, DOCKER_MANIFEST, size)

    def delete(self, repo: str, digest: str) -> None:
        from regwizard import problems

        if not self.allow_delete:
            p = problems.DELETE_DISABLED(evidence=f"DELETE {repo}@{digest} -> 405 UNSUPPORTED")
            raise RegwizardError(p.message, p.fix, p.evidence)
        gone = [t for t in self.repos[repo] if self.tag_info(repo, t).digest == digest]
        for t in gone:
            self.repos[repo].remove(t)
        self.deleted.append((repo, digest))


@dataclass
class FakeBackend:
    """Configurable outcomes.

    probe_mode: "ok" | "unknown-key" (HostKeyUnknown until the fingerprint is accepted)
                | "changed-key" | "error"
    adopt_mode: like probe_mode, for adopt()
    adopt_scenario: "no-auth" | "md5" (see adopted_plan)
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
    adopt_mode: str = "ok"
    adopt_scenario: str = "no-auth"
    adopt_calls: list[tuple[Connection, str | None, set[str]]] = field(default_factory=list)
    diagnose_calls: list[tuple[Plan, Secrets]] = field(default_factory=list)
    diagnose_delay: float = 0.0
    failing_proofs: set[str] = field(default_factory=set)  # runtimes whose proof fails
    failing_replicas: set[str] = field(default_factory=set)  # registry hosts whose proof fails
    gc_mode: str = "success"  # "success" | "fail" (the collector fails; read-write again)
    gc_calls: list[tuple[Plan, bool, bool]] = field(default_factory=list)
    browse_mode: str = "ok"  # "error": the login is refused
    browser: FakeBrowser = field(default_factory=FakeBrowser)
    browse_calls: list[tuple[Plan, str]] = field(default_factory=list)  # (plan, verify password)
    users_mode: str = "ok"  # users(): "ok" | "fail" (the logins proof fails)
    users_calls: list[tuple[Plan, list]] = field(default_factory=list)

    # -- Backend ----------------------------------------------------------------------

    def browse(self, plan: Plan, secrets: Secrets, cancel: threading.Event) -> FakeBrowser:
        self.browse_calls.append((plan, secrets.verify_password))
        if self.browse_mode == "error":
            raise RegwizardError(
                "the registry refused the login of alice (401)",
                "give the verify user's password (REGWIZARD_PASSWORD), as the plan's hash has it",
            )
        return self.browser

    def delete_tag(self, browser: FakeBrowser, repo: str, digest: str) -> None:
        browser.delete(repo, digest)

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

    def adopt(
        self,
        conn: Connection,
        secrets: Secrets,
        container: str | None,
        cancel: threading.Event,
    ) -> Adoption:
        self.adopt_calls.append((conn, container, set(secrets.accepted_host_keys)))
        if cancel.is_set():
            raise Cancelled()
        mode = self.adopt_mode
        if mode == "unknown-key" and FINGERPRINT not in secrets.accepted_host_keys:
            raise HostKeyUnknown(conn.address, FINGERPRINT, "ssh-ed25519")
        if mode == "changed-key":
            raise HostKeyChanged(conn.address, FINGERPRINT, OTHER_FINGERPRINT)
        if mode == "error":
            raise RegwizardError(
                f"{conn.address}: no registry container found (no image named registry or "
                "distribution)",
                "pass --container NAME, or set a registry up from scratch: regwizard plan new",
            )
        return adopted_plan(conn, self.adopt_scenario)

    def diagnose(self, plan: Plan, secrets: Secrets, cancel: threading.Event) -> DoctorReport:
        self.diagnose_calls.append((plan, secrets))
        if self.diagnose_delay and cancel.wait(self.diagnose_delay):
            raise Cancelled()
        return DoctorReport(findings=findings_for(plan, self.adopt_scenario), seconds=1.5)

    def users(self, plan: Plan, edits: list, secrets: Secrets, *, path, emit, cancel):  # noqa: ANN001, ANN201
        """As EngineBackend.users: the real plan edit (cost 4) and in-place save, a
        scripted htpasswd step and logins proof."""
        from regwizard.plan import save_plan
        from regwizard.users import UsersOutcome, edited, expectations

        self.users_calls.append((plan, list(edits)))
        new = edited(plan, edits, cost=4)
        records: list[StepRecord] = []
        emit(StepStarted("htpasswd", "node1", "htpasswd users (bcrypt)"))
        detail = "; ".join(f"{e.action} {e.name}" for e in edits)
        records.append(StepRecord("htpasswd", "node1", "htpasswd", "changed", 0.1, detail))
        emit(StepFinished("htpasswd", "node1", "changed", 0.1, detail))
        emit(StepStarted("logins", "node1", "Logins as planned"))
        words = [
            f"login as {x.user} " + ("works (200)" if x.works else "refused (401)")
            for x in expectations(edits)
        ]
        result = RunResult(ok=self.users_mode == "ok", steps=records)
        if self.users_mode == "ok":
            proof = "; ".join(words)
            records.append(StepRecord("logins", "node1", "Logins", "unchanged", 0.2, proof))
            emit(StepFinished("logins", "node1", "unchanged", 0.2, proof))
        else:
            result.failure = StepFailed(
                "logins",
                "node1",
                "the registry did not take the new users within 15 s",
                "check that the container mounts the auth directory",
            )
            emit(result.failure)
        emit(RunFinished(result))
        if path is not None:
            save_plan(new, path)
        out = UsersOutcome(result, new, saved=path is not None)
        out.proof = records[-1].detail if result.ok else ""
        return out

    def shell_commands(self, plan: Plan) -> list[str]:
        reg = plan.registry
        key = plan.certificate.key  # as the real script: the plan's key kind
        newkey = "ec -pkeyopt ec_paramgen_curve:P-256" if key == "ecdsa-p256" else "rsa:4096"
        return [
            f"# on {plan.host.name}",
            f"mkdir -p {reg.storage} {reg.config_dir}/certs {reg.config_dir}/auth",
            f"openssl req -x509 -newkey {newkey} -days {plan.certificate.days} -nodes \\",
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
        clients = [c for c in plan.clients if c.address != plan.host.address]
        registries = ["node1"] + [c.name for c in plan.replicas]  # as Ctx.registries
        hosts = registries + [c.name for c in clients]
        units = [
            (name, title, host)
            for name, title, scope in STEPS
            for host in (hosts if scope == "all" else registries)
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
            # like the engine: Docker's pull on Docker clients, each other runtime's own proof
            trust={
                h: True for h in ["node1"] + [c.name for c in clients if "docker" in c.runtimes]
            },
            image_ref=f"{plan.registry.address}/regwizard/hello:latest",
            proofs=[
                self._proof(c.name, r) for c in plan.clients for r in c.runtimes if r != "docker"
            ],
            # as steps/verify.prove_replicas: one Proof per registry host
            replicas=[self._replica_proof(i, registries) for i in range(len(registries))]
            if plan.replicas
            else [],
        )
        result.verification = verification
        result.ok = verification.ok
        result.seconds = 42.0
        send(RunFinished(result))
        return result

    def _replica_proof(self, i: int, registries: list[str]) -> Proof:
        name = registries[i]
        if name in self.failing_replicas:
            return Proof(name, "registry", False, REPLICA_FAILURE)
        nxt = registries[(i + 1) % len(registries)]
        how = f"upload started here finished on {nxt}; manifest {DIGEST[:19]}…; same catalog"
        return Proof(name, "registry", True, how, pulled=True)

    def _proof(self, client: str, runtime: str) -> Proof:
        if runtime in self.failing_proofs:
            return Proof(client, runtime, False, PROOF_FAILURES[runtime])
        if runtime == "podman":
            return Proof(client, runtime, True, PODMAN_PROOF, pulled=True)
        return Proof(client, runtime, True, CONTAINERD_PROOF)

    def gc(
        self,
        plan: Plan,
        secrets: Secrets,
        *,
        dry_run: bool,
        delete_untagged: bool,
        emit,
        cancel: threading.Event,
    ) -> GcResult:
        self.gc_calls.append((plan, dry_run, delete_untagged))
        host = plan.host.name
        result = GcResult(dry_run=dry_run, delete_untagged=delete_untagged)
        phases = [("check", "Check the registry"), ("measure", "Measure the storage")]
        if not dry_run:
            phases.append(("read-only", "Switch the registry to read-only"))
        for name, title in phases:
            emit(StepStarted(name, host, title))
            emit(StepFinished(name, host, "changed", 0.1, f"{title}: done"))
        result.bytes_before = 734_003_200
        emit(StepStarted("collect", host, "registry garbage-collect"))
        blobs = [f"sha256:{i:02x}" + "0" * 62 for i in range(3)]
        emit(GcOutput("collect", host, "regwizard/hello", 0, 0))
        emit(GcOutput("collect", host, f"regwizard/hello: marking manifest {DIGEST} ", 0, 0))
        emit(
            GcOutput(
                "collect",
                host,
                "1 blobs marked, 3 blobs and 0 manifests eligible for deletion",
                0,
                0,
            )
        )
        for i, b in enumerate(blobs):
            emit(GcOutput("collect", host, f"blob eligible for deletion: {b}", i + 1, 0))
        result.blobs, result.marked = 3, 1
        if self.gc_mode == "fail":
            result.failure = StepFailed(
                "collect", host, "registry garbage-collect failed (exit code 1): failed to "
                "garbage collect: failed to mark: boom", "read its output; the registry is "
                "switched back to read-write, nothing else changed",
            )  # fmt: skip
            emit(result.failure)
        else:
            emit(StepFinished("collect", host, "changed", 2.0, "3 blob(s) deleted"))
        if dry_run:
            result.eligible_bytes = 209_715_200
        else:
            result.bytes_after = 524_288_000 if self.gc_mode != "fail" else 734_003_200
            result.read_only_seconds = 4.2
        # like gc.collect: the phases as one progress, live until GcFinished
        emit(StepProgress("gc", host, "gc: collecting, 3 blob(s) to delete", 4, 7, "phases"))
        result.ok = result.failure is None
        result.seconds = 6.0
        emit(GcFinished(result))
        return result
