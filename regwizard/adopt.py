"""Adopt a registry someone already runs: read it (never change it) and write a plan.

``adopt(conn, secrets, container=None) -> Adoption`` connects to the host, finds
the registry container (image ``registry``/``distribution``, or the one named), and
reads its port mapping, environment, mounts and restart policy, the certificate behind
``REGISTRY_HTTP_TLS_CERTIFICATE`` and the users behind ``REGISTRY_AUTH_HTPASSWD_PATH``
(host paths found through the container's mounts; files not on a mount are read from
the container through the Docker API).

The plan describes *the intended setup*: the same domain, port, container name, image,
certificate subject and bcrypt users; storage in a host directory (the one bound at
``/var/lib/registry``, or the one the tutorial meant with ``STORAGE_PATH``); a config
directory that keeps a usable certificate where it is. ``regwizard apply`` then
converges to it (copying images out of an anonymous volume first). The ``Adoption``
holds the plan, ``notes`` that say in words what was found and what apply will change,
and the facts a UI shows (ignored users, unpersisted data, certificate, plain HTTP).
"""

from __future__ import annotations

import copy
import io
import ipaddress
import posixpath
import re
import tarfile
import threading
from dataclasses import dataclass, field
from typing import Literal

from regwizard import htpasswd, pki
from regwizard.errors import Cancelled, RegwizardError
from regwizard.plan import (
    KEY_KINDS,
    CertificateSpec,
    Connection,
    Plan,
    RegistrySpec,
    User,
    VerifySpec,
    check_config_dir,
    check_image,
    check_storage,
)

REGISTRY_DATA = "/var/lib/registry"
DEFAULT_STORAGE = "/opt/docker-image"
DEFAULT_CONFIG = "/etc/regwizard"
MAX_READ = 1 << 20


# --------------------------------------------------------------------------- parsing


