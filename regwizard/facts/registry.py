"""What a registry container's behaviour depends on, interpreted once.

``interpret(attrs, read)`` turns ``docker inspect`` data and the registry's
configuration file into :class:`RegistryFacts`. It is pure: ``read(path)`` is the
only way it sees files, so offline tests feed it a dict. adopt, doctor and the
steps all read a registry through this one function.

The registry takes its settings from a YAML file and from ``REGISTRY_*`` environment
variables that override single keys (``REGISTRY_HTTP_TLS_CERTIFICATE`` overrides
``http.tls.certificate``). The file is the first argument after ``serve`` on the
command line, else ``REGISTRY_CONFIGURATION_PATH``; images pass their default on the
command line (``/etc/docker/registry/config.yml`` for v2, ``/etc/distribution/config.yml``
for v3).

Anything here may be hostile or malformed (a hand-made container, a broken file):
every accessor tolerates wrong types and never raises.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

REGISTRY_DATA = "/var/lib/registry"  # the registry's default filesystem root
V2_CONFIG = "/etc/docker/registry/config.yml"
V3_CONFIG = "/etc/distribution/config.yml"
LABEL_MANAGED = "io.regwizard.managed"
LABEL_HASH = "io.regwizard.config-hash"
MAX_CONFIG_BYTES = 1 << 20

# keys of the storage section that are options, not drivers
_STORAGE_OPTIONS = frozenset({"maintenance", "cache", "delete", "redirect", "tag"})

Reader = Callable[[str], "tuple[bytes | None, str]"]  # container path -> (data, where)


CRASH_WINDOW = 15.0  # seconds: a registry its policy restarted this recently is looping


def _epoch(stamp: str) -> float | None:
    """Docker's RFC 3339 time (nanoseconds, Z) as epoch seconds; None when unreadable."""
    import datetime as dt

    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)", stamp)
    if not m:
        return None
    try:
        when = dt.datetime.fromisoformat(m.group(1) + (m.group(2).replace("Z", "+00:00")))
    except ValueError:
        return None
    return when.timestamp()


def _d(x: object) -> dict:
    return x if isinstance(x, dict) else {}


def _l(x: object) -> list:
    return x if isinstance(x, list) else []


def _s(x: object) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int | float):
        return str(x)
    return ""


def _int(x: object, default: int = 0) -> int:
    if isinstance(x, bool):
        return default
    if isinstance(x, int):
        return x
    if isinstance(x, str) and x.strip().lstrip("-").isdigit():
        try:
            return int(x.strip())
        except ValueError:
            return default
    return default


# --------------------------------------------------------------------------- mounts


@dataclass(frozen=True)
class Mount:
    kind: str  # bind | volume | tmpfs | ...
    source: str  # the host path ("" for tmpfs)
    destination: str  # the path in the container
    name: str = ""  # the volume's name
    rw: bool = True

    @property
    def anonymous(self) -> bool:
        return self.kind == "volume" and bool(re.fullmatch(r"[0-9a-f]{64}", self.name))


def mounts_of(attrs: dict) -> list[Mount]:
    out = []
    for m in _l(_d(attrs).get("Mounts")):
        m = _d(m)
        dest = _s(m.get("Destination"))
        if not dest.startswith("/"):
            continue
        out.append(
            Mount(
                kind=_s(m.get("Type")) or "bind",
                source=_s(m.get("Source")),
                destination=dest,
                name=_s(m.get("Name")),
                rw=m.get("RW") is not False,
            )
        )
    # `docker run --tmpfs DIR` shows only here, not in Mounts (`--mount type=tmpfs` shows in both)
    seen = {m.destination for m in out}
    for dest in _d(_d(_d(attrs).get("HostConfig")).get("Tmpfs")):
        if isinstance(dest, str) and dest.startswith("/") and dest not in seen:
            out.append(Mount(kind="tmpfs", source="", destination=dest))
    return out


