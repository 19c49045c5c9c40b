"""The one place facts are read from a host. Everything else interprets them.

``snapshot`` reads several files, directory listings, links and private-key fingerprints
in ONE round trip. A private key never leaves its host: only the SHA-256 of its public
half (computed there by ``openssl pkey -pubout``) comes back, which is enough to prove
that a key matches its certificate.
"""

from __future__ import annotations

import base64
import io
import tarfile
from dataclasses import dataclass, field

from regwizard.facts import certsd, hostfile, runtimes
from regwizard.facts.registry import MAX_CONFIG_BYTES, RegistryFacts, host_path, interpret

MAX_READ = 1 << 20
NO_OPENSSL = "no-openssl"

_SNAPSHOT = r"""
n_files=$1; n_dirs=$2; n_links=$3; n_keys=$4; shift 4
b64() { base64 | tr -d '\n'; }
i=0; while [ $i -lt "$n_files" ]; do f=$1; shift; i=$((i+1))
  if [ -f "$f" ]; then
    if [ "$(wc -c < "$f")" -gt 1048576 ]; then echo "F big"; else printf 'F ok '; b64 < "$f"; echo; fi
  elif [ -e "$f" ]; then echo "F notfile"; else echo "F missing"; fi
done
i=0; while [ $i -lt "$n_dirs" ]; do d=$1; shift; i=$((i+1))
  if [ -d "$d" ]; then printf 'D ok '; ls -1A -- "$d" | b64; echo; else echo "D missing"; fi
done
i=0; while [ $i -lt "$n_links" ]; do l=$1; shift; i=$((i+1))
  if [ -L "$l" ]; then printf 'L ok '; readlink -- "$l" | b64; echo; else echo "L missing"; fi
done
i=0; while [ $i -lt "$n_keys" ]; do k=$1; shift; i=$((i+1))
  if [ ! -s "$k" ]; then echo "K missing"
  elif ! command -v openssl >/dev/null 2>&1; then echo "K no-openssl"
  else h=$(openssl pkey -in "$k" -passin pass: -pubout -outform DER 2>/dev/null | sha256sum) \
    && [ -n "$h" ] && [ "${h%% *}" != e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ] \
    && echo "K ok ${h%% *}" || echo "K bad"; fi
done
"""


@dataclass
class Snapshot:
    files: dict[str, bytes | None] = field(default_factory=dict)  # None: missing
    dirs: dict[str, list[str] | None] = field(default_factory=dict)
    links: dict[str, str | None] = field(default_factory=dict)
    # SHA-256 of the key's public half (hex); None: missing; "bad": unreadable;
    # NO_OPENSSL: the host cannot tell
    keys: dict[str, str | None] = field(default_factory=dict)


def parse_snapshot(
    out: str, files: list[str], dirs: list[str], links: list[str], keys: list[str]
) -> Snapshot:
    snap = Snapshot()
    lines = iter(out.splitlines())

    def nxt(kind: str) -> tuple[str, str]:
        line = next(lines, "")
        k, _, rest = line.partition(" ")
        status, _, payload = rest.partition(" ")
        return (status, payload) if k == kind else ("missing", "")

    def dec(payload: str) -> bytes:
        try:
            return base64.b64decode(payload)
        except ValueError:
            return b""

    for f in files:
        status, payload = nxt("F")
        snap.files[f] = dec(payload) if status == "ok" else None
    for d in dirs:
        status, payload = nxt("D")
        names = dec(payload).decode(errors="replace").split("\n") if status == "ok" else None
        snap.dirs[d] = [n for n in names if n] if names is not None else None
    for ln in links:
        status, payload = nxt("L")
        snap.links[ln] = dec(payload).decode(errors="replace").strip() if status == "ok" else None
    for k in keys:
        status, payload = nxt("K")
        snap.keys[k] = payload if status == "ok" else (None if status == "missing" else status)
    return snap


def snapshot(
    host,  # noqa: ANN001 - hosts.Host
    *,
    files: list[str] | tuple[str, ...] = (),
    dirs: list[str] | tuple[str, ...] = (),
    links: list[str] | tuple[str, ...] = (),
    keys: list[str] | tuple[str, ...] = (),
    timeout: float = 30,
) -> Snapshot:
    files, dirs, links, keys = list(files), list(dirs), list(links), list(keys)
    argv = ["sh", "-c", _SNAPSHOT, "sh", str(len(files)), str(len(dirs)), str(len(links))]
    argv += [str(len(keys)), *files, *dirs, *links, *keys]
    r = host.run(argv, timeout=timeout)
    return parse_snapshot(r.stdout.decode(errors="replace"), files, dirs, links, keys)


# --------------------------------------------------------------------------- registry


def _from_container(container, path: str) -> bytes | None:
    """A file's bytes through the Docker API (works on stopped containers too)."""
    import docker.errors

    try:
        stream, _stat = container.get_archive(path)
    except (docker.errors.NotFound, docker.errors.APIError):
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
                if member.isfile() and member.size <= MAX_CONFIG_BYTES:
                    fh = tar.extractfile(member)
                    return fh.read() if fh else None
    except tarfile.TarError:
        return None
    return None