def parse_target(text: str, port: int | None = None) -> tuple[str, str, int]:
    """``[user@]host[:port]`` (IPv6 in brackets) -> (user, address, port)."""
    user, sep, rest = text.rpartition("@")
    if not sep:
        user, rest = "root", text
    addr, p = rest, 22
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise RegwizardError(f"bad host {text!r}: missing ]", "write [IPv6]:port")
        addr, tail = rest[1:end], rest[end + 1 :]
        if tail.startswith(":") and tail[1:].isdigit():
            p = int(tail[1:])
    elif rest.count(":") == 1:
        addr, _, ptext = rest.partition(":")
        if not ptext.isdigit():
            raise RegwizardError(f"bad port in {text!r}", "write user@host:PORT")
        p = int(ptext)
    if not addr or not user:
        raise RegwizardError(f"bad host {text!r}", "write user@host, e.g. root@10.0.0.2")
    return user, addr, port if port is not None else p


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def env_dict(attrs: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (attrs.get("Config") or {}).get("Env") or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def listen_port(env: dict[str, str]) -> int:
    """The port the registry listens on inside the container (REGISTRY_HTTP_ADDR)."""
    addr = env.get("REGISTRY_HTTP_ADDR", "")
    tail = addr.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 5000


def published(attrs: dict) -> dict[int, list[int]]:
    """Container port -> host ports it is published on (tcp)."""
    out: dict[int, list[int]] = {}
    hc = attrs.get("HostConfig") or {}
    if hc.get("NetworkMode") == "host":
        return {}
    for key, binds in (hc.get("PortBindings") or {}).items():
        num, _, proto = key.partition("/")
        if proto not in ("", "tcp") or not num.isdigit():
            continue
        for b in binds or []:
            hp = str(b.get("HostPort") or "")
            if hp.isdigit():
                out.setdefault(int(num), []).append(int(hp))
    return out


def host_path(mounts: list[dict], cpath: str) -> tuple[str | None, dict | None]:
    """The host path behind a path in the container, and the mount that holds it."""
    best: tuple[str, dict] | None = None
    for m in mounts:
        d = (m.get("Destination") or "").rstrip("/") or "/"
        if cpath == d or cpath.startswith(d.rstrip("/") + "/"):
            if best is None or len(d) > len(best[0]):
                best = (d, m)
    if best is None:
        return None, None
    d, m = best
    src = m.get("Source") or ""
    if not src:
        return None, m
    if cpath == d:
        return src, m
    rel = posixpath.relpath(cpath, d)
    return posixpath.join(src, rel), m


def data_mount(attrs: dict) -> tuple[str, str | None, dict | None]:
    """(the registry's data dir in the container, its host path, the mount holding it).

    A mount of a parent directory counts too; no mount = the container's writable layer.
    """
    env = env_dict(attrs)
    root = env.get("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY") or REGISTRY_DATA
    hpath, m = host_path(attrs.get("Mounts") or [], root)
    return root, hpath, m


def is_anonymous_volume(m: dict | None) -> bool:
    return bool(
        m and m.get("Type") == "volume" and re.fullmatch(r"[0-9a-f]{64}", m.get("Name") or "")
    )


def read_from_container(container, path: str) -> bytes | None:
    """A file's bytes through the Docker API (works on stopped containers too)."""
    import docker.errors

    try:
        stream, _stat = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError:
        return None
    buf = io.BytesIO()
    for chunk in stream:
        buf.write(chunk)
        if buf.tell() > 4 * MAX_READ:
            break
    buf.seek(0)
    try:
        with tarfile.open(fileobj=buf) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.size <= MAX_READ:
                    fh = tar.extractfile(member)
                    return fh.read() if fh else None
    except tarfile.TarError:
        return None
    return None


def read_container_file(host, container, attrs: dict, cpath: str) -> tuple[bytes | None, str]:
    """A file of the container: through the host path of its mount, else the Docker API.

    Returns (data, where) with ``where`` the host path, or ``container:PATH``.
    """
    hpath, _m = host_path(attrs.get("Mounts") or [], cpath)
    if hpath:
        data = host.read_file(hpath)
        if data is not None:
            return data[:MAX_READ], hpath
    return read_from_container(container, cpath), f"{container.name}:{cpath}"


# --------------------------------------------------------------------------- finding it


def _image_name(attrs: dict) -> str:
    return (attrs.get("Config") or {}).get("Image") or ""


def looks_like_registry(attrs: dict, tags: list[str] = ()) -> bool:
    """An image named registry/distribution, or a `registry serve` command line."""
    for ref in [_image_name(attrs), *tags]:
        name = ref.split("@", 1)[0]
        last = name.rsplit("/", 1)[-1].split(":", 1)[0].lower()
        if "registry" in last or "distribution" in last:
            return True
    cfg = attrs.get("Config") or {}
    argv = [*(cfg.get("Entrypoint") or []), *(cfg.get("Cmd") or [])]
    text = " ".join(str(a) for a in argv)
    return "serve" in argv and ("registry" in text or "distribution" in text)


@dataclass
class Candidate:
    name: str
    image: str
    status: str
    ports: dict[int, list[int]] = field(default_factory=dict)

    def describe(self) -> str:
        hp = sorted({p for ps in self.ports.values() for p in ps})
        port = f", port {', '.join(map(str, hp))}" if hp else ""
        return f"{self.name} ({self.image}, {self.status}{port})"


def registry_containers(client) -> list:
    """Containers on this engine that look like a registry (running ones first)."""
    found = []
    for c in client.containers.list(all=True):
        tags: list[str] = []
        try:
            tags = list(c.image.tags)
        except Exception:  # noqa: BLE001 - the image may be gone
            pass
        if looks_like_registry(c.attrs, tags):
            found.append(c)
    found.sort(key=lambda c: (c.status != "running", c.name))
    return found


def find_container(client, name: str | None, where: str):
    import docker.errors

    if name:
        try:
            return client.containers.get(name)
        except docker.errors.NotFound:
            raise RegwizardError(
                f"{where}: no container named {name!r}",
                "list them with `docker ps -a` on the host and pass --container NAME",
            ) from None
    found = registry_containers(client)
    if not found:
        raise RegwizardError(
            f"{where}: no registry container found (no image named registry or distribution)",
            "pass --container NAME, or set a registry up from scratch: regwizard plan new",
        )
    running = [c for c in found if c.status == "running"]
    pool = running or found
    if len(pool) > 1:
        names = "; ".join(
            Candidate(c.name, _image_name(c.attrs), c.status, published(c.attrs)).describe()
            for c in pool
        )
        raise RegwizardError(
            f"{where}: several registry containers: {names}",
            "pick one with --container NAME",
        )
    return pool[0]


# --------------------------------------------------------------------------- adopting


def _free_dir(client, own_name: str, wanted: list[str], check) -> str:
    """The first candidate dir that is valid and not mounted by another container."""
    used: set[str] = set()
    for c in client.containers.list(all=True):
        if c.name == own_name:
            continue
        for m in c.attrs.get("Mounts") or []:
            if m.get("Type") == "bind" and m.get("Source"):
                used.add(m["Source"].rstrip("/"))
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
    return cn if cn and not _is_ip(cn) and "." in cn else ""


@dataclass(frozen=True)
class CertSummary:
    """The registry's certificate: ``details`` (CN, SANs, key, lifetime) and days left."""

    details: str
    days_left: int  # negative once expired


@dataclass(frozen=True)
class DataPlace:
    """Where the images are when storage is not persisted."""

    kind: Literal["layer", "anonymous-volume", "volume"]  # layer: the container's writable one
    name: str = ""  # the volume's name; an anonymous one shortened to 12 characters

    @property
    def where(self) -> str:
        if self.kind == "layer":
            return "in the container's writable layer"
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
    plain_http: bool = False  # no REGISTRY_HTTP_TLS_CERTIFICATE


def adopt(
    conn: Connection,
    secrets,
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

    notes: list[str] = []
    ignored_users: list[tuple[str, str]] = []
    unpersisted: DataPlace | None = None
    summary: CertSummary | None = None
    plain_http = False

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled()

    with hosts.connect(conn, secrets, cancel=cancel, timeout=timeout) as host:
        client = host.docker(60)
        c = find_container(client, container, host.label)
        check_cancel()
        c.reload()
        attrs = c.attrs
        env = env_dict(attrs)
        mounts = attrs.get("Mounts") or []
        hc = attrs.get("HostConfig") or {}
        state = attrs.get("State") or {}
        notes.append(
            f"found container {c.name} ({_image_name(attrs)}), {state.get('Status', c.status)}, "
            f"restart policy {((hc.get('RestartPolicy') or {}).get('Name') or 'no')}"
        )

        # --- port
        cport = listen_port(env)
        pub = published(attrs)
        if cport in pub:
            port = pub[cport][0]
            notes.append(f"port: {port} -> {cport} in the container")
        elif pub:
            other, hp = next(iter(pub.items()))
            port = hp[0]
            notes.append(
                f"port mismatch: -p {port}:{other} but the registry listens on {cport} "
                f"(REGISTRY_HTTP_ADDR={env.get('REGISTRY_HTTP_ADDR', '')!s}); the plan keeps "
                f"{port} and apply publishes it to the registry's real port"
            )
        elif hc.get("NetworkMode") == "host":
            port = cport
            notes.append(f"host networking: the registry listens on {cport} directly")
        else:
            port = 443
            notes.append("the container publishes no port; the plan uses 443")

        # --- certificate
        info: pki.CertInfo | None = None
        cert_where = ""
        tls_cert = env.get("REGISTRY_HTTP_TLS_CERTIFICATE", "")
        tls_key = env.get("REGISTRY_HTTP_TLS_KEY", "")
        if tls_cert:
            data, cert_where = read_container_file(host, c, attrs, tls_cert)
            if data:
                try:
                    info = pki.inspect_cert(data)
                except RegwizardError as e:
                    notes.append(f"the certificate at {cert_where} cannot be read: {e.cause}")
            else:
                notes.append(f"the certificate {tls_cert} is missing (on the host: {cert_where})")
        else:
            plain_http = True
            notes.append(
                "plain HTTP: the registry has no TLS (no REGISTRY_HTTP_TLS_CERTIFICATE); "
                "apply issues a certificate with SANs"
            )
        domain = _domain_from(info)
        ip = conn.address if _is_ip(conn.address) else ""
        if not ip and info and info.ip_sans:
            ip = info.ip_sans[0]
        if not domain:
            if not _is_ip(conn.address) and conn.address != "local" and "." in conn.address:
                domain = conn.address
            else:
                domain = "registry.example.test"
                notes.append(
                    f"no name found for the registry: the plan says {domain}; "
                    "set registry.domain to the name clients use"
                )
        cert = CertificateSpec(mode="self-signed", country="", days=825)
        if info is not None:
            s = info.subject
            cert.country = s.get("C", "") if len(s.get("C", "")) == 2 else ""
            cert.state = s.get("ST", "")[:64]
            cert.locality = s.get("L", "")[:64]
            cert.organization = s.get("O", "")[:64]
            cert.organizational_unit = s.get("OU", "")[:64]
            cert.email = s.get("email", "")
            cn = s.get("CN", "")
            cert.common_name = "" if cn == domain else cn[:64]
            if info.key_type in KEY_KINDS:
                cert.key = info.key_type
            cert.extra_sans = [
                v
                for v in [*info.dns_sans, *info.ip_sans]
                if v != domain and v != ip and not v.startswith("*.")
            ]
            days = (info.not_after - info.not_before).days
            sans = ", ".join([*info.dns_sans, *info.ip_sans]) or "none (CN only)"
            summary = CertSummary(
                f"CN={cn or '-'}, SANs {sans}, {info.key_type}, {days} days", info.days_left
            )
            notes.append(f"certificate {cert_where}: {summary.details}, {info.days_left} left")
            problems = pki.cert_problems(info, domain=domain, ip=ip, extra_sans=cert.extra_sans)
            for p in problems:
                notes.append(f"certificate problem: {p}")
            if not info.self_signed:
                notes.append(
                    f"the certificate was issued by {info.issuer_cn or 'a CA'}; the plan uses "
                    "a self-signed one (clients get it in certs.d); set certificate.mode = "
                    '"provided" with cert_file/key_file to keep your CA'
                )

        check_cancel()
        # --- config dir: keep a <dir>/certs/<domain>.crt + <dir>/auth/htpasswd layout
        auth_env = env.get("REGISTRY_AUTH", "")
        ht_cpath = env.get("REGISTRY_AUTH_HTPASSWD_PATH", "")
        ht_host, ht_mount = host_path(mounts, ht_cpath) if ht_cpath else (None, None)
        cert_host, _ = host_path(mounts, tls_cert) if tls_cert else (None, None)
        key_host, _ = host_path(mounts, tls_key) if tls_key else (None, None)
        keep = ""
        if cert_host and key_host:
            base = posixpath.dirname(posixpath.dirname(cert_host))
            fits = (
                cert_host == f"{base}/certs/{domain}.crt"
                and key_host == f"{base}/certs/{domain}.key"
                and (not ht_host or ht_host == f"{base}/auth/htpasswd")
            )
            if fits and check_config_dir(base) is None:
                keep = base
        if keep:
            config_dir = keep
            notes.append(f"config dir: {keep} (certs/ and auth/ are kept where they are)")
        else:
            config_dir = _free_dir(
                client, c.name, [DEFAULT_CONFIG, f"{DEFAULT_CONFIG}-{c.name}"], check_config_dir
            )
            if cert_where:
                notes.append(
                    f"config dir: {config_dir} (the current files, e.g. {cert_where}, do not "
                    "fit <dir>/certs/<domain>.crt + <dir>/auth/htpasswd in a dedicated dir); "
                    "apply issues a new certificate there: every Docker host that uses the "
                    "registry must be in [[clients]] to get it"
                )

        # --- users
        users: list[User] = []
        if auth_env != "htpasswd":
            notes.append(
                "no auth: anyone can push and pull"
                + (f" (REGISTRY_AUTH={auth_env})" if auth_env else " (no REGISTRY_AUTH)")
                + "; add a user (`regwizard user hash NAME`) to [[users]] and set [verify] user"
            )
        else:
            text, where = read_container_file(host, c, attrs, ht_cpath) if ht_cpath else (None, "")
            if text is None:
                notes.append(f"htpasswd {ht_cpath or '(no path)'} is missing")
            else:
                for entry in htpasswd.parse(text.decode(errors="replace")):
                    if any(u.name == entry.name for u in users):
                        continue
                    if htpasswd.is_bcrypt(entry.hash):
                        users.append(User(entry.name, entry.hash))
                    else:
                        kind = htpasswd.hash_kind(entry.hash)
                        ignored_users.append((entry.name, kind))
                        notes.append(
                            f"user {entry.name}: a {kind} hash that the registry ignores "
                            "(login gets 401); give it a new password "
                            f"(`regwizard user hash {entry.name}`) and add it to [[users]]"
                        )
                notes.append(
                    f"htpasswd {where}: {len(users)} bcrypt user(s)"
                    + (f": {', '.join(u.name for u in users)}" if users else "")
                )
            if ht_mount is not None and (ht_mount.get("Destination") or "") == ht_cpath:
                notes.append(
                    "htpasswd is mounted as a single file: a rename-style rewrite leaves the "
                    "registry reading the old one; apply mounts the auth directory instead"
                )
        if users:
            notes.append(f"verify user: {users[0].name} (its password is asked when apply runs)")
        else:
            notes.append(
                "the plan has no users yet: add one (`regwizard user hash NAME`) before apply"
            )

        check_cancel()
        # --- storage
        root, data_host, dm = data_mount(attrs)
        sp = env.get("STORAGE_PATH", "")
        sp_host, sp_mount = host_path(mounts, sp) if sp else (None, None)
        if sp:
            notes.append(
                f"STORAGE_PATH={sp} is a registry v1 setting; v2 ignores it and keeps images "
                f"in {root}"
            )
        if dm is not None and dm.get("Type") == "bind" and data_host:
            storage = data_host
            notes.append(f"storage: {storage} (bound at {root})")
        else:
            if sp_host and sp_mount and sp_mount.get("Type") == "bind":
                wanted = [sp_host]  # the directory the tutorial meant
            else:
                wanted = [DEFAULT_STORAGE, f"/opt/registry-{c.name}"]
            storage = _free_dir(client, c.name, wanted, check_storage)
            if dm is None:
                unpersisted = DataPlace("layer")
            elif is_anonymous_volume(dm):
                unpersisted = DataPlace("anonymous-volume", dm.get("Name", "")[:12])
            else:
                unpersisted = DataPlace("volume", dm.get("Name", ""))
            notes.append(
                f"storage not persisted: images are {unpersisted.where} ({root}); "
                "`docker rm -v` or a volume prune loses them. The plan stores them in "
                f"{storage}; apply copies them there before it replaces the container, and "
                "keeps the old volume"
            )

        # --- image
        image = _image_name(attrs)
        if check_image(image) is not None:
            try:
                tags = c.image.tags
            except Exception:  # noqa: BLE001
                tags = []
            image = tags[0] if tags else "registry:2"

        # --- clients: this machine, plus the registry host when it trusts the registry
        host_conn = copy.deepcopy(conn)
        if getattr(host, "fingerprint", "") and not host_conn.host_key:
            host_conn.host_key = host.fingerprint
        clients = [Connection()]
        address = domain if port == 443 else f"{domain}:{port}"
        if not conn.is_local and host.exists(f"/etc/docker/certs.d/{address}"):
            clients.append(copy.deepcopy(host_conn))
            notes.append(
                f"clients: this machine and {host.label} (it has /etc/docker/certs.d/{address})"
            )
        else:
            notes.append("clients: this machine; add every other Docker host to [[clients]]")

        restart = (hc.get("RestartPolicy") or {}).get("Name") or "no"
        if restart != "always":
            notes.append(f"restart policy is {restart!r}: apply sets always")
        if c.status != "running":
            notes.append(f"the container is {c.status}: apply recreates and starts it")

        plan = Plan(
            registry=RegistrySpec(
                domain=domain,
                ip=ip,
                manage_hosts_file=bool(ip),
                port=port,
                container=c.name,
                image=image,
                storage=storage,
                config_dir=config_dir,
                realm=env.get("REGISTRY_AUTH_HTPASSWD_REALM") or "Registry Realm",
            ),
            host=host_conn,
            clients=clients,
            certificate=cert,
            users=users,
            verify=VerifySpec(user=users[0].name if users else ""),
        )
    return Adoption(
        plan=plan,
        notes=notes,
        ignored_users=ignored_users,
        unpersisted_data=unpersisted,
        certificate=summary,
        plain_http=plain_http,
    )


# --------------------------------------------------------------------------- CLI


def adopt_cli(args) -> int:
    """``regwizard adopt HOST``: the plan on stdout (or -o FILE), the notes on stderr."""
    import sys
    from pathlib import Path

    from regwizard.cli import read_connection_secrets
    from regwizard.plan import Secrets, dump_plan, save_plan

    user, address, port = parse_target(args.target, args.port)
    conn = Connection(
        address=address,
        port=port,
        user=user,
        auth=args.auth,
        key_file=args.key_file,
        sudo=args.sudo,
    )
    secrets = Secrets(accepted_host_keys=set(args.accept_host_key))
    # SSH / sudo passwords as for apply: REGWIZARD_SSH_PASSWORD / _SUDO_PASSWORD, or a prompt
    read_connection_secrets(Plan(host=conn, clients=[]), secrets)
    out = Path(args.output).expanduser() if args.output else None
    if out is not None and out.exists() and not args.force:
        raise RegwizardError(f"{out} already exists", "choose another -o path, or pass --force")
    adoption = adopt(conn, secrets, args.container)
    plan = adoption.plan
    for n in adoption.notes:
        print(f"- {n}", file=sys.stderr)
    if out is not None:
        save_plan(plan, out)
        print(f"wrote {out}", file=sys.stderr)
        nxt = f"regwizard doctor {out}   then   regwizard apply {out}"
        print(f"next: {nxt}", file=sys.stderr)
    else:
        sys.stdout.write(dump_plan(plan))
    return 0
