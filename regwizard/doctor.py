"""Doctor: check a registry setup against its plan, read-only, and name every problem.

``diagnose(plan, secrets, *, emit=None, cancel=None) -> DoctorReport`` connects to the
plan's hosts and runs every check without changing anything: the registry container
(state, restart policy, crash loop with its last log lines), TLS and the port mapping,
the certificate the registry really serves, anonymous access, the htpasswd file the
container really reads, where the images really live, /etc/hosts and certs.d on every
host, and what ``regwizard apply`` would change (each step's read-only ``check``).

Each :class:`Finding` carries the check, the host, a severity (``ok``/``warn``/``fail``),
a message, the evidence (what a Docker user sees, e.g. ``x509: certificate relies on
legacy Common Name field, use SANs instead``) and the fix. ``emit(finding)`` is called
for each one as it is found. Exit codes: 0 healthy, 1 findings, 2 could not check.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

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
    "hosts-file",
    "trust",
    "plan",
)
UNKNOWN_CA = "x509: certificate signed by unknown authority"
PLAIN_HTTP = "http: server gave HTTP response to HTTPS client"
LOGIN_401 = "unauthorized: authentication required"


@dataclass(frozen=True)
class Finding(Event):
    check: str  # one of CHECKS
    host: str  # host label
    severity: str  # ok | warn | fail
    message: str
    evidence: str = ""  # what the user sees: Docker's error text, log lines, file lines
    fix: str = ""


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    incomplete: list[str] = field(default_factory=list)  # what could not be checked, and why

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != "ok"]

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


# --------------------------------------------------------------------------- live probe


@dataclass
class LiveProbe:
    url: str
    connected: bool = False
    tls: bool = False
    plain_http: bool = False
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    peer_pem: bytes = b""
    docker_error: str = ""  # what Docker would print for this failure


def _plain_http_answers(target: str, port: int, host: str, timeout: float) -> bool:
    try:
        with socket.create_connection((target, port), timeout) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            return s.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def live_probe(
    domain: str,
    target: str,
    port: int,
    *,
    auth: tuple[str, str] | None = None,
    timeout: float = 5.0,
) -> LiveProbe:
    """GET /v2/ over TLS *without* verifying (we want to see what is served), as Docker would."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    addr = domain if port == 443 else f"{domain}:{port}"
    p = LiveProbe(url=f"https://{addr}/v2/")
    where = f"{target}:{port}"
    try:
        sock = socket.create_connection((target, port), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else +40 ms (Nagle)
    except ConnectionRefusedError:
        p.docker_error = f'Get "{p.url}": dial tcp {where}: connect: connection refused'
        return p
    except TimeoutError:
        p.docker_error = f'Get "{p.url}": dial tcp {where}: i/o timeout'
        return p
    except OSError as e:
        p.docker_error = f'Get "{p.url}": dial tcp {where}: {e.strerror or e}'
        return p
    p.connected = True
    sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    sslctx.check_hostname = False
    sslctx.verify_mode = ssl.CERT_NONE
    try:
        ss = sslctx.wrap_socket(sock, server_hostname=domain)
    except (ssl.SSLEOFError, ConnectionResetError, EOFError) as e:
        sock.close()
        if _plain_http_answers(target, port, addr, timeout):
            p.plain_http = True
            p.docker_error = f'Get "{p.url}": {PLAIN_HTTP}'
        else:
            what = "EOF" if not isinstance(e, ConnectionResetError) else "connection reset by peer"
            p.docker_error = f'Get "{p.url}": {what}'
        return p
    except (ssl.SSLError, OSError) as e:
        sock.close()
        if _plain_http_answers(target, port, addr, timeout):
            p.plain_http = True
            p.docker_error = f'Get "{p.url}": {PLAIN_HTTP}'
        else:
            p.docker_error = f'Get "{p.url}": {getattr(e, "reason", None) or e}'
        return p
    p.tls = True
    der = ss.getpeercert(binary_form=True)
    if der:
        p.peer_pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    conn = http.client.HTTPConnection(domain, port, timeout=timeout)
    conn.sock = ss
    headers = {"User-Agent": "regwizard-doctor", "Host": addr}
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        conn.request("GET", "/v2/", headers=headers)
        resp = conn.getresponse()
        p.status = resp.status
        p.headers = {k.lower(): v for k, v in resp.getheaders()}
        resp.read(65536)
    except (OSError, http.client.HTTPException) as e:
        p.docker_error = f'Get "{p.url}": {e or type(e).__name__}'
    finally:
        conn.close()
    return p


# --------------------------------------------------------------------------- helpers


def _docker_says(problem: str) -> str:
    m = re.search(r'Docker (?:reports|rejects it):? "(.*?)"', problem)
    return m.group(1) if m else ""


def _classify_cert_problem(problem: str) -> tuple[str, str]:
    """(severity, evidence) for one pki.cert_problems() message."""
    from regwizard import pki

    if "no subjectAltName" in problem:
        return "fail", pki.LEGACY_CN
    if "expires on" in problem:
        return "warn", problem.split(";")[0]
    return "fail", _docker_says(problem) or problem


def _trusts(bundle: bytes | None, leaf_pem: bytes) -> bool:
    """True when a certs.d .crt file makes Docker accept this served certificate."""
    from regwizard import pki

    if not bundle or not leaf_pem:
        return False
    try:
        leaf = pki.load_cert(leaf_pem)
        cas = pki.load_certs(bundle)
    except RegwizardError:
        return False
    for ca in cas:
        if ca == leaf:
            return True
        ca_pem = pki.cert_to_pem(ca)
        if pki.verify_signed_by(leaf_pem, ca_pem):
            return True
    return False


def _short_logs(container, n: int = 8) -> str:
    try:
        text = container.logs(tail=n).decode(errors="replace")
    except Exception:  # noqa: BLE001
        return ""
    return clean(text, 1200)


# --------------------------------------------------------------------------- the doctor


class _Doctor:
    def __init__(self, plan: Plan, secrets: Secrets, emit, cancel: threading.Event) -> None:
        from regwizard.engine import host_entries
        from regwizard.steps import Ctx

        self.plan = plan
        self.secrets = secrets
        self.emit = emit
        self.cancel = cancel
        self.ctx = Ctx(plan, secrets, lambda e: None, cancel, dry_run=True)
        self.ctx.hosts = host_entries(plan)
        self.report = DoctorReport()
        self.lock = threading.Lock()
        self.docker_ok: dict[str, bool] = {}
        self.attrs: dict | None = None  # the registry container's inspect data
        self.container = None
        self.probe: LiveProbe | None = None
        self.served_pem: bytes = b""
        self.deferred: list[tuple] = []

    # -- recording

    def add(self, check: str, host: str, severity: str, message: str, evidence="", fix=""):
        f = Finding(check, host, severity, message, clean(evidence, 1500), fix)
        with self.lock:
            self.report.findings.append(f)
            self.emit(f)
        return f

    def guarded(self, check: str, host: str, fn: Callable[[], None]) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        try:
            fn()
        except Cancelled:
            raise
        except RegwizardError as e:
            self.add(check, host, "fail", f"cannot check: {e.cause}", e.evidence, e.fix)
            with self.lock:
                self.report.incomplete.append(f"{check}@{host}: {e.cause}")
        except Exception as e:  # noqa: BLE001 - a check that breaks is reported, not fatal
            msg = f"{type(e).__name__}: {clean(str(e), 300)}"
            self.add(check, host, "fail", f"cannot check: {msg}")
            with self.lock:
                self.report.incomplete.append(f"{check}@{host}: {msg}")

    # -- run

    def run(self) -> DoctorReport:
        t0 = time.monotonic()
        try:
            self._connect()
            reg = self.ctx.registry
            for e in self.ctx.hosts:
                if e.host is not None:
                    self.guarded("docker", e.label, lambda e=e: self._docker(e))
            self._probe()
            if reg.host is not None and self.docker_ok.get(reg.label):
                self.guarded("container", reg.label, self._container)
            if self.attrs is not None:
                self.guarded("tls", reg.label, self._tls)
                self.guarded("port", reg.label, self._port)
            elif reg.host is not None and self.docker_ok.get(reg.label):
                self.guarded("port", reg.label, self._port_free)
            if reg.host is not None:
                self.guarded("certificate", reg.label, self._certificate)
            if self.attrs is not None or (self.probe and self.probe.tls):
                self.guarded("auth", reg.label, self._auth)
            if self.secrets.verify_password and self.probe and self.probe.tls:
                self.guarded("login", reg.label, self._login)
            if self.attrs is not None:
                self.guarded("htpasswd", reg.label, self._htpasswd)
                self.guarded("storage", reg.label, self._storage)
            self._drift_certificate()
            with ThreadPoolExecutor(max_workers=min(8, len(self.ctx.hosts))) as pool:
                futs = [
                    pool.submit(self._client_checks, e)
                    for e in self.ctx.hosts
                    if e.host is not None
                ]
                for fut in futs:
                    fut.result()
            self._drift_registry()
        finally:
            for e in self.ctx.hosts:
                if e.host is not None:
                    try:
                        e.host.close()
                    except Exception:  # noqa: BLE001
                        pass
            self.report.seconds = time.monotonic() - t0
        return self.report

    # -- connect / docker

    def _connect(self) -> None:
        from regwizard import hosts
        from regwizard.engine import CONNECT_TIMEOUT

        def one(e) -> None:
            e.host = hosts.connect(
                e.conn, self.secrets, cancel=self.cancel, timeout=CONNECT_TIMEOUT
            )

        with ThreadPoolExecutor(max_workers=min(8, len(self.ctx.hosts))) as pool:
            futs = [(e, pool.submit(one, e)) for e in self.ctx.hosts]
            for e, fut in futs:
                err = fut.exception()
                if isinstance(err, Cancelled):
                    raise err
                if err is None:
                    who = "local" if e.conn.is_local else f"{e.conn.user}@{e.conn.address}"
                    self.add("connect", e.label, "ok", f"connected ({who})")
                elif isinstance(err, RegwizardError):
                    self.add("connect", e.label, "fail", err.cause, err.evidence, err.fix)
                    self.report.incomplete.append(f"connect@{e.label}: {err.cause}")
                else:
                    msg = f"{type(err).__name__}: {clean(str(err), 300)}"
                    self.add("connect", e.label, "fail", msg)
                    self.report.incomplete.append(f"connect@{e.label}: {msg}")

    def _docker(self, e) -> None:
        try:
            version = e.host.docker(30).version()
        except Cancelled:
            raise
        except RegwizardError as err:
            self.docker_ok[e.label] = False
            self.add(
                "docker",
                e.label,
                "fail",
                f"the Docker engine is unreachable: {err.cause}",
                err.evidence or err.cause,
                err.fix,
            )
            return
        self.docker_ok[e.label] = True
        self.add("docker", e.label, "ok", f"Docker {version.get('Version', '?')}")

    # -- registry host

    def _target(self) -> str:
        reg = self.plan.registry
        if reg.ip:
            return reg.ip
        try:
            socket.getaddrinfo(reg.domain, reg.port)
            return reg.domain
        except OSError:
            host = self.plan.host
            return "127.0.0.1" if host.is_local else host.address

    def _probe(self) -> None:
        reg = self.plan.registry
        self.probe = live_probe(reg.domain, self._target(), reg.port)
        self.served_pem = self.probe.peer_pem

    def _container(self) -> None:
        import docker.errors

        from regwizard.adopt import Candidate, published, registry_containers

        e = self.ctx.registry
        reg = self.plan.registry
        client = e.host.docker(60)
        try:
            c = client.containers.get(reg.container)
        except docker.errors.NotFound:
            others = [
                Candidate(o.name, (o.attrs.get("Config") or {}).get("Image", ""), o.status,
                          published(o.attrs)).describe()
                for o in registry_containers(client)
            ]  # fmt: skip
            self.add(
                "container",
                e.label,
                "fail",
                f"there is no container named {reg.container}",
                ("registry containers on this host: " + "; ".join(others)) if others else "",
                "regwizard apply creates it"
                + (
                    "; or adopt the existing one: regwizard adopt ... --container NAME"
                    if others
                    else ""
                ),
            )
            return
        self.container = c
        self.attrs = c.attrs
        state = c.attrs.get("State") or {}
        status = state.get("Status") or c.status
        restarts = int(c.attrs.get("RestartCount") or 0)
        image = (c.attrs.get("Config") or {}).get("Image", "")
        if status == "restarting" or state.get("Restarting"):
            self.add(
                "container",
                e.label,
                "fail",
                f"{c.name} is crash-looping (restarted {restarts} times, exit code "
                f"{state.get('ExitCode')})",
                _short_logs(c),
                "read its last log lines (docker logs " + c.name + "); regwizard apply "
                "rewrites the certificate, htpasswd and container from the plan",
            )
        elif status != "running":
            self.add(
                "container",
                e.label,
                "fail",
                f"{c.name} is {status} (exit code {state.get('ExitCode')}, since "
                f"{(state.get('FinishedAt') or '')[:19]})",
                _short_logs(c, 5),
                f"regwizard apply starts it (docker start {c.name})",
            )
        else:
            self.add(
                "container",
                e.label,
                "ok",
                f"{c.name} running ({image}) since {(state.get('StartedAt') or '')[:19]}",
            )
        policy = ((c.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
        if policy != "always":
            self.add(
                "restart",
                e.label,
                "warn",
                f"restart policy is {policy!r}: after a reboot or a Docker restart the registry "
                "stays down",
                f'docker inspect {c.name}: RestartPolicy.Name = "{policy}"',
                f"regwizard apply sets it (docker update --restart=always {c.name})",
            )
        else:
            self.add("restart", e.label, "ok", "restart policy always")

    def _env(self) -> dict[str, str]:
        from regwizard.adopt import env_dict

        return env_dict(self.attrs or {})

    def _tls(self) -> None:
        e = self.ctx.registry
        env = self._env()
        probe = self.probe
        if not env.get("REGISTRY_HTTP_TLS_CERTIFICATE") or (probe and probe.plain_http):
            self.add(
                "tls",
                e.label,
                "fail",
                "plain HTTP registry: no TLS (REGISTRY_HTTP_TLS_CERTIFICATE is not set); Docker "
                "refuses it unless every client lists it in insecure-registries",
                (probe.docker_error if probe and probe.plain_http else "") or PLAIN_HTTP,
                "regwizard apply runs it with a certificate with SANs, trusted in certs.d",
            )
        elif probe and probe.tls:
            self.add("tls", e.label, "ok", f"TLS answers on {probe.url.rsplit('/v2/', 1)[0]}")
        else:
            self.add(
                "tls",
                e.label,
                "ok",
                "TLS is configured (REGISTRY_HTTP_TLS_CERTIFICATE); the live check is under port",
            )

    def _port(self) -> None:
        from regwizard.adopt import listen_port, published

        e = self.ctx.registry
        reg = self.plan.registry
        attrs = self.attrs or {}
        env = self._env()
        cport = listen_port(env)
        pub = published(attrs)
        host_net = (attrs.get("HostConfig") or {}).get("NetworkMode") == "host"
        probe = self.probe
        evidence = probe.docker_error if probe and not probe.tls else ""
        addr_env = env.get("REGISTRY_HTTP_ADDR", "")
        listens = f"the registry listens on {cport}" + (
            f" (REGISTRY_HTTP_ADDR={addr_env})" if addr_env else ""
        )
        fix = f"regwizard apply publishes {reg.port} to the registry's own port ({cport})"
        if host_net:
            if cport != reg.port:
                self.add(
                    "port", e.label, "fail",
                    f"port mismatch: host networking and {listens}, the plan says {reg.port}",
                    evidence, fix,
                )  # fmt: skip
            else:
                self.add("port", e.label, "ok", f"host networking, {listens}")
            return
        mapping = ", ".join(f"-p {hp}:{cp}" for cp, hps in sorted(pub.items()) for hp in hps)
        if not pub:
            self.add(
                "port", e.label, "fail",
                f"the container publishes no port; clients cannot reach {listens.split(' (')[0]}",
                evidence, fix,
            )  # fmt: skip
        elif cport not in pub:
            self.add(
                "port", e.label, "fail",
                f"port mismatch: {mapping} but {listens}: connections are dropped",
                evidence, fix,
            )  # fmt: skip
        elif reg.port not in pub[cport]:
            self.add(
                "port", e.label, "fail",
                f"the plan says port {reg.port}, the container publishes {mapping}",
                evidence,
                f"set registry.port = {pub[cport][0]} in the plan, or run regwizard apply to "
                f"move the registry to {reg.port}",
            )  # fmt: skip
        elif probe is not None and not probe.connected:
            self.add(
                "port", e.label, "fail",
                f"{mapping} and {listens}, but nothing answers on {self._target()}:{reg.port}",
                evidence, "check the container (docker logs) and firewalls between the hosts",
            )  # fmt: skip
        else:
            self.add("port", e.label, "ok", f"{mapping}, {listens}")
        self._port_free(check_only_others=True)

    def _port_free(self, check_only_others: bool = False) -> None:
        from regwizard.adopt import published

        e = self.ctx.registry
        reg = self.plan.registry
        for c in e.host.docker(60).containers.list():
            if c.name == reg.container:
                continue
            for hps in published(c.attrs).values():
                if reg.port in hps:
                    self.add(
                        "port",
                        e.label,
                        "fail",
                        f"port {reg.port} is held by another container, {c.name}",
                        f"Bind for 0.0.0.0:{reg.port} failed: port is already allocated",
                        f"stop it (docker stop {c.name}), adopt it (regwizard adopt ... "
                        f"--container {c.name}), or choose another port in the plan",
                    )
                    return
        if not check_only_others:
            self.add("port", e.label, "ok", f"port {reg.port} is free for {reg.container}")

    def _certificate(self) -> None:
        from regwizard import pki
        from regwizard.adopt import read_container_file

        e = self.ctx.registry
        reg, spec = self.plan.registry, self.plan.certificate
        pem, source = self.served_pem, "served"
        if not pem and self.attrs is not None:
            path = self._env().get("REGISTRY_HTTP_TLS_CERTIFICATE", "")
            if path:
                data, where = read_container_file(e.host, self.container, self.attrs, path)
                pem, source = data or b"", where
        if not pem:
            data = e.host.read_file(self.ctx.cert_path)
            pem, source = data or b"", self.ctx.cert_path
        if not pem:
            if self.probe and self.probe.plain_http:
                return  # tls already says it all
            self.add(
                "certificate",
                e.label,
                "fail",
                f"no certificate: the registry serves none and none is at {self.ctx.cert_path}",
                self.probe.docker_error if self.probe else "",
                "regwizard apply issues one with SANs",
            )
            return
        info = pki.inspect_cert(pem)
        problems = pki.cert_problems(info, domain=reg.domain, ip=reg.ip, extra_sans=spec.extra_sans)
        what = "the served certificate" if source == "served" else f"the certificate {source}"
        fix = (
            "replace certificate.cert_file/key_file with a certificate whose SANs cover "
            f"{reg.domain}" + (f" and {reg.ip}" if reg.ip else "")
            if spec.mode == "provided"
            else "regwizard apply issues a new one with SANs for "
            + ", ".join(v for v in (reg.domain, reg.ip, *spec.extra_sans) if v)
            + f" ({spec.days} days), restarts the registry and updates certs.d on every host"
        )
        for problem in problems:
            sev, evidence = _classify_cert_problem(problem)
            self.add("certificate", e.label, sev, f"{what}: {problem}", evidence, fix)
        if not problems:
            sans = ", ".join([*info.dns_sans, *info.ip_sans])
            self.add(
                "certificate",
                e.label,
                "ok",
                f"{what}: SANs {sans}; {info.days_left} days left ({info.key_type})",
            )
        if source == "served":
            on_disk = e.host.read_file(self.ctx.cert_path)
            mine = (self.attrs or {}).get("Config", {}).get("Labels") or {}
            if on_disk and on_disk != pem and "io.regwizard.managed" in mine:
                self.add(
                    "certificate",
                    e.label,
                    "warn",
                    f"the registry still serves an older certificate than {self.ctx.cert_path} "
                    "(TLS is loaded at start)",
                    f"served SHA256 {info.sha256[:23]}…",
                    f"docker restart {reg.container}",
                )

    def _auth(self) -> None:
        e = self.ctx.registry
        env = self._env() if self.attrs is not None else {}
        probe = self.probe
        auth = env.get("REGISTRY_AUTH", "")
        if probe and probe.tls and probe.status == 200:
            self.add(
                "auth",
                e.label,
                "fail",
                "registry without auth: anonymous requests are served, anyone can push and "
                "pull" + ("" if auth else " (no REGISTRY_AUTH in the container)"),
                f"GET {probe.url} without credentials -> 200",
                "add a user to the plan (regwizard user hash NAME) and run regwizard apply: "
                "it turns on htpasswd auth",
            )
        elif probe and probe.tls and probe.status == 401:
            realm = probe.headers.get("www-authenticate", "")
            self.add("auth", e.label, "ok", f"anonymous requests refused (401, {realm})")
        elif self.attrs is not None and auth != "htpasswd":
            self.add(
                "auth",
                e.label,
                "fail",
                "registry without htpasswd auth"
                + (f" (REGISTRY_AUTH={auth})" if auth else " (no REGISTRY_AUTH)"),
                "docker inspect: no REGISTRY_AUTH=htpasswd in the environment",
                "run regwizard apply: it turns on htpasswd auth",
            )
        elif probe and probe.tls:
            self.add(
                "auth",
                e.label,
                "warn",
                f"GET /v2/ without credentials -> {probe.status}",
                probe.docker_error,
                "check the registry logs",
            )
        else:
            self.add("auth", e.label, "ok", "REGISTRY_AUTH=htpasswd (the registry does not answer)")

    def _login(self) -> None:
        from regwizard import htpasswd

        e = self.ctx.registry
        reg = self.plan.registry
        user, pw = self.plan.verify_user, self.secrets.verify_password
        if not user:
            return
        p = live_probe(reg.domain, self._target(), reg.port, auth=(user, pw))
        if p.status == 200:
            self.add("login", e.label, "ok", f"login as {user} works")
            return
        u = self.plan.user(user)
        if u is not None and not htpasswd.check_password(u.bcrypt, pw):
            fix = f"the password given is not the one of the plan's hash for {user}"
        else:
            fix = f"regwizard apply writes the plan's bcrypt hash for {user} into htpasswd"
        self.add(
            "login",
            e.label,
            "fail",
            f"login as {user} refused (HTTP {p.status or '-'})",
            f"login attempt to {p.url} failed with status: 401 Unauthorized"
            if p.status == 401
            else p.docker_error,
            fix,
        )

    def _htpasswd(self) -> None:
        from regwizard import htpasswd
        from regwizard.adopt import host_path, read_container_file

        e = self.ctx.registry
        env = self._env()
        if env.get("REGISTRY_AUTH") != "htpasswd":
            return
        path = env.get("REGISTRY_AUTH_HTPASSWD_PATH", "")
        if not path:
            self.add(
                "htpasswd", e.label, "fail", "REGISTRY_AUTH=htpasswd without a path",
                "REGISTRY_AUTH_HTPASSWD_PATH is not set", "run regwizard apply",
            )  # fmt: skip
            return
        data, where = read_container_file(e.host, self.container, self.attrs, path)
        fix_users = "regwizard apply writes the plan's bcrypt hashes"
        if data is None:
            self.add(
                "htpasswd", e.label, "warn",
                f"{where} does not exist: the registry creates it with a user 'docker' and a "
                "random password (printed in its log)",
                _short_logs(self.container, 5), fix_users,
            )  # fmt: skip
            return
        text = data.decode(errors="replace")
        entries = htpasswd.parse(text)
        bad = [x for x in entries if not htpasswd.is_bcrypt(x.hash)]
        invalid = htpasswd.invalid_lines(text)
        _, mount = host_path(self.attrs.get("Mounts") or [], path)
        if bad:
            names = ", ".join(f"{x.name} ({htpasswd.hash_kind(x.hash)})" for x in bad)
            in_plan = [x.name for x in bad if self.plan.user(x.name)]
            not_in_plan = [x.name for x in bad if not self.plan.user(x.name)]
            fix = []
            if in_plan:
                fix.append(f"regwizard apply replaces {', '.join(in_plan)} with the plan's bcrypt")
            for n in not_in_plan:
                fix.append(
                    f"give {n} a new password (regwizard user hash {n}), add it to [[users]], "
                    "then regwizard apply"
                )
            self.add(
                "htpasswd",
                e.label,
                "fail",
                f"non-bcrypt htpasswd line(s) in {where}: {names}; the registry ignores them, "
                "so these users get 401",
                "\n".join(
                    [f"{x.name}:{x.hash[:7]}…" for x in bad]
                    + [f"docker login: {LOGIN_401} / 401 Unauthorized"]
                ),
                "; ".join(fix),
            )
        if invalid:
            self.add(
                "htpasswd", e.label, "fail",
                f"{where}: line(s) {', '.join(map(str, invalid))} have no ':'; the registry "
                "rejects the whole file",
                "", "regwizard apply rewrites the file without them",
            )  # fmt: skip
        if mount is not None and (mount.get("Destination") or "") == path:
            self.add(
                "htpasswd",
                e.label,
                "warn",
                f"htpasswd is mounted as a single file ({mount.get('Source')} -> {path}): a "
                "rename-style rewrite (editors, htpasswd -B, regwizard) leaves the registry "
                "reading the old file",
                f"docker inspect: bind {mount.get('Source')}:{path}",
                "regwizard apply mounts the auth directory instead (-v DIR/auth:/auth:ro)",
            )
        if not bad and not invalid:
            names = ", ".join(x.name for x in entries) or "none"
            self.add("htpasswd", e.label, "ok", f"{len(entries)} user(s), all bcrypt: {names}")

    def _storage(self) -> None:
        from regwizard.adopt import data_mount, env_dict, is_anonymous_volume

        e = self.ctx.registry
        reg = self.plan.registry
        attrs = self.attrs or {}
        env = env_dict(attrs)
        root, src, m = data_mount(attrs)
        sp = env.get("STORAGE_PATH", "")
        repos = ""
        if src:
            # a repository is a directory holding _manifests (names may have slashes)
            r = e.host.run(
                ["sh", "-c", 'cd "$1/docker/registry/v2/repositories" 2>/dev/null && '
                 "find . -maxdepth 6 -type d -name _manifests -prune | head -n 1000", "sh", src],
                check=False, timeout=30,
            )  # fmt: skip
            names = sorted(
                ln[2:].rsplit("/_manifests", 1)[0]
                for ln in r.stdout.decode(errors="replace").splitlines()
                if ln.startswith("./")
            )
            repos = f"{len(names)} repositories" + (f" ({', '.join(names[:5])})" if names else "")
        sp_text = (
            f"-e STORAGE_PATH={sp} is a registry v1 setting that v2 ignores: images go to {root}; "
            if sp
            else ""
        )
        fix = (
            f"regwizard apply copies the images to {reg.storage} (bound at {root}) before it "
            "replaces the container; the old volume is kept, nothing is deleted"
        )
        if m is None:
            self.add(
                "storage", e.label, "fail",
                f"storage not persisted: {sp_text}images are in the container's writable layer; "
                "`docker rm` deletes them",
                f"docker inspect: no mount at {root}", fix,
            )  # fmt: skip
        elif is_anonymous_volume(m):
            self.add(
                "storage", e.label, "fail",
                f"storage not persisted: {sp_text}images are in anonymous volume "
                f"{m.get('Name', '')[:12]}; `docker rm -v` or `docker volume prune` deletes them",
                f"{root} <- volume {m.get('Name', '')} ({src}): {repos or 'empty'}", fix,
            )  # fmt: skip
        elif m.get("Type") != "bind" or (src or "").rstrip("/") != reg.storage.rstrip("/"):
            kind = f"volume {m.get('Name')}" if m.get("Type") == "volume" else src
            self.add(
                "storage", e.label, "warn",
                f"{sp_text}images are in {kind}, not in the plan's storage {reg.storage}",
                f"{root} <- {kind}: {repos or 'empty'}", fix,
            )  # fmt: skip
        elif sp:
            self.add(
                "storage", e.label, "warn", sp_text.rstrip("; "),
                f"docker inspect: STORAGE_PATH={sp}",
                "regwizard apply recreates the container without it",
            )  # fmt: skip
        else:
            self.add("storage", e.label, "ok", f"{root} <- {src} (bind): {repos or 'empty'}")

    # -- every host

    def _client_checks(self, e) -> None:
        from regwizard.steps import HostsFile

        if any(x is e for x in HostsFile().targets(self.ctx)):
            self.guarded("hosts-file", e.label, lambda: self._hosts_file(e))
        else:
            self.guarded("hosts-file", e.label, lambda: self._resolves(e))
        self.guarded("trust", e.label, lambda: self._trust(e))

    def _hosts_file(self, e) -> None:
        from regwizard.steps import HostsFile

        reg = self.plan.registry
        f = HostsFile().check(self.ctx, e)
        if not f.needed:
            self.add("hosts-file", e.label, "ok", f.detail)
            return
        wrong = f.data.get("wrong") or []
        if wrong:
            msg = f"/etc/hosts maps {reg.domain} to {', '.join(wrong)}, not {reg.ip}"
            evidence = (
                f"Docker on {e.label} connects to {wrong[0]}:{reg.port}; typical errors: "
                f"connection refused, or x509: certificate is valid for ..., not {reg.domain}"
            )
        else:
            msg = f"{reg.domain} is not in /etc/hosts and does not resolve to {reg.ip}"
            evidence = (
                f'Get "https://{reg.address}/v2/": dial tcp: lookup {reg.domain}: no such host'
            )
        self.add(
            "hosts-file",
            e.label,
            "fail",
            msg,
            evidence,
            f"regwizard apply writes '{reg.ip} {reg.domain}' into /etc/hosts (the Docker daemon "
            "resolves the name, so every Docker host needs it)",
        )

    def _resolves(self, e) -> None:
        reg = self.plan.registry
        r = e.host.run(["getent", "ahosts", reg.domain], check=False, timeout=15)
        addrs = sorted({ln.split()[0] for ln in r.stdout.decode().splitlines() if ln.strip()})
        if addrs:
            self.add("hosts-file", e.label, "ok", f"{reg.domain} resolves to {', '.join(addrs)}")
        else:
            self.add(
                "hosts-file",
                e.label,
                "fail",
                f"{reg.domain} does not resolve on {e.label}",
                f'Get "https://{reg.address}/v2/": dial tcp: lookup {reg.domain}: no such host',
                "set registry.ip and manage_hosts_file = true, or add the name to DNS",
            )

    def _trust(self, e) -> None:
        from regwizard.steps import stray_certs_d_files

        reg = self.plan.registry
        h = e.host
        base = "/etc/docker/certs.d"
        want = f"{base}/{reg.address}"
        anchor = self.served_pem or self.ctx.trust_pem
        r = h.run(
            ["sh", "-c", 'cd -- "$1" 2>/dev/null && ls -1A', "sh", base], check=False, timeout=30
        )
        dirs = set(r.stdout.decode(errors="replace").split())
        # the same registry spelled another way (reg.example.test vs reg.example.test:443,
        # no port, the short name, the IP); a dir for another port is another registry
        short = reg.domain.split(".")[0]
        misnamed = []
        for d in sorted(dirs):
            host_part, _, port_part = d.partition(":")
            if (
                d != reg.address
                and host_part in {reg.domain, short, reg.ip} - {""}
                and port_part in ("", "443", str(reg.port))
            ):
                misnamed.append(d)
        fix = f"regwizard apply writes {want}/ca.crt (read at each connection: no restart)"
        if reg.address not in dirs:
            if misnamed:
                self.add(
                    "trust", e.label, "fail",
                    f"certs.d directory misnamed: {', '.join(f'{base}/{d}' for d in misnamed)}; "
                    f"Docker only looks in {want}/ (" + (
                        "port 443 is written without :443" if reg.port == 443
                        else f"the port {reg.port} is part of the name")
                    + ")",
                    UNKNOWN_CA, fix,
                )  # fmt: skip
            else:
                self.add(
                    "trust", e.label, "fail",
                    f"{want}/ is missing: Docker on {e.label} does not trust the registry",
                    UNKNOWN_CA, fix,
                )  # fmt: skip
            return
        stray = stray_certs_d_files(h, want)
        for name, err in stray:
            self.add(
                "trust", e.label, "fail",
                f"{want}/{name}: Docker refuses the whole directory (a CA must end in .crt)",
                err, "regwizard apply moves it aside and writes ca.crt",
            )  # fmt: skip
        r = h.run(
            ["sh", "-c", 'cd -- "$1" && for f in *.crt; do [ -f "$f" ] && cat -- "$f"; done; :',
             "sh", want],
            check=False, timeout=30,
        )  # fmt: skip
        bundle = r.stdout
        if not bundle.strip():
            self.add(
                "trust", e.label, "fail",
                f"{want}/ has no .crt file: Docker does not trust the registry",
                UNKNOWN_CA, fix,
            )  # fmt: skip
            return
        if anchor and not _trusts(bundle, anchor):
            self.add(
                "trust", e.label, "fail",
                f"the .crt files in {want}/ do not match the certificate the registry "
                + ("serves" if self.served_pem else "will serve"),
                UNKNOWN_CA, fix,
            )  # fmt: skip
            return
        if not stray:
            self.add("trust", e.label, "ok", f"{want}/ trusts the served certificate")

    # -- what apply would change

    def _drift_certificate(self) -> None:
        from regwizard.steps import Certificate

        e = self.ctx.registry
        if e.host is None:
            return
        self._drift(Certificate(), e, defer=True)  # sets ctx.trust_pem; reported with the rest

    def _drift_registry(self) -> None:
        from regwizard.steps import Container, Htpasswd, Image, Storage, Trust

        for args in self.deferred:
            self.add(*args)
        errors = validate_plan(self.plan)
        if errors:
            self.add(
                "plan",
                "plan",
                "warn",
                f"the plan has {len(errors)} problem(s); apply refuses it until fixed: "
                + "; ".join(err.cause for err in errors[:3]),
                "",
                errors[0].fix or "edit the plan",
            )
        e = self.ctx.registry
        if e.host is not None:
            for step in (Htpasswd(), Storage()):
                self._drift(step, e)
            if self.docker_ok.get(e.label):
                for step in (Image(), Container()):
                    self._drift(step, e)
        for h in self.ctx.hosts:
            if h.host is not None and self.ctx.trust_pem:
                self._drift(Trust(), h)
        if not self.report.of("plan") and e.host is not None:
            self.add("plan", e.label, "ok", "apply would change nothing")

    def _drift(self, step, e, defer: bool = False) -> None:
        def run() -> None:
            f = step.check(self.ctx, e)
            if f.needed:
                args = (
                    "plan", e.label, "warn", f"apply would change {step.name}: {f.detail}",
                    "\n".join(f.commands[:3]), "regwizard apply",
                )  # fmt: skip
                if defer:
                    self.deferred.append(args)
                else:
                    self.add(*args)

        self.guarded("plan", e.label, run)


def diagnose(
    plan: Plan,
    secrets: Secrets,
    *,
    emit: Callable[[Finding], None] | None = None,
    cancel: threading.Event | None = None,
) -> DoctorReport:
    """Check the setup a plan describes, read-only. Never raises for what it finds.

    Raises only Cancelled. Unreachable hosts and checks that broke are findings too,
    listed in ``report.incomplete`` (exit code 2).
    """
    return _Doctor(plan, secrets, emit or (lambda f: None), cancel or threading.Event()).run()


# --------------------------------------------------------------------------- CLI


def format_finding(f: Finding) -> list[str]:
    lines = [f"{f.severity:<4}  {f.check:<11} {f.host:<16} {f.message}"]
    if f.severity != "ok":
        if f.evidence:
            ev = f.evidence.splitlines()
            lines.append(f"      evidence: {ev[0]}")
            lines.extend(f"                {x}" for x in ev[1:8])
        if f.fix:
            lines.append(f"      fix:      {f.fix}")
    return lines


def doctor_cli(args) -> int:
    import os

    from regwizard.cli import read_connection_secrets
    from regwizard.plan import load_plan

    plan = load_plan(args.plan, validate=False)
    secrets = Secrets(accepted_host_keys=set(args.accept_host_key))
    read_connection_secrets(plan, secrets)  # SSH / sudo passwords, as for apply
    if args.password_file:
        from regwizard.cli import read_verify_password

        secrets.verify_password = read_verify_password(args.password_file, plan.verify_user)
    elif os.environ.get("REGWIZARD_PASSWORD"):
        secrets.verify_password = os.environ["REGWIZARD_PASSWORD"]

    def emit(f: Finding) -> None:
        if not args.json:
            print("\n".join(format_finding(f)), flush=True)

    report = diagnose(plan, secrets, emit=emit)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    fails = sum(f.severity == "fail" for f in report.findings)
    warns = sum(f.severity == "warn" for f in report.findings)
    if report.exit_code == 0:
        summary = f"healthy: {len(report.findings)} checks ok in {report.seconds:.1f}s"
    elif report.exit_code == 1:
        summary = (
            f"{fails} failure(s), {warns} warning(s) in {report.seconds:.1f}s; "
            f"fix: regwizard apply {args.plan}"
        )
    else:
        summary = "could not check everything: " + "; ".join(report.incomplete[:3])
    print(f"doctor: {summary}", file=sys.stderr)
    return report.exit_code