def host_path(mounts: list[Mount], cpath: str) -> tuple[str | None, Mount | None]:
    """The host path behind a path in the container, and the mount that holds it."""
    if not cpath.startswith("/"):
        return None, None
    cpath = posixpath.normpath(cpath)
    best: Mount | None = None
    for m in mounts:
        d = posixpath.normpath(m.destination)
        if cpath == d or cpath.startswith(d.rstrip("/") + "/"):
            if best is None or len(d) > len(posixpath.normpath(best.destination)):
                best = m
    if best is None:
        return None, None
    if not best.source or best.kind == "tmpfs":
        return None, best
    d = posixpath.normpath(best.destination)
    if cpath == d:
        return best.source, best
    return posixpath.join(best.source, posixpath.relpath(cpath, d)), best


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ConfigFile:
    """The registry's configuration file as the container sees it."""

    path: str  # in the container
    origin: Literal["command", "env", "default"]
    where: str = ""  # the host path, or "NAME:PATH" when read through the Docker API
    data: dict = field(default_factory=dict)  # the parsed YAML ({} when missing or bad)
    found: bool = False
    error: str = ""  # why it could not be parsed


def _command(attrs: dict) -> list[str]:
    cfg = _d(_d(attrs).get("Config"))
    return [_s(a) for a in [*_l(cfg.get("Entrypoint")), *_l(cfg.get("Cmd"))]]