def container_reader(host, container):  # noqa: ANN001, ANN201
    """read(path in the container) -> (bytes | None, where): its mount's host file, else the API."""
    from regwizard.facts.registry import mounts_of

    mounts = mounts_of(container.attrs)

    def read(cpath: str) -> tuple[bytes | None, str]:
        hpath, _m = host_path(mounts, cpath)
        if hpath:
            data = host.read_file(hpath)
            if data is not None:
                return data[:MAX_READ], hpath
        return _from_container(container, cpath), f"{container.name}:{cpath}"

    return read


def registry(host, name: str, *, timeout: float = 60):  # noqa: ANN001, ANN201
    """(RegistryFacts, the container, read) for container ``name``; (None, None, None) if absent."""
    import docker.errors

    client = host.docker(timeout)
    try:
        c = client.containers.get(name)
    except docker.errors.NotFound:
        return None, None, None
    read = container_reader(host, c)
    return interpret(c.attrs, read), c, read


def facts_of(host, container) -> RegistryFacts:  # noqa: ANN001
    return interpret(container.attrs, container_reader(host, container))


# --------------------------------------------------------------------------- every host


@dataclass(frozen=True)
class HostsFile:
    text: str
    entry: hostfile.HostsEntry
    resolves_to: tuple[str, ...] = ()  # getent, read only when the file has no line for it


def hosts_file(host, domain: str, ip: str = "") -> HostsFile:  # noqa: ANN001
    text = (host.read_file("/etc/hosts") or b"").decode(errors="replace")
    entry = hostfile.lookup(text, domain)
    resolves: tuple[str, ...] = ()
    if not entry.present:
        r = host.run(["getent", "ahosts", domain], check=False, timeout=15)
        resolves = hostfile.resolved(r.stdout.decode(errors="replace"))
    return HostsFile(text, entry, resolves)


def certs_d(host, address: str) -> certsd.CertsD:  # noqa: ANN001
    """certs.d as it concerns ``address``, in one round trip."""
    d = certsd.trust_dir(address)
    snap = snapshot(host, files=[f"{d}/ca.crt"], dirs=[certsd.CERTS_D, d])
    names = snap.dirs.get(d) or []
    ca = snap.files.get(f"{d}/ca.crt")
    others = [n for n in names if n.endswith(".crt") and n != "ca.crt"]
    bundle = ca or b""
    if others:  # rare: more CA files than ours
        more = snapshot(host, files=[f"{d}/{n}" for n in others])
        bundle += b"\n" + b"\n".join(v or b"" for v in more.files.values())
    return certsd.CertsD(
        address=address,
        dirs=tuple(snap.dirs.get(certsd.CERTS_D) or ()),
        files=tuple(names),
        ca=ca,
        bundle=bundle,
        stray=certsd.stray_files(names),
    )


# --------------------------------------------------------------------------- runtimes


@dataclass(frozen=True)
class Containerd:
    """containerd on one client, as it concerns one registry."""

    config: runtimes.ContainerdConfig
    text: str  # config.toml as it is ("" when missing)
    socket: bool  # a standalone containerd answers at /run/containerd/containerd.sock
    hosts_dir: str  # where its hosts.toml files live (the config's, else the default)
    ca: bytes | None = None  # <hosts_dir>/<address>/ca.crt
    hosts_toml: bytes | None = None


def containerd(host, address: str) -> Containerd:  # noqa: ANN001
    """One round trip (two when config_path names another directory)."""
    cfg_path = runtimes.CONTAINERD_CONFIG

    def files(base: str) -> list[str]:
        return [f"{base}/{address}/ca.crt", f"{base}/{address}/hosts.toml"]

    default = runtimes.CONTAINERD_CERTS_D
    snap = snapshot(host, files=[cfg_path, *files(default)])
    text = snap.files.get(cfg_path)
    r = host.run(
        ["sh", "-c", 'test -S "$1" && echo socket; containerd --version 2>/dev/null; :', "sh",
         runtimes.CONTAINERD_SOCKET],
        check=False, timeout=15,
    )  # fmt: skip
    out = r.stdout.decode(errors="replace")
    sock = out.startswith("socket")
    # a missing config.toml means the defaults of containerd's own major version
    cfg = runtimes.containerd_config(text, runtimes.containerd_version(out.removeprefix("socket")))
    base = cfg.hosts_dir or default
    if base != default:
        snap = snapshot(host, files=[cfg_path, *files(base)])
    ca, toml = (snap.files.get(p) for p in files(base))
    return Containerd(cfg, (text or b"").decode(errors="replace"), sock, base, ca, toml)


@dataclass(frozen=True)
class Podman:
    """podman's certs.d on one client, as it concerns one registry."""

    address: str
    dir_exists: bool  # /etc/containers/certs.d/<address>/ exists (it then hides Docker's)
    files: tuple[str, ...] = ()
    ca: bytes | None = None
    docker_ca: bytes | None = None  # /etc/docker/certs.d/<address>/ca.crt, read after ours


def podman(host, address: str) -> Podman:  # noqa: ANN001
    d = runtimes.podman_trust_dir(address)
    docker_ca = certsd.trust_file(address)
    snap = snapshot(host, files=[f"{d}/ca.crt", docker_ca], dirs=[d])
    names = snap.dirs.get(d)
    return Podman(
        address,
        names is not None,
        tuple(names or ()),
        snap.files.get(f"{d}/ca.crt"),
        snap.files.get(docker_ca),
    )
