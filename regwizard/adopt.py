"""Adopt a registry someone already runs: read it (never change it) and write a plan.

``adopt(conn, secrets, container=None) -> Adoption`` connects to the host, finds the
registry container (image ``registry``/``distribution``, or the one named), and reads it
through ``facts`` (inspect data and its configuration file, environment overrides
included), the certificate it serves from disk and its htpasswd users.

The plan describes *the intended setup*: the same domain, port, container name, image,
certificate subject and bcrypt users; storage in a host directory (the one the images
are in, or the one the tutorial meant with ``STORAGE_PATH``); a config directory that
keeps a usable certificate where it is. ``regwizard apply`` then converges to it, copying
images out of a volume or the container first. A pull-through cache keeps its upstream
URL (its login is never read into the plan: it is given at apply); S3 storage becomes
``[storage] driver = "s3"`` with its endpoint, bucket, region, access key and root (the
secret key never: it is given at apply). What a plan cannot express (another storage
driver, a plain-http upstream, token auth) is said in ``refused``: apply will not
replace it.

``adoption(found, conn)`` is the pure part (facts -> plan + notes): offline tests and
the fuzzer feed it directly.
"""

from __future__ import annotations

import copy
import dataclasses
import posixpath
import threading
from dataclasses import dataclass, field
from typing import Literal

from regwizard import htpasswd, pki, problems
from regwizard.errors import Cancelled, RegwizardError
from regwizard.facts import certsd
from regwizard.facts.registry import RegistryFacts, describe, looks_like_registry
from regwizard.plan import (
    KEY_KINDS,
    CertificateSpec,
    Connection,
    Plan,
    RegistrySpec,
    StorageSpec,
    User,
    VerifySpec,
    check_common_name,
    check_config_dir,
    check_country,
    check_domain,
    check_email,
    check_image,
    check_port,
    check_realm,
    check_san,
    check_storage,
    check_subject_text,
    is_ip,
    validate_plan,
)

DEFAULT_STORAGE = "/opt/docker-image"
DEFAULT_CONFIG = "/etc/regwizard"