def env_of(attrs: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _l(_d(_d(attrs).get("Config")).get("Env")):
        k, sep, v = _s(item).partition("=")
        if sep and k:
            out[k] = v
    return out


def image_of(attrs: dict) -> str:
    return _s(_d(_d(attrs).get("Config")).get("Image"))


def is_v3(image: str) -> bool:
    """registry:3 / distribution:3.x: the config path moved to /etc/distribution."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return tag.startswith("3")


def config_path(attrs: dict) -> tuple[str, Literal["command", "env", "default"]]:
    """Where the registry reads its configuration: argv wins over the environment."""
    argv = _command(attrs)
    if "serve" in argv:
        i = argv.index("serve")
        if i + 1 < len(argv) and argv[i + 1].startswith("/"):
            return argv[i + 1], "command"
    else:
        # the official images' entrypoint.sh turns "CMD [config.yml]" into `registry serve it`
        for a in argv[1:2] if len(argv) > 1 else []:
            if a.endswith((".yml", ".yaml")) and a.startswith("/"):
                return a, "command"
    env = env_of(attrs).get("REGISTRY_CONFIGURATION_PATH", "")
    if env.startswith("/"):
        return env, "env"
    return (V3_CONFIG if is_v3(image_of(attrs)) else V2_CONFIG), "default"


def parse_config(data: bytes | None) -> tuple[dict, str]:
    """A YAML configuration: (mapping, error). Never raises."""
    if data is None:
        return {}, ""
    if len(data) > MAX_CONFIG_BYTES:
        return {}, "the configuration file is over 1 MiB"
    import yaml

    try:
        # libyaml's loader when present: the pure-Python one takes seconds on a large file
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc = yaml.load(data.decode("utf-8", errors="replace"), Loader=loader)  # noqa: S506
    except (yaml.YAMLError, RecursionError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return {}, f"not valid YAML: {first[:200]}"
    if doc is None:
        return {}, ""
    if not isinstance(doc, dict):
        return {}, "the configuration is not a YAML mapping"
    return doc, ""


def read_only(doc: dict) -> bool:
    """``storage.maintenance.readonly.enabled`` is on: the registry refuses pushes."""
    node: object = doc
    for key in ("storage", "maintenance", "readonly", "enabled"):
        node = _lookup(node, key)
    return node is True or (isinstance(node, str) and node.strip().lower() == "true")


class Settings:
    """The effective settings: ``REGISTRY_A_B_C`` overrides ``a.b.c`` of the file."""

    def __init__(self, file: dict, env: dict[str, str]) -> None:
        self.file = file
        self.env = env

    def env_key(self, *path: str) -> str:
        return "REGISTRY_" + "_".join(p.upper() for p in path)

    def file_value(self, *path: str) -> object:
        node: object = self.file
        for p in path:
            node = _lookup(node, p)
            if node is None:
                return None
        return node

    def get(self, *path: str, default: str = "") -> str:
        key = self.env_key(*path)
        if key in self.env:
            return self.env[key]
        v = self.file_value(*path)
        return _s(v) if v is not None and not isinstance(v, dict | list) else default

    def section(self, *path: str) -> dict:
        return _d(self.file_value(*path))

    def choice(self, section: str, skip: frozenset[str] = frozenset()) -> str:
        """A section naming one kind (storage: s3, auth: htpasswd): env, else the file's key."""
        env = self.env.get(self.env_key(section), "")
        if env:
            return env.strip().lower()
        for k in self.section(section):
            if isinstance(k, str) and k.lower() not in skip:
                return k.lower()
        return ""


def _lookup(node: object, key: str) -> object:
    d = _d(node)
    if key in d:
        return d[key]
    for k, v in d.items():  # the registry matches keys without regard to case
        if isinstance(k, str) and k.lower() == key.lower():
            return v
    return None


# --------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class Storage:
    driver: str  # filesystem | s3 | inmemory | azure | gcs | ... ("" = none configured)
    root: str  # the filesystem driver's root directory, in the container
    host_path: str | None  # where that is on the host (None: not on a host directory)
    mount: Mount | None  # the mount holding it (None: the container's writable layer)
    v1_path: str = ""  # STORAGE_PATH, a v1 setting v2 ignores
    params: dict = field(default_factory=dict)  # the driver's settings (no secrets shown)
    secret_set: bool = False  # a secret-like driver setting (s3 secretkey) has a value
    env_overrides: tuple[str, ...] = ()  # REGISTRY_STORAGE_<DRIVER>_* names (values unkept)
    redirect_disabled: bool = False  # storage.redirect.disable: blobs are served, not redirected

    @property
    def kind(self) -> Literal["bind", "volume", "anonymous-volume", "layer", "tmpfs", "driver"]:
        if self.driver != "filesystem":
            return "driver"
        if self.mount is None:
            return "layer"
        if self.mount.kind == "tmpfs":
            return "tmpfs"
        if self.mount.kind == "volume":
            return "anonymous-volume" if self.mount.anonymous else "volume"
        return "bind"

    @property
    def persisted(self) -> bool:
        """Kept outside the container: a host directory or a named volume."""
        return self.kind in ("bind", "volume")


def s3_spec(st: Storage):  # noqa: ANN201 - plan.StorageSpec
    """A running registry's S3 storage as a plan's StorageSpec (never the secret key)."""
    from regwizard.plan import StorageSpec

    p = st.params
    return StorageSpec(
        driver="s3",
        endpoint=p.get("regionendpoint", ""),
        bucket=p.get("bucket", ""),
        region=p.get("region", "") or "us-east-1",
        access_key=p.get("accesskey", ""),
        root_directory=p.get("rootdirectory", ""),
    )


@dataclass(frozen=True)
class Tls:
    certificate: str = ""  # in the container ("" = plain HTTP)
    key: str = ""
    certificate_host: str | None = None
    key_host: str | None = None
    letsencrypt: bool = False


@dataclass(frozen=True)
class Auth:
    kind: str = ""  # htpasswd | token | silly | "" (none)
    htpasswd: str = ""  # in the container
    htpasswd_host: str | None = None
    htpasswd_mount: Mount | None = None
    realm: str = ""

    @property
    def single_file_mount(self) -> bool:
        """The htpasswd file itself is bind-mounted: a rename-style rewrite is never seen."""
        m = self.htpasswd_mount
        return bool(
            m
            and m.kind == "bind"
            and self.htpasswd
            and posixpath.normpath(m.destination) == posixpath.normpath(self.htpasswd)
        )


@dataclass(frozen=True)
class RegistryFacts:
    """One registry container, as docker inspect and its configuration describe it."""

    name: str
    image: str
    status: str  # running | restarting | exited | created | paused | dead | ""
    exit_code: int = 0
    restart_count: int = 0
    started_at: str = ""
    finished_at: str = ""
    restart_policy: str = "no"
    host_network: bool = False
    published: dict[int, list[int]] = field(default_factory=dict)  # container port -> host ports
    listen_addr: str = ""  # http.addr as configured ("" = default :5000)
    listen_port: int = 5000
    labels: dict[str, str] = field(default_factory=dict)
    config: ConfigFile | None = None
    storage: Storage = field(
        default_factory=lambda: Storage("filesystem", REGISTRY_DATA, None, None)
    )
    tls: Tls = field(default_factory=Tls)
    auth: Auth = field(default_factory=Auth)
    http_secret: Literal["env", "file", ""] = ""
    proxy_remote: str = ""  # proxy.remoteurl: a pull-through cache
    proxy_login: bool = False  # proxy.username/password set (their values are never kept)
    delete_enabled: bool = False  # storage.delete.enabled: DELETE of a manifest works (else 405)
    env_names: tuple[str, ...] = ()  # names only: values may be secret
    mounts: tuple[Mount, ...] = ()

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def restarting(self) -> bool:
        return self.status == "restarting"

    def crash_looping(self, now: float | None = None) -> bool:
        """Restarting, or caught in the instant it runs between two crashes: restarted by
        its policy (a manual restart resets the count) and started only moments ago."""
        if self.restarting:
            return True
        if not self.running or self.restart_count < 1:
            return False
        up = self.up_for(now)
        return up is not None and up < CRASH_WINDOW

    def up_for(self, now: float | None = None) -> float | None:
        """Seconds since the container last started; None when Docker's time is unreadable."""
        started = _epoch(self.started_at)
        if started is None:
            return None
        import time

        return (time.time() if now is None else now) - started

    @property
    def managed(self) -> bool:
        return LABEL_MANAGED in self.labels

    @property
    def config_hash(self) -> str:
        return self.labels.get(LABEL_HASH, "")

    def publishes(self, port: int) -> bool:
        return any(port in hps for hps in self.published.values())


def published_ports(attrs: dict) -> dict[int, list[int]]:
    hc = _d(_d(attrs).get("HostConfig"))
    if _s(hc.get("NetworkMode")) == "host":
        return {}
    out: dict[int, list[int]] = {}
    for key, binds in _d(hc.get("PortBindings")).items():
        num, _, proto = _s(key).partition("/")
        if proto not in ("", "tcp") or not num.isdigit():
            continue
        for b in _l(binds):
            hp = _s(_d(b).get("HostPort"))
            if hp.isdigit() and 0 < int(hp) < 65536:
                out.setdefault(int(num), []).append(int(hp))
    return out


def restart_policy(attrs: dict) -> str:
    return _s(_d(_d(_d(attrs).get("HostConfig")).get("RestartPolicy")).get("Name")) or "no"


def go_bool(text: str) -> bool:
    """A setting as the registry reads a boolean (Go's strconv.ParseBool; else false)."""
    return text.strip() in ("1", "t", "T", "true", "TRUE", "True")


def port_of(addr: str, default: int = 5000) -> int:
    tail = addr.rpartition(":")[2]
    return int(tail) if tail.isdigit() and 0 < int(tail) < 65536 else default


def interpret(attrs: dict, read: Reader) -> RegistryFacts:
    """RegistryFacts from ``docker inspect`` data; ``read`` gives files of the container."""
    attrs = _d(attrs)
    state = _d(attrs.get("State"))
    env = env_of(attrs)
    mounts = mounts_of(attrs)
    cpath, origin = config_path(attrs)
    data, where = read(cpath)
    parsed, error = parse_config(data)
    config = ConfigFile(cpath, origin, where, parsed, data is not None, error)
    s = Settings(parsed, env)

    driver = s.choice("storage", _STORAGE_OPTIONS)
    if not driver and not config.found:
        driver = "filesystem"  # no file, no env: the image's built-in default
    root = s.get("storage", "filesystem", "rootdirectory") or REGISTRY_DATA
    root = posixpath.normpath(root) if root.startswith("/") else REGISTRY_DATA
    if driver == "filesystem":
        hpath, mount = host_path(mounts, root)
    else:
        hpath, mount = None, None
    params: dict[str, str] = {}
    secret_set = False
    overrides: list[str] = []
    if driver and driver != "filesystem":
        given = {
            k.lower(): v for k, v in s.section("storage", driver).items() if isinstance(k, str)
        }
        prefix = f"REGISTRY_STORAGE_{driver.upper()}_"
        for name, v in env.items():  # the registry's env overrides win over the file
            if name.startswith(prefix) and len(name) > len(prefix):
                given[name[len(prefix) :].lower()] = v
                overrides.append(name)
        for k, v in given.items():
            # the access key id is kept (a plan holds it); every other *key is a secret
            if k == "accesskey" or not re.search(r"secret|key|password|token", k, re.I):
                params[k] = _s(v)
            elif _s(v):
                secret_set = True
    storage = Storage(
        driver,
        root,
        hpath,
        mount,
        env.get("STORAGE_PATH", ""),
        params,
        secret_set,
        tuple(sorted(overrides)),
        go_bool(s.get("storage", "redirect", "disable")),
    )

    cert = s.get("http", "tls", "certificate")
    key = s.get("http", "tls", "key")
    tls = Tls(
        cert,
        key,
        host_path(mounts, cert)[0] if cert else None,
        host_path(mounts, key)[0] if key else None,
        letsencrypt=bool(s.section("http", "tls", "letsencrypt"))
        or bool(s.get("http", "tls", "letsencrypt", "email")),
    )

    kind = s.choice("auth")
    ht = s.get("auth", "htpasswd", "path") if kind == "htpasswd" else ""
    ht_host, ht_mount = host_path(mounts, ht) if ht else (None, None)
    auth = Auth(kind, ht, ht_host, ht_mount, s.get("auth", kind, "realm") if kind else "")

    if "REGISTRY_HTTP_SECRET" in env:
        secret: Literal["env", "file", ""] = "env"
    elif s.file_value("http", "secret") not in (None, ""):
        secret = "file"
    else:
        secret = ""

    addr = s.get("http", "addr")
    labels = {_s(k): _s(v) for k, v in _d(_d(attrs.get("Config")).get("Labels")).items() if _s(k)}
    hc = _d(attrs.get("HostConfig"))
    return RegistryFacts(
        name=_s(attrs.get("Name")).lstrip("/"),
        image=image_of(attrs),
        status=_s(state.get("Status")),
        exit_code=_int(state.get("ExitCode")),
        restart_count=_int(attrs.get("RestartCount")),
        started_at=_s(state.get("StartedAt")),
        finished_at=_s(state.get("FinishedAt")),
        restart_policy=restart_policy(attrs),
        host_network=_s(hc.get("NetworkMode")) == "host",
        published=published_ports(attrs),
        listen_addr=addr,
        listen_port=port_of(addr),
        labels=labels,
        config=config,
        storage=storage,
        tls=tls,
        auth=auth,
        http_secret=secret,
        proxy_remote=s.get("proxy", "remoteurl"),
        proxy_login=bool(s.get("proxy", "username") or s.get("proxy", "password")),
        delete_enabled=go_bool(s.get("storage", "delete", "enabled")),
        env_names=tuple(sorted(env)),
        mounts=tuple(mounts),
    )


# --------------------------------------------------------------------------- finding it


def looks_like_registry(attrs: dict, tags: list[str] | tuple[str, ...] = ()) -> bool:
    """An image named registry/distribution, or a `registry serve` command line."""
    for ref in [image_of(attrs), *tags]:
        name = _s(ref).split("@", 1)[0]
        last = name.rsplit("/", 1)[-1].split(":", 1)[0].lower()
        if "registry" in last or "distribution" in last:
            return True
    argv = _command(attrs)
    text = " ".join(argv)
    return "serve" in argv and ("registry" in text or "distribution" in text)


def describe(attrs: dict) -> str:
    """``NAME (IMAGE, STATUS, port P)`` for a list of candidates."""
    attrs = _d(attrs)
    name = _s(attrs.get("Name")).lstrip("/")
    status = _s(_d(attrs.get("State")).get("Status"))
    hp = sorted({p for ps in published_ports(attrs).values() for p in ps})
    port = f", port {', '.join(map(str, hp))}" if hp else ""
    return f"{name} ({image_of(attrs)}, {status}{port})"


def explicit_values(facts: RegistryFacts) -> dict[str, Any]:
    """A small summary for logs and notes (never a secret value)."""
    return {
        "storage": facts.storage.driver,
        "root": facts.storage.root,
        "tls": bool(facts.tls.certificate),
        "auth": facts.auth.kind,
        "config": facts.config.path if facts.config else "",
    }


def yaml_str(v: str) -> str:
    """A YAML double-quoted scalar, ASCII only. Not json.dumps: JSON writes a character
    above U+FFFF as a surrogate pair (\\ud83d\\udc33), which YAML has not got; the
    registry's parser (go-yaml) refuses it and the registry never starts."""
    out = []
    for ch in v:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
    return '"' + "".join(out) + '"'