def parse_target(text: str, port: int | None = None) -> tuple[str, str, int]:
    """``[user@]host[:port]`` (IPv6 in brackets) -> (user, address, port).

    Raises RegwizardError (cause and fix) for anything else: a port outside 1..65535,
    a user or address the plan would refuse (so nothing is looked up or connected to)."""
    from regwizard.plan import check_address, check_ssh_user

    if not isinstance(text, str):
        raise RegwizardError("the target must be text", "write [user@]host[:port]")
    shown = repr(text if len(text) <= 80 else text[:77] + "...")

    def bad_port(port: str) -> RegwizardError:
        return RegwizardError(
            f"bad SSH port {port!r} in {shown}: a port is a whole number from 1 to 65535",
            "write [user@]host:PORT (e.g. root@10.0.0.2:2222), or pass --port PORT",
        )

    def port_of(ptext: str) -> int:
        if not (ptext.isascii() and ptext.isdigit()) or len(ptext) > 5:
            raise bad_port(ptext if len(ptext) <= 12 else ptext[:9] + "...")
        return int(ptext)

    user, sep, rest = text.rpartition("@")
    if not sep:
        user, rest = "root", text
    addr, p = rest, 22
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise RegwizardError(f"bad host {shown}: missing ]", "write [IPv6]:port")
        addr, tail = rest[1:end], rest[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise RegwizardError(f"bad host {shown}", "write user@[IPv6]:PORT")
            p = port_of(tail[1:])
        if not is_ip(addr) or ":" not in addr:
            raise RegwizardError(
                f"bad host {shown}: brackets hold an IPv6 address", "write user@[IPv6]:PORT"
            )
    elif rest.count(":") == 1:
        addr, _, ptext = rest.partition(":")
        p = port_of(ptext)
    if not addr or not user:
        raise RegwizardError(f"bad host {shown}", "write user@host, e.g. root@10.0.0.2")
    if port is not None:
        if isinstance(port, bool) or not isinstance(port, int):
            raise bad_port(str(port))
        p = port
    if check_port(p):
        raise bad_port(str(p))
    msg = check_ssh_user(user)
    if msg:
        raise RegwizardError(f"bad user in {shown}: {msg}", "write user@host, e.g. root@10.0.0.2")
    msg = check_address(addr)
    if msg:
        raise RegwizardError(
            f"bad host in {shown}: {msg}",
            "give a host name (at most 253 characters, parts of at most 63) or an IP address",
        )
    return user, addr, p


@dataclass(frozen=True)
class CertSummary:
    """The registry's certificate: ``details`` (CN, SANs, key, lifetime) and days left."""

    details: str
    days_left: int  # negative once expired


@dataclass(frozen=True)
class DataPlace:
    """Where the images are when storage is not persisted."""

    kind: Literal["layer", "anonymous-volume", "volume", "tmpfs"]
    name: str = ""  # the volume's name; an anonymous one shortened to 12 characters

    @property
    def where(self) -> str:
        if self.kind == "layer":
            return "in the container's writable layer"
        if self.kind == "tmpfs":
            return "on a tmpfs"
        if self.kind == "anonymous-volume":
            return f"in anonymous volume {self.name}"
        return f"in volume {self.name}"


@dataclass
class Adoption:
    """What adopt found: the plan of the intended setup, notes in words, and facts."""

    plan: Plan
    notes: list[str] = field(default_factory=list)
    ignored_users: list[tuple[str, str]] = field(default_factory=list)  # non-bcrypt: (name, kind)
    unpersisted_data: DataPlace | None = None  # None: the data is in a bound host directory
    certificate: CertSummary | None = None  # None: no TLS, or the certificate is unreadable
    plain_http: bool = False  # no TLS certificate configured
    refused: list[str] = field(default_factory=list)  # what a plan cannot express


@dataclass(frozen=True)
class Found:
    """What adopt read of the host; ``adoption`` turns it into a plan."""

    facts: RegistryFacts
    image_tags: tuple[str, ...] = ()
    cert: bytes | None = None
    cert_where: str = ""
    htpasswd: bytes | None = None
    htpasswd_where: str = ""
    used_dirs: frozenset[str] = frozenset()  # host dirs other containers bind
    certs_d: tuple[str, ...] = ()  # entries of /etc/docker/certs.d on the registry host
    host_label: str = ""
    fingerprint: str = ""
    host_runtimes: tuple[str, ...] = ()  # what the registry host runs (as a client)
    local_runtimes: tuple[str, ...] = ()  # what this machine runs
    # the host through ~/.ssh/config, when the plan's host is an alias there:
    # route = "alias (→ user@hostname:port via ~/.ssh/config)", hostname = its HostName
    route: str = ""
    hostname: str = ""


# --------------------------------------------------------------------------- reading


def find_container(client, name: str | None, where: str):  # noqa: ANN001, ANN201
    import docker.errors

    if name:
        try:
            return client.containers.get(name)
        except docker.errors.NotFound:
            raise RegwizardError(
                f"{where}: no container named {name!r}",
                "list them with `docker ps -a` on the host and pass --container NAME",
            ) from None
    found = []
    for c in client.containers.list(all=True):
        try:
            tags = list(c.image.tags)
        except Exception:  # noqa: BLE001 - the image may be gone
            tags = []
        if looks_like_registry(c.attrs, tags):
            found.append(c)
    if not found:
        raise RegwizardError(
            f"{where}: no registry container found (no image named registry or distribution)",
            "pass --container NAME, or set a registry up from scratch: regwizard plan new",
        )
    running = [c for c in found if c.status == "running"] or found
    if len(running) > 1:
        names = "; ".join(describe(c.attrs) for c in sorted(running, key=lambda c: c.name))
        raise RegwizardError(
            f"{where}: several registry containers: {names}", "pick one with --container NAME"
        )
    return running[0]


def read_found(host, container: str | None, check_cancel=lambda: None) -> Found:  # noqa: ANN001
    from regwizard.facts import read

    client = host.docker(60)
    c = find_container(client, container, host.label)
    check_cancel()
    c.reload()
    reader = read.container_reader(host, c)
    facts = read.facts_of(host, c)
    cert, cert_where = reader(facts.tls.certificate) if facts.tls.certificate else (None, "")
    ht, ht_where = reader(facts.auth.htpasswd) if facts.auth.htpasswd else (None, "")
    check_cancel()
    used: set[str] = set()
    for other in client.containers.list(all=True):
        if other.name == c.name:
            continue
        for m in other.attrs.get("Mounts") or []:
            if m.get("Type") == "bind" and m.get("Source"):
                used.add(str(m["Source"]).rstrip("/"))
    try:
        tags = tuple(c.image.tags)
    except Exception:  # noqa: BLE001
        tags = ()
    snap = read.snapshot(host, dirs=[certsd.CERTS_D])
    try:
        host_runtimes = tuple(host.facts().runtimes)
    except RegwizardError:
        host_runtimes = ()
    return Found(
        facts=facts,
        image_tags=tags,
        cert=cert,
        cert_where=cert_where,
        htpasswd=ht,
        htpasswd_where=ht_where,
        used_dirs=frozenset(used),
        certs_d=tuple(snap.dirs.get(certsd.CERTS_D) or ()),
        host_label=host.label,
        fingerprint=getattr(host, "fingerprint", "") or "",
        host_runtimes=host_runtimes,
        **_route_of(host),
    )


def _route_of(host) -> dict[str, str]:  # noqa: ANN001 - hosts.Host
    """``route`` / ``hostname`` for Found when ~/.ssh/config changed where we connected."""
    route = getattr(host, "route", None)
    if route is None or not route.from_config:
        return {}
    return {"route": route.describe(), "hostname": route.hostname}


def adopt(
    conn: Connection,
    secrets,  # noqa: ANN001
    container: str | None = None,
    *,
    cancel: threading.Event | None = None,
    timeout: float = 10.0,
) -> Adoption:
    """Read an existing registry on ``conn``: the plan of the intended setup, notes, facts.

    Read-only: nothing on the host is changed. Raises RegwizardError (connection,
    no/several registry containers).
    """
    from regwizard import hosts

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled()

    with hosts.connect(conn, secrets, cancel=cancel, timeout=timeout) as host:
        found = read_found(host, container, check_cancel)
    if not conn.is_local:
        try:  # this machine is planned as a client too: which runtimes does it have?
            with hosts.connect(Connection(), secrets, cancel=cancel, timeout=timeout) as here:
                found = dataclasses.replace(found, local_runtimes=tuple(here.facts().runtimes))
        except RegwizardError:
            pass
    else:
        found = dataclasses.replace(found, local_runtimes=found.host_runtimes)
    return adoption(found, conn)


# --------------------------------------------------------------------------- facts -> plan


def _free_dir(used: frozenset[str], wanted: list[str], check) -> str:  # noqa: ANN001
    """The first candidate dir that is valid and not mounted by another container."""
    for d in wanted:
        if check(d) is None and not any(
            u == d or u.startswith(d + "/") or d.startswith(u + "/") for u in used
        ):
            return d
    return wanted[-1]


def _domain_from(info: pki.CertInfo | None) -> str:
    if info is None:
        return ""
    for d in info.dns_sans:
        if not d.startswith("*."):
            return d
    cn = info.common_name
    return cn if cn and not is_ip(cn) and "." in cn else ""


def _config_dir_kept(f: RegistryFacts, domain: str) -> str:
    """A config dir whose files already sit where a plan puts them: keep it."""
    cert, key, ht = f.tls.certificate_host, f.tls.key_host, f.auth.htpasswd_host
    if not (cert and key):
        return ""
    for base, layout in (
        (posixpath.dirname(posixpath.dirname(posixpath.dirname(cert))), "current"),
        (posixpath.dirname(posixpath.dirname(cert)), "legacy"),
    ):
        sub = "certs/current" if layout == "current" else "certs"
        fits = (
            cert == f"{base}/{sub}/{domain}.crt"
            and key == f"{base}/{sub}/{domain}.key"
            and (not ht or ht == f"{base}/auth/htpasswd")
        )
        if fits and check_config_dir(base) is None:
            return base
    return ""


def adoption(found: Found, conn: Connection) -> Adoption:
    """The plan of the intended setup, and what was found, in words. Pure; never raises
    for what it reads (a malformed setup becomes notes and refusals)."""
    f = found.facts
    notes: list[str] = []
    out = Adoption(plan=Plan())
    notes.append(
        f"found container {f.name} ({f.image}), {f.status or 'unknown state'}, restart policy "
        f"{f.restart_policy}"
    )
    if f.config is not None and f.config.found:
        notes.append(
            f"configuration: {f.config.where or f.config.path} ({f.config.origin}); "
            "environment variables override it"
        )
    unsupported = problems.unsupported(f)
    for p in unsupported:
        out.refused.append(p.message)
        notes.append(f"{p.message}: apply will refuse to replace this container")
    proxy_url = ""
    if f.proxy_remote and problems.PROXY.id not in {p.id for p in unsupported}:
        proxy_url = f.proxy_remote
        notes.append(
            "a mirror: " + problems.MIRROR_NOTE.format(url=proxy_url) + "; the plan keeps it "
            "(registry.proxy_remote_url). Set [verify] mirror_image to a repository:tag that "
            "exists upstream (verify pulls it through the mirror instead of pushing)"
        )
        if f.proxy_login:
            notes.append(
                "the mirror logs in to its upstream: the login is not copied into the plan; "
                "it must be given at apply (REGWIZARD_UPSTREAM_USER and "
                "REGWIZARD_UPSTREAM_PASSWORD, --upstream-credentials-file, or the prompt). "
                "The first apply rewrites the configuration into regwizard's layout"
            )
        notes.append(
            "if the upstream's certificate is signed by a private CA, set "
            "registry.proxy_ca_file to that CA (a PEM file on this machine)"
        )

    # --- port
    cport = f.listen_port
    if cport in f.published:
        port = f.published[cport][0]
        notes.append(f"port: {port} -> {cport} in the container")
    elif f.published:
        other, hp = next(iter(sorted(f.published.items())))
        port = hp[0]
        notes.append(
            f"port mismatch: -p {port}:{other} but the registry listens on {cport}; the plan "
            f"keeps {port} and apply publishes it to the registry's real port"
        )
    elif f.host_network:
        port = cport
        notes.append(f"host networking: the registry listens on {cport} directly")
    else:
        port = 443
        notes.append("the container publishes no port; the plan uses 443")

    # --- certificate
    info: pki.CertInfo | None = None
    if f.tls.certificate:
        if found.cert:
            try:
                info = pki.inspect_cert(found.cert)
            except RegwizardError as e:
                notes.append(f"the certificate at {found.cert_where} cannot be read: {e.cause}")
        else:
            notes.append(
                f"the certificate {f.tls.certificate} is missing (on the host: "
                f"{found.cert_where or 'not mounted'})"
            )
    else:
        out.plain_http = True
        notes.append(problems.PLAIN(evidence="").note)
    domain = _domain_from(info)
    if domain and check_domain(domain) is not None:
        notes.append(f"the certificate's name {domain!r} cannot be a plan's domain")
        domain = ""
    # An ~/.ssh/config alias is only a name for SSH: the registry's name and IP come
    # from the certificate, else from the HostName the alias stands for (never the alias).
    real = found.hostname or conn.address
    if found.route:
        notes.append(
            f"the host is {found.route}: the plan keeps the alias as its host, so it "
            "keeps following your SSH config"
        )
    ip = real if is_ip(real) else ""
    if not ip and info and info.ip_sans:
        ip = info.ip_sans[0]
    if not domain:
        if not is_ip(real) and real != "local" and "." in real:
            domain = real
            if real != conn.address:
                notes.append(
                    f"no name in the certificate: the plan names the registry {domain} "
                    f"(the HostName of {conn.address}); set registry.domain to the name "
                    "clients use"
                )
        else:
            domain = "registry.example.test"
            notes.append(
                f"no name found for the registry: the plan says {domain}; "
                "set registry.domain to the name clients use"
            )
    cert = CertificateSpec(mode="self-signed", country="", days=825)
    if info is not None:
        s = info.subject
        cert.country = _valid(check_country, s.get("C", ""))
        cert.state = _valid(check_subject_text, s.get("ST", "")[:64])
        cert.locality = _valid(check_subject_text, s.get("L", "")[:64])
        cert.organization = _valid(check_subject_text, s.get("O", "")[:64])
        cert.organizational_unit = _valid(check_subject_text, s.get("OU", "")[:64])
        cert.email = _valid(check_email, s.get("email", ""))
        cn = s.get("CN", "")
        cert.common_name = "" if cn == domain else _valid(check_common_name, cn[:64])
        if info.key_type in KEY_KINDS:
            cert.key = info.key_type
        cert.extra_sans = [
            v
            for v in [*info.dns_sans, *info.ip_sans]
            if v != domain and v != ip and not v.startswith("*.") and check_san(v) is None
        ]
        days = (info.not_after - info.not_before).days
        sans = ", ".join([*info.dns_sans, *info.ip_sans]) or "none (CN only)"
        out.certificate = CertSummary(
            f"CN={cn or '-'}, SANs {sans}, {info.key_type}, {days} days", info.days_left
        )
        notes.append(
            f"certificate {found.cert_where}: {out.certificate.details}, {info.days_left} left"
        )
        probe = Plan(registry=RegistrySpec(domain=domain, ip=ip), certificate=cert)
        for p in problems.certificate(info, probe, "certificate problem: "):
            notes.append(p.message)
        if not info.self_signed:
            notes.append(problems.CERT_NOT_SELF_SIGNED(issuer=info.issuer_cn or "a CA").note)

    # --- config dir: keep a layout that already fits
    keep = _config_dir_kept(f, domain)
    if keep:
        config_dir = keep
        notes.append(f"config dir: {keep} (certs/ and auth/ are kept where they are)")
    else:
        config_dir = _free_dir(
            found.used_dirs,
            [DEFAULT_CONFIG, f"{DEFAULT_CONFIG}-{f.name}"],
            check_config_dir,
        )
        if found.cert_where:
            notes.append(
                f"config dir: {config_dir} (the current files, e.g. {found.cert_where}, do not "
                "fit <dir>/certs/<domain>.crt + <dir>/auth/htpasswd in a dedicated dir); "
                "apply issues a new certificate there: every Docker host that uses the "
                "registry must be in [[clients]] to get it"
            )

    # --- users
    users: list[User] = []
    if problems.auth(f, None):
        notes.append(
            "no auth: anyone can push and pull (no auth configured); add a user "
            "(`regwizard user hash NAME`) to [[users]] and set [verify] user"
        )
    if f.auth.kind == "htpasswd":
        if found.htpasswd is None:
            notes.append(f"htpasswd {f.auth.htpasswd or '(no path)'} is missing")
        else:
            text = found.htpasswd.decode(errors="replace")
            for entry in htpasswd.parse(text):
                if any(u.name == entry.name for u in users):
                    continue
                if htpasswd.is_bcrypt(entry.hash):
                    users.append(User(entry.name, entry.hash))
                else:
                    kind = htpasswd.hash_kind(entry.hash)
                    out.ignored_users.append((entry.name, kind))
                    notes.append(
                        f"user {entry.name}: a {kind} hash that the registry ignores "
                        "(login gets 401); give it a new password "
                        f"(`regwizard user hash {entry.name}`) and add it to [[users]]"
                    )
            notes.append(
                f"htpasswd {found.htpasswd_where}: {len(users)} bcrypt user(s)"
                + (f": {', '.join(u.name for u in users)}" if users else "")
            )
            for p in problems.htpasswd(f, text, found.htpasswd_where, None):
                if p.id in ("htpasswd-file-mount", "bcrypt-cost", "htpasswd-invalid"):
                    notes.append(p.note)
            users = [u for u in users if htpasswd.cost_of(u.bcrypt) <= htpasswd.MAX_COST]
    if users:
        notes.append(f"verify user: {users[0].name} (its password is asked when apply runs)")
    else:
        notes.append("the plan has no users yet: add one (`regwizard user hash NAME`) before apply")

    # --- storage
    st = f.storage
    storage_spec = StorageSpec()
    if st.driver == "s3":
        from regwizard.facts.registry import s3_spec

        storage_spec = s3_spec(st)
        notes.append(
            f"storage: S3 bucket {storage_spec.bucket} at {storage_spec.endpoint} (access key "
            f"{storage_spec.access_key}); its secret key is never put in the plan: give it "
            "at the first apply (--s3-secret-file FILE, REGWIZARD_S3_SECRET_KEY or the prompt)"
        )
        for p in problems.s3(f, Plan(storage=storage_spec)):
            notes.append(p.note)
    if st.v1_path:
        notes.append(problems.V1_PATH.format(path=st.v1_path, root=st.root))
    if st.kind == "bind" and st.host_path:
        storage = st.host_path
        notes.append(f"storage: {storage} (bound at {st.root})")
    else:
        sp_host = None
        if st.v1_path:
            from regwizard.facts.registry import host_path

            sp_host, sp_mount = host_path(list(f.mounts), st.v1_path)
            if not (sp_mount is not None and sp_mount.kind == "bind"):
                sp_host = None
        wanted = [sp_host] if sp_host else [DEFAULT_STORAGE, f"/opt/registry-{f.name}"]
        storage = _free_dir(found.used_dirs, wanted, check_storage)
        if st.kind in ("layer", "anonymous-volume", "volume", "tmpfs"):
            name = st.mount.name if st.mount else ""
            out.unpersisted_data = DataPlace(
                st.kind,  # type: ignore[arg-type]
                name[:12] if st.kind == "anonymous-volume" else name,
            )
            risk = (
                "a named volume, not a host directory"
                if st.kind == "volume"
                else "storage not persisted: `docker rm -v` or a volume prune loses them"
                if st.kind == "anonymous-volume"
                else "storage not persisted: `docker rm` loses them"
            )
            notes.append(
                f"images are {out.unpersisted_data.where} ({st.root}): {risk}. The plan "
                f"stores them in {storage}; apply copies them there before it replaces the "
                "container"
                + ("" if st.kind in ("layer", "tmpfs") else ", and keeps the old volume")
            )

    # --- image
    image = f.image
    if check_image(image) is not None:
        image = found.image_tags[0] if found.image_tags else "registry:2"

    # --- clients: this machine, plus the registry host when it trusts the registry
    host_conn = copy.deepcopy(conn)
    if found.fingerprint and not host_conn.host_key:
        host_conn.host_key = found.fingerprint
    clients = [Connection(runtimes=list(found.local_runtimes) or ["docker"])]
    address = domain if port == 443 else f"{domain}:{port}"
    if not conn.is_local and address in found.certs_d:
        clients.append(copy.deepcopy(host_conn))
        clients[-1].runtimes = list(found.host_runtimes) or ["docker"]
        notes.append(
            f"clients: this machine and {found.host_label} (it has {certsd.trust_dir(address)})"
        )
    else:
        notes.append("clients: this machine; add every other Docker host to [[clients]]")
    for c in clients:
        if c.runtimes != ["docker"]:
            where = "this machine" if c.is_local else c.address
            notes.append(f"runtimes on {where}: {', '.join(c.runtimes)}")

    for p in problems.container(f):
        if p.id == "restart-policy":
            notes.append(f"restart policy is {f.restart_policy!r}: apply sets always")
        elif p.id in ("container-stopped", "container-crash-loop"):
            notes.append(f"the container is {f.status}: apply recreates and starts it")
        else:
            notes.append(p.note)

    if f.delete_enabled:
        notes.append("deleting images is on (storage.delete.enabled): the plan keeps it")
    out.plan = Plan(
        registry=RegistrySpec(
            domain=domain,
            ip=ip,
            manage_hosts_file=bool(ip),
            port=port,
            container=f.name or "registry",
            image=image,
            storage=storage,
            config_dir=config_dir,
            realm=_valid(check_realm, f.auth.realm, "Registry Realm"),
            proxy_remote_url=proxy_url,
            allow_delete=f.delete_enabled,
        ),
        host=host_conn,
        clients=clients,
        certificate=cert,
        users=users,
        verify=VerifySpec(user=users[0].name if users else ""),
        storage=storage_spec,
    )
    for err in validate_plan(out.plan):
        notes.append(
            f"edit the plan before apply: {err.cause}" + (f" ({err.fix})" if err.fix else "")
        )
    out.notes = notes
    return out


def _valid(check, value: str, default: str = "") -> str:  # noqa: ANN001
    """``value`` when the plan accepts it, else ``default`` (adopt never writes a bad plan)."""
    return value if value and check(value) is None else default
