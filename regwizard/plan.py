"""The plan: what the registry setup should look like. Loaded from / saved to TOML.

The plan never holds a plaintext password or a private key: users carry bcrypt
hashes, and passwords live in :class:`Secrets`, in memory only.

CONTRACT (shared by engine, CLI and UI):
- ``load_plan(path) -> Plan`` / ``parse_plan(text) -> Plan`` raise PlanError naming the key.
- ``dump_plan(plan) -> str`` writes TOML (no secrets); ``save_plan(plan, path)`` writes it 0600.
- ``validate_plan(plan) -> list[PlanError]`` (empty = valid); ``Plan.validate()`` raises the first.
- Field validators ``check_<field>(value) -> str | None`` return a message or None (UI uses them inline).

TOML layout: ``[registry]``, ``[host]``, ``[[clients]]``, ``[certificate]``, ``[[users]]``,
``[policy]`` (``remove_users``) and ``[verify]``. Unknown keys are errors.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import posixpath
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from regwizard.errors import PlanError, RegwizardError
from regwizard.htpasswd import BCRYPT_RE, DEFAULT_COST, MAX_COST, cost_of, cost_words

LOCAL = "local"


def conn_key(c: Connection) -> str:
    """One machine of a plan: the same key is the same connection (deduplicated)."""
    return "local" if c.is_local else f"{c.user}@{c.address}:{c.port}"


@dataclass
class Connection:
    """How to reach one host. ``address == "local"`` means this machine."""

    address: str = LOCAL
    port: int = 22
    user: str = "root"
    auth: str = "key"  # key | agent | password
    key_file: str = "~/.ssh/id_ed25519"
    sudo: bool = False
    host_key: str = ""  # pinned "SHA256:..." or a whole ssh-keygen -lf line; "" = known_hosts
    label: str = ""  # optional display name (e.g. "node1"); defaults to address
    # container runtimes on this client that must trust the registry (clients only)
    runtimes: list[str] = field(default_factory=lambda: ["docker"])
    # may apply set config_path in /etc/containerd/config.toml (and restart containerd)?
    manage_containerd_config: bool = False

    @property
    def is_local(self) -> bool:
        return self.address == LOCAL

    @property
    def name(self) -> str:
        return self.label or ("this machine" if self.is_local else self.address)


@dataclass
class RegistrySpec:
    domain: str = "reg.example.test"
    ip: str = ""
    manage_hosts_file: bool = True
    port: int = 443
    container: str = "registry"
    image: str = "registry:2"
    image_archive: str = ""
    storage: str = "/opt/docker-image"
    config_dir: str = "/etc/regwizard"
    realm: str = "Registry Realm"
    # a pull-through cache of this upstream ("" = an ordinary registry); its credentials
    # are never in the plan (Secrets.upstream_*)
    proxy_remote_url: str = ""
    proxy_ca_file: str = ""  # local PEM: the CA of the upstream's certificate ("" = system)

    @property
    def is_mirror(self) -> bool:
        return bool(self.proxy_remote_url)

    allow_delete: bool = False  # storage.delete.enabled: manifests may be deleted (API, rm)

    @property
    def address(self) -> str:
        """What clients type: domain, or domain:port when the port is not 443."""
        return self.domain if self.port == 443 else f"{self.domain}:{self.port}"


@dataclass
class CertificateSpec:
    mode: str = "self-signed"  # self-signed | local-ca | provided
    country: str = "CN"
    state: str = ""
    locality: str = ""
    organization: str = ""
    organizational_unit: str = ""
    common_name: str = ""  # defaults to the domain
    email: str = ""
    days: int = 825
    # rsa-2048 | rsa-4096 | ecdsa-p256. A plan file without `key` means rsa-4096, the
    # default when such plans were written: keep this default, or their next apply would
    # issue a new certificate. New plans say NEW_PLAN_KEY explicitly (see new_plan).
    key: str = "rsa-4096"
    extra_sans: list[str] = field(default_factory=list)
    cert_file: str = ""  # mode = provided: local paths
    key_file: str = ""


@dataclass
class StorageSpec:
    """Where the registry keeps its data. ``filesystem`` (the default): the registry
    host's ``registry.storage`` directory. ``s3``: a bucket on an S3-compatible object
    store, shared by the registry host and every ``[[replicas]]`` host. The secret key is
    never in the plan (``Secrets.s3_secret_key``)."""

    driver: str = "filesystem"  # filesystem | s3
    endpoint: str = ""  # s3: http(s)://HOST:PORT of the S3 API (distribution's regionendpoint)
    bucket: str = ""
    region: str = "us-east-1"
    access_key: str = ""
    root_directory: str = ""  # s3: a key prefix inside the bucket ("" = the bucket's root)

    @property
    def is_s3(self) -> bool:
        return self.driver == "s3"


@dataclass
class User:
    name: str
    bcrypt: str


@dataclass
class VerifySpec:
    user: str = ""  # empty = the first user
    # a mirror refuses pushes: verify pulls this repository:tag (it must exist upstream)
    mirror_image: str = ""


@dataclass
class Plan:
    registry: RegistrySpec = field(default_factory=RegistrySpec)
    host: Connection = field(default_factory=Connection)
    clients: list[Connection] = field(default_factory=lambda: [Connection()])
    certificate: CertificateSpec = field(default_factory=CertificateSpec)
    users: list[User] = field(default_factory=list)
    remove_users: list[str] = field(default_factory=list)
    verify: VerifySpec = field(default_factory=VerifySpec)
    storage: StorageSpec = field(default_factory=StorageSpec)
    # more registry hosts serving the same name from the same storage (HA); same fields
    # as [host]
    replicas: list[Connection] = field(default_factory=list)

    @property
    def registry_hosts(self) -> list[Connection]:
        """The registry host, then every replica."""
        return [self.host, *self.replicas]

    @property
    def common_name(self) -> str:
        """The certificate CN: ``certificate.common_name``, else the domain."""
        return effective_common_name(self)

    @property
    def verify_user(self) -> str:
        """The user the verification logs in as: ``verify.user``, else the first user."""
        if self.verify.user:
            return self.verify.user
        return self.users[0].name if self.users else ""

    def user(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)

    def validate(self) -> None:
        """Raise a PlanError (a :class:`PlanErrors` when there are several) if invalid."""
        errors = validate_plan(self)
        if errors:
            raise PlanErrors.of(errors)


@dataclass
class Secrets:
    """In-memory only. Never logged, saved or shown."""

    ssh_passwords: dict[str, str] = field(default_factory=dict)  # by Connection address
    sudo_passwords: dict[str, str] = field(default_factory=dict)  # by Connection address
    verify_password: str = ""
    accepted_host_keys: set[str] = field(default_factory=set)  # "SHA256:..." accepted this run
    # a mirror's upstream login; both empty = keep what the registry host's config has
    upstream_user: str = ""
    upstream_password: str = ""
    upstream_anonymous: bool = False  # "none" was chosen: drop stored upstream credentials
    s3_secret_key: str = ""  # [storage] driver = s3: the access key's secret

    def all_values(self) -> list[str]:
        vals = [
            *self.ssh_passwords.values(),
            *self.sudo_passwords.values(),
            self.verify_password,
            self.upstream_password,
            self.s3_secret_key,
        ]
        return [v for v in vals if v]


class PlanErrors(PlanError):
    """Several plan problems at once. ``field``/``message`` are the first one's."""

    def __init__(self, errors: list[PlanError]) -> None:
        first = errors[0]
        super().__init__(first.field, first.message, first.fix)
        self.errors = list(errors)
        lines = [f"the plan has {len(errors)} problems:"]
        for e in errors:
            lines.append(f"  - {e.cause}" + (f" (fix: {e.fix})" if e.fix else ""))
        self.cause = "\n".join(lines)
        self.fix = ""

    @staticmethod
    def of(errors: list[PlanError]) -> PlanError:
        """One error as itself; several combined."""
        return errors[0] if len(errors) == 1 else PlanErrors(errors)


def effective_common_name(plan: Plan) -> str:
    return plan.certificate.common_name or plan.registry.domain


# --------------------------------------------------------------------------- choices

MODES = ("self-signed", "local-ca", "provided")
KEY_KINDS = ("rsa-2048", "rsa-4096", "ecdsa-p256")
# The key of a new plan (`plan new`, the wizard's New setup): ECDSA P-256 is made in
# milliseconds where RSA-4096 takes 0.2-1 s, and every Docker, containerd and podman
# client accepts it. RSA stays selectable. Only new plans get it: a plan that leaves
# `key` out keeps CertificateSpec's default (rsa-4096), and save_plan writes a key that
# differs from that default, so a saved ECDSA plan always says so.
NEW_PLAN_KEY = "ecdsa-p256"


def new_plan() -> Plan:
    """The plan a new setup starts from: the defaults, with NEW_PLAN_KEY."""
    return Plan(certificate=CertificateSpec(key=NEW_PLAN_KEY))


AUTHS = ("key", "agent", "password")
RUNTIMES = ("docker", "containerd", "podman")
MAX_DAYS = 3650

# The bcrypt hash in EXAMPLE_PLAN. Its password was random and thrown away: nobody can
# log in with it, so an example deployed unchanged is not an open door.
PLACEHOLDER_BCRYPT = "$2b$12$ri1x9.1ktxx/pHrTP/HWYOQHqffRsNGWi0cWxRJPLK8aYSy2AcLai"

# --------------------------------------------------------------------------- helpers

_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}


def _show(value: object, limit: int = 60) -> str:
    """A value quoted for a message: never raw control characters, never huge."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    out = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    return f'"{out}"'


def _bad_chars(v: str) -> str | None:
    for ch in v:
        cat = unicodedata.category(ch)
        if cat in _BAD_CATEGORIES:
            if ch in "\n\r\u2028\u2029":
                return "must be a single line (no line breaks)"
            if ch == "\0":
                return "contains a NUL character"
            return f"contains an invisible control character (U+{ord(ch):04X})"
    return None


def _text(v: object, *, max_len: int | None = None, required: bool = False) -> str | None:
    """Common checks for any text field."""
    if not isinstance(v, str):
        return "must be text"
    if required and not v.strip():
        return "is required"
    if v != v.strip() and v.strip():
        return "has spaces at the start or end"
    if max_len is not None and len(v) > max_len:
        return f"is too long ({len(v)} characters, at most {max_len})"
    return _bad_chars(v)


_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _ip_or_none(v: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(v)
    except ValueError:
        return None


def is_ip(v: object) -> bool:
    """An IPv4 or IPv6 address (no brackets, no port)."""
    return isinstance(v, str) and _ip_or_none(v) is not None


def registry_addresses(plan: Plan) -> list[str]:
    """The IP of every registry host, the primary's (``registry.ip``) first, then each
    replica's address that is an IP: what /etc/hosts maps the registry's name to."""
    out = [plan.registry.ip] if plan.registry.ip else []
    for c in plan.replicas:
        if is_ip(c.address) and c.address not in out:
            out.append(c.address)
    return out


def storage_summary(plan: Plan) -> str:
    """Where the images live, in words (never the S3 secret key, which no plan holds)."""
    st = plan.storage
    if not st.is_s3:
        where = "every registry host's" if plan.replicas else "the registry host's"
        return f"{st.driver}: {plan.registry.storage} on {where} disk"
    out = f"s3: bucket {st.bucket or '?'} at {st.endpoint or '?'} (region {st.region}"
    if st.access_key:
        out += f", access key {st.access_key}"
    if st.root_directory:
        out += f", prefix {st.root_directory}"
    return out + ")" + (", shared by every registry host" if plan.replicas else "")


def registry_hosts_summary(plan: Plan) -> str:
    """``node1 = 10.0.0.2 (primary), 10.0.0.3 (replica)``: every registry host."""

    def one(c: Connection, role: str) -> str:
        name = f"{c.label} = {c.address}" if c.label and not c.is_local else c.name
        return f"{name} ({role})"

    return ", ".join([one(plan.host, "primary"), *(one(c, "replica") for c in plan.replicas)])


def cert_extra_sans(plan: Plan) -> list[str]:
    """``extra_sans``, then each replica's address: regwizard reaches a replica by its
    address and verifies the one certificate every registry host serves."""
    reg = plan.registry
    out = list(plan.certificate.extra_sans) if isinstance(plan.certificate.extra_sans, list) else []
    for c in plan.replicas:
        a = c.address
        if a != LOCAL and a not in out and a not in (reg.domain, reg.ip):
            out.append(a)
    return out


def san_list(plan: Plan) -> list[str]:
    """The certificate's SANs as openssl writes them: ``DNS:domain``, ``IP:ip``, extras
    (``extra_sans`` and every replica's address)."""
    reg = plan.registry
    sans = [f"DNS:{reg.domain}"] + ([f"IP:{reg.ip}"] if reg.ip else [])
    for s in cert_extra_sans(plan):
        sans.append(("IP:" if is_ip(s) else "DNS:") + s)
    return sans


def split_image(ref: str) -> tuple[str, str, str]:
    """``name[:tag][@digest]`` -> (name, tag, digest); the tag defaults to latest without a
    digest. The tag is after the last ':' of the last path part only: ``host:5000/reg``
    has no tag, ``registry:2@sha256:ab..`` has tag 2 and a digest."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        name, _, tag = name.rpartition(":")
    if not tag and not digest:
        tag = "latest"
    return name, tag, digest


def _hostname_problem(v: str) -> str | None:
    """RFC 1123 host name rules; None when fine."""
    if not v:
        return "is required"
    if not v.isascii():
        try:
            puny = v.encode("idna").decode("ascii")
        except UnicodeError:
            return "must use only letters a-z, digits, hyphens and dots"
        return f"must be ASCII; write the punycode form {_show(puny)}"
    if v.endswith("."):
        return "must not end with a dot"
    if len(v) > 253:
        return f"is too long ({len(v)} characters, at most 253)"
    for label in v.split("."):
        if not label:
            return "has an empty part (two dots in a row, or a leading dot)"
        if len(label) > 63:
            return f"has a part longer than 63 characters ({label[:20]}…)"
        if not _LABEL_RE.fullmatch(label):
            return (
                "may only use letters, digits, hyphens and dots, and no part may "
                "start or end with a hyphen"
            )
    if v.rsplit(".", 1)[-1].isdigit():
        return "cannot end in an all-digit part (that looks like an IP address)"
    return None


def _choice(v: object, choices: Iterable[str]) -> str | None:
    choices = tuple(choices)
    if isinstance(v, str) and v in choices:
        return None
    return "must be one of " + ", ".join(choices)


def _int_range(v: object, lo: int, hi: int, what: str) -> str | None:
    if not isinstance(v, int) or isinstance(v, bool):
        return f"{what} must be a whole number"
    if not lo <= v <= hi:
        return f"{what} must be between {lo} and {hi}"
    return None


# --------------------------------------------------------------------------- field checks


def check_country(v: object) -> str | None:
    """Two ASCII letters (ISO 3166), e.g. CN. Empty leaves C out of the subject."""
    if not isinstance(v, str):
        return "must be text"
    if v == "":
        return None
    if len(v) != 2 or not v.isascii() or not v.isalpha():
        return "Country must be 2 letters (ISO 3166), e.g. CN"
    return None


def check_common_name(v: object) -> str | None:
    """1..64 characters; empty means "use the domain"."""
    if isinstance(v, str) and v == "":
        return None
    msg = _text(v, max_len=64)
    return f"Common name {msg}" if msg else None


def check_domain(v: object) -> str | None:
    if not isinstance(v, str):
        return "must be text"
    if _ip_or_none(v) is not None:
        return "is an IP address; give the registry a name and put the IP in registry.ip"
    if v.startswith("[") or ":" in v:
        return "must be a bare host name, without a port or brackets (the port is its own field)"
    msg = _hostname_problem(v)
    if msg:
        return f"Domain {msg}" if msg == "is required" else msg
    return None


def check_ip(v: object) -> str | None:
    """Empty, or an IPv4/IPv6 address the clients can reach."""
    if not isinstance(v, str):
        return "must be text"
    if v == "":
        return None
    if v.startswith("[") and v.endswith("]"):
        return "write IPv6 addresses without brackets"
    if "%" in v:
        return "must not carry a zone (%...); certificates cannot hold one"
    ip = _ip_or_none(v)
    if ip is None:
        return f"{_show(v)} is not an IPv4 or IPv6 address (e.g. 10.0.0.2)"
    if ip.is_unspecified:
        return f"{v} is not an address clients can reach"
    if ip.is_multicast:
        return f"{v} is a multicast address"
    return None


def check_port(v: object) -> str | None:
    return _int_range(v, 1, 65535, "Port")


def check_days(v: object) -> str | None:
    """The certificate's lifetime in days, 1..MAX_DAYS.

    Renewal: apply (and doctor) replace the certificate when fewer than
    ``pki.renew_days(days) = min(30, days // 3)`` days are left. 30 for a lifetime of
    90 days or more, a third of it when shorter (days 1 and 2: only once expired), so a
    certificate just issued is never due at once, and each rerun keeps it and its key."""
    return _int_range(v, 1, MAX_DAYS, "Days")


def check_key(v: object) -> str | None:
    return _choice(v, KEY_KINDS)


def check_mode(v: object) -> str | None:
    return _choice(v, MODES)


def check_auth(v: object) -> str | None:
    return _choice(v, AUTHS)


_SYSTEM_DIRS = frozenset(
    "/bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root "
    "/run /sbin /srv /sys /tmp /usr /usr/bin /usr/lib /usr/local /usr/sbin /var /var/lib "
    "/var/log /var/run /etc/docker /var/lib/docker".split()
)
_VIRTUAL_FS = ("/proc", "/sys", "/dev", "/run")


def check_path(v: object, what: str = "Path") -> str | None:
    """An absolute, normalized directory on the registry host (not / nor a system dir)."""
    msg = _text(v, max_len=4096, required=True)
    if msg:
        return f"{what} {msg}"
    assert isinstance(v, str)
    if not v.startswith("/"):
        return f"{what} must be an absolute path (start with /), e.g. /opt/docker-image"
    if v == "/":
        return f"{what} cannot be / (the whole disk)"
    if ".." in v.split("/"):
        return f"{what} cannot contain .. components"
    norm = posixpath.normpath(v)
    if norm != v or v.startswith("//"):
        return f"{what} is not normalized; write {_show(norm.replace('//', '/'))}"
    if ":" in v or "," in v:
        return f"{what} cannot contain ':' or ',' (they break docker's -v/--mount syntax)"
    if v in _SYSTEM_DIRS:
        return f"{what} {v} is a system directory; use a dedicated one such as {v}/registry"
    top = "/" + v.split("/")[1]
    if top in _VIRTUAL_FS:
        return f"{what} cannot be under {top} (a virtual filesystem)"
    return None


def check_storage(v: object) -> str | None:
    return check_path(v, "Storage")


def check_config_dir(v: object) -> str | None:
    return check_path(v, "Config directory")


_CONTAINER_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def check_container(v: object) -> str | None:
    if not isinstance(v, str):
        return "must be text"
    if not v:
        return "Container name is required"
    if len(v) > 128 or not _CONTAINER_RE.fullmatch(v):
        return (
            "Container name must start with a letter or digit and use only letters, "
            "digits, _ . - (at most 128)"
        )
    return None


_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|-+)"
_PATH_COMP = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOM_COMP = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOM_COMP}(?:\.{_DOM_COMP})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"\w[\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME_RE = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMP}(?:/{_PATH_COMP})*", re.ASCII)
_REF_RE = re.compile(
    rf"(?P<name>{_NAME_RE.pattern})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII
)
# the digests Docker verifies: algorithm -> hex length (lowercase hex only)
DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}


def check_image(v: object) -> str | None:
    """A docker image reference: ``name[:tag][@digest]``, e.g. ``registry:2``,
    ``host:5000/lib/registry:2.8`` or ``registry:2@sha256:<64 hex>`` (pinned). A digest
    is ``sha256:`` (or sha384/sha512) and lowercase hex of the right length, as Docker
    checks it: anything else would only fail later, at pull time."""
    if not isinstance(v, str):
        return "must be text"
    if not v:
        return "Image is required, e.g. registry:2"
    if len(v) > 512:
        return "Image reference is too long"
    m = _REF_RE.fullmatch(v)
    if m and len(m.group("name")) <= 255:
        digest = m.group("digest")
        if digest:
            algo, _, hexpart = digest.partition(":")
            want = DIGEST_HEX.get(algo)
            if want is None:
                return f"Image digest algorithm {_show(algo)} is not one Docker takes; use sha256"
            if len(hexpart) != want or hexpart != hexpart.lower():
                return (
                    f"Image digest must be {algo}: followed by {want} lowercase hex digits "
                    f"(got {len(hexpart)}), as `docker images --digests` prints it"
                )
        return None
    if _REF_RE.fullmatch(v.lower()):
        return "Image repository names must be lowercase"
    return f"{_show(v)} is not an image reference like registry:2 or host:5000/registry:2.8"


_USERNAME_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


def check_username(v: object) -> str | None:
    """Registry (htpasswd) user name."""
    if not isinstance(v, str):
        return "must be text"
    if not v:
        return "User name is required"
    if ":" in v:
        return "User name cannot contain a colon (htpasswd lines are name:hash)"
    if not _USERNAME_RE.fullmatch(v):
        return (
            "User name must be 1-32 characters: lowercase letters, digits, _ . -, "
            "starting with a letter or _"
        )
    return None


_SSH_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")


def _text_matching(v: object, pattern: re.Pattern[str], message: str) -> str | None:
    """Text that ``pattern`` matches whole, else ``message``."""
    if not isinstance(v, str):
        return "must be text"
    return None if pattern.fullmatch(v) else message


def check_ssh_user(v: object) -> str | None:
    return _text_matching(
        v,
        _SSH_USER_RE,
        "SSH user must be a login name such as root or admin (letters, digits, _ . -)",
    )


def check_bcrypt(v: object) -> str | None:
    """A bcrypt hash ($2a$/$2b$/$2y$) of cost 4..MAX_COST (htpasswd.MAX_COST, 14)."""
    if not isinstance(v, str):
        return "must be text"
    if BCRYPT_RE.fullmatch(v):
        cost = cost_of(v)
        if cost > MAX_COST:
            return (
                f"has bcrypt cost {cost}, above the limit of {MAX_COST}: the registry checks "
                f"the hash on every request, so each one would cost it {cost_words(cost)} of "
                f"CPU ({cost_words(DEFAULT_COST)} at cost {DEFAULT_COST}, "
                f"{cost_words(MAX_COST)} at {MAX_COST})"
            )
        return None
    if v.startswith("$apr1$"):
        kind = "an Apache MD5 ($apr1$) hash"
    elif v.startswith("{SHA}"):
        kind = "a SHA-1 ({SHA}) hash"
    elif v.startswith(("$1$", "$5$", "$6$")):
        kind = "a crypt(3) hash"
    elif v.startswith("$2"):
        kind = "a malformed bcrypt hash"
    else:
        kind = "not a bcrypt hash"
    return (
        f"is {kind}; the registry only accepts bcrypt ($2b$...) and silently ignores "
        "other lines, so login would fail with 401"
    )


_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")


def check_email(v: object) -> str | None:
    if not isinstance(v, str):
        return "must be text"
    if v == "":
        return None
    if len(v) > 128 or not _EMAIL_RE.fullmatch(v):
        return "Email must look like name@example.test (ASCII, at most 128 characters)"
    return None


def check_address(v: object) -> str | None:
    """``local``, a host name or an IP address (no user@, no :port, no brackets)."""
    if not isinstance(v, str):
        return "must be text"
    if v == LOCAL:
        return None
    if not v:
        return 'Address is required ("local" for this machine)'
    if "@" in v:
        return "put the login name in the user field, not in the address"
    if v.startswith("["):
        return "write IPv6 addresses without brackets"
    if "%" in v:
        return "must not carry a zone (%...)"
    ip = _ip_or_none(v)
    if ip is not None:
        return "is not an address you can connect to" if ip.is_unspecified else None
    if ":" in v:
        return "put the port in the port field, not in the address"
    msg = _hostname_problem(v)
    return f"Address {msg}" if msg else None


def check_san(v: object) -> str | None:
    """An extra subjectAltName: host name, ``*.`` wildcard or IP address."""
    if not isinstance(v, str):
        return "must be text"
    if not v:
        return "is empty"
    if _ip_or_none(v) is not None:
        return check_ip(v)
    name = v[2:] if v.startswith("*.") else v
    msg = _hostname_problem(name)
    return f"{_show(v)} is not a host name or IP address ({msg})" if msg else None


def check_subject_text(v: object) -> str | None:
    """State, locality, organization, unit: optional, at most 64 characters."""
    return _text(v, max_len=64)


def check_realm(v: object) -> str | None:
    msg = _text(v, max_len=128, required=True)
    if msg:
        return f"Realm {msg}"
    assert isinstance(v, str)
    if '"' in v or "\\" in v:
        return 'Realm cannot contain " or \\ (it is quoted in the WWW-Authenticate header)'
    return None


def check_label(v: object) -> str | None:
    return _text(v, max_len=64)


def check_runtimes(v: object) -> str | None:
    """A non-empty list of docker, containerd, podman, each once."""
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return 'must be a list such as ["docker", "podman"]'
    if not v:
        return "needs at least one runtime: " + ", ".join(RUNTIMES)
    bad = [x for x in v if x not in RUNTIMES]
    if bad:
        return f"{_show(bad[0])} is not a runtime regwizard knows; use " + ", ".join(RUNTIMES)
    if len(set(v)) != len(v):
        return "lists a runtime twice"
    return None


# a bare fingerprint, or the whole line `ssh-keygen -lf` prints (its type picks the key)
_HOST_KEY_RE = re.compile(
    r"(?:\d+\s+)?SHA256:[A-Za-z0-9+/]{43}=?(?:\s+.*\((?:ED25519|ECDSA|RSA)\))?"
)


def check_host_key(v: object) -> str | None:
    if not isinstance(v, str):
        return "must be text"
    if v and not _HOST_KEY_RE.fullmatch(v):
        return (
            "Host key must be a SHA256:... fingerprint, or the whole line ssh-keygen -lf "
            "prints (256 SHA256:... root@host (ECDSA))"
        )
    return None


def check_local_path(v: object) -> str | None:
    """A path on the machine running regwizard (may be empty, may use ~)."""
    return _text(v, max_len=4096)


def check_verify_user(v: object) -> str | None:
    """Empty (the first user) or a user name."""
    return None if v == "" else check_username(v)


def redacted_url(url: str) -> str:
    """A URL for a message, with any user:password@ part replaced."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return f"{scheme}{sep}{netloc}{slash}{tail}"


def check_proxy_remote_url(v: object) -> str | None:
    """Empty (no mirror), or ``https://host[:port]`` of the upstream registry: no path,
    no query and never credentials (they would be saved in the plan)."""
    if not isinstance(v, str):
        return "must be text"
    if v == "":
        return None
    msg = _text(v, max_len=2048)
    if msg:
        return f"Upstream URL {msg}"
    scheme, sep, rest = v.partition("://")
    if not sep:
        return "Upstream URL must start with https:// (e.g. https://registry-1.docker.io)"
    netloc, _, tail = rest.partition("/")
    for cut in "?#":
        netloc = netloc.split(cut, 1)[0]
    if "@" in rest.split("/", 1)[0]:
        return (
            "Upstream URL must not hold a user name or password: the plan is shared and "
            "kept in git; give them when the plan runs instead"
        )
    if scheme.lower() != "https":
        return f"Upstream URL must use https, not {_show(scheme)}: the mirror would send its login in clear"
    if tail.strip("/") or "?" in rest or "#" in rest:
        return f"Upstream URL must be https://host[:port] with no path; {_show(redacted_url(v))} has more"
    host, port = netloc, ""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            return "Upstream URL has an unclosed [ in its host"
        host, after = netloc[1:end], netloc[end + 1 :]
        if after and not after.startswith(":"):
            return f"Upstream URL host {_show(netloc)} is not [IPv6]:port"
        port = after[1:]
        ip = _ip_or_none(host)
        if ip is None or ip.version != 6:
            return "Upstream URL: brackets hold an IPv6 address"
    else:
        if netloc.count(":") > 1:
            return "Upstream URL: write an IPv6 address in brackets, e.g. https://[fd00::1]:5000"
        host, _, port = netloc.partition(":")
        if ":" in netloc and not port:
            return "Upstream URL has a colon but no port"
        if _ip_or_none(host) is None:
            problem = _hostname_problem(host)
            if problem:
                return f"Upstream URL host {problem}"
    if port:
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port[:6]) <= 65535:
            return f"Upstream URL port {_show(port)} must be a number from 1 to 65535"
    return None


_MIRROR_RE = re.compile(rf"(?P<name>{_PATH_COMP}(?:/{_PATH_COMP})*):(?P<tag>{_TAG})", re.ASCII)


def check_mirror_image(v: object) -> str | None:
    """Empty, or ``repository:tag`` as the upstream names it (no registry host: the
    mirror's address goes in front), e.g. ``library/busybox:latest``."""
    if not isinstance(v, str):
        return "must be text"
    if v == "":
        return None
    msg = _text(v, max_len=512)
    if msg:
        return f"Mirror image {msg}"
    first = v.split("/", 1)[0]
    if "/" in v and ("." in first or ":" in first or first == "localhost"):
        return (
            f"Mirror image {_show(v)} names a registry host; give only repository:tag as the "
            "upstream names it (the mirror's address is put in front)"
        )
    if "@" in v:
        return (
            "Mirror image must be repository:tag, not a digest (the digest is what verify reports)"
        )
    if _MIRROR_RE.fullmatch(v):
        return None
    if _MIRROR_RE.fullmatch(v.lower()):
        return "Mirror image repository names must be lowercase"
    if ":" not in v:
        return f"Mirror image {_show(v)} needs a tag, e.g. {_show(v + ':latest')}"
    return f"{_show(v)} is not repository:tag, e.g. library/busybox:latest"


def check_bool(v: object) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


STORAGE_DRIVERS = ("filesystem", "s3")


def check_storage_driver(v: object) -> str | None:
    return _choice(v, STORAGE_DRIVERS)


def check_s3_endpoint(v: object) -> str | None:
    """Empty (filesystem), or ``http(s)://host[:port]`` of the S3 API: no path, no query,
    no user:password@ (the secret key never goes in the plan)."""
    if not isinstance(v, str):
        return "must be text"
    if v == "":
        return None
    msg = _text(v, max_len=2048)
    if msg:
        return f"Endpoint {msg}"
    scheme, sep, rest = v.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return "Endpoint must start with http:// or https:// (e.g. http://10.0.0.5:8333)"
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        return "Endpoint must not hold a user name or password (the keys have their own fields)"
    if tail.strip("/") or "?" in rest or "#" in rest:
        return f"Endpoint must be {scheme}://host[:port] with no path or query"
    if netloc.startswith("["):
        end = netloc.find("]")
        host, after = (netloc[1:end], netloc[end + 1 :]) if end > 0 else ("", "")
        ip = _ip_or_none(host)
        if ip is None or ip.version != 6 or (after and not after.startswith(":")):
            return "Endpoint: brackets hold an IPv6 address, e.g. http://[fd00::5]:8333"
        port = after[1:]
    else:
        if netloc.count(":") > 1:
            return "Endpoint: write an IPv6 address in brackets, e.g. http://[fd00::5]:8333"
        host, colon, port = netloc.partition(":")
        if colon and not port:
            return "Endpoint has a colon but no port"
        if _ip_or_none(host) is None:
            problem = _hostname_problem(host)
            if problem:
                return f"Endpoint host {problem}"
    if port and (not (port.isascii() and port.isdigit()) or not 1 <= int(port[:6]) <= 65535):
        return f"Endpoint port {_show(port)} must be a number from 1 to 65535"
    return None


_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_bucket(v: object) -> str | None:
    """Empty (filesystem), or an S3 bucket name: 3-63 characters, lowercase letters,
    digits, dots and hyphens, starting and ending with a letter or digit, not an IP."""
    if not isinstance(v, str):
        return "must be text"
    if v == "":
        return None
    if not (3 <= len(v) <= 63):
        return f"Bucket name must be 3 to 63 characters (got {len(v)})"
    if not _BUCKET_RE.fullmatch(v):
        return (
            "Bucket name may only use lowercase letters, digits, dots and hyphens, and must "
            "start and end with a letter or digit"
        )
    if ".." in v or ".-" in v or "-." in v:
        return "Bucket name cannot have two dots in a row, or a dot next to a hyphen"
    if _ip_or_none(v) is not None:
        return "Bucket name cannot look like an IP address"
    return None


_REGION_RE = re.compile(r"[a-z0-9-]{1,32}")


def check_region(v: object) -> str | None:
    return _text_matching(
        v, _REGION_RE, "Region must be 1-32 lowercase letters, digits and hyphens, e.g. us-east-1"
    )


def check_access_key(v: object) -> str | None:
    """Empty (filesystem), or the S3 access key id: printable, no spaces."""
    if not isinstance(v, str):
        return "must be text"
    if v == "":
        return None
    if len(v) > 128:
        return f"Access key is too long ({len(v)} characters, at most 128)"
    if not v.isascii() or not all(c.isprintable() and not c.isspace() for c in v):
        return "Access key must be printable ASCII without spaces"
    return None


def check_root_directory(v: object) -> str | None:
    """Empty (the bucket's root), or an absolute key prefix without .. parts."""
    if not isinstance(v, str):
        return "must be text"
    if v == "":
        return None
    msg = _text(v, max_len=1024)
    if msg:
        return f"Root directory {msg}"
    if not v.startswith("/"):
        return "Root directory must start with / (e.g. /registry), or be empty"
    if ".." in v.split("/"):
        return "Root directory cannot contain .. components"
    return None


# Dotted plan key -> validator. ``host.*`` also applies to ``clients[i].*``.
FIELD_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "registry.domain": check_domain,
    "registry.ip": check_ip,
    "registry.manage_hosts_file": check_bool,
    "registry.port": check_port,
    "registry.container": check_container,
    "registry.image": check_image,
    "registry.image_archive": check_local_path,
    "registry.storage": check_storage,
    "registry.config_dir": check_config_dir,
    "registry.realm": check_realm,
    "registry.proxy_remote_url": check_proxy_remote_url,
    "registry.proxy_ca_file": check_local_path,
    "registry.allow_delete": check_bool,
    "host.address": check_address,
    "host.port": check_port,
    "host.user": check_ssh_user,
    "host.auth": check_auth,
    "host.key_file": check_local_path,
    "host.sudo": check_bool,
    "host.host_key": check_host_key,
    "host.label": check_label,
    "host.runtimes": check_runtimes,
    "host.manage_containerd_config": check_bool,
    "certificate.mode": check_mode,
    "certificate.country": check_country,
    "certificate.state": check_subject_text,
    "certificate.locality": check_subject_text,
    "certificate.organization": check_subject_text,
    "certificate.organizational_unit": check_subject_text,
    "certificate.common_name": check_common_name,
    "certificate.email": check_email,
    "certificate.days": check_days,
    "certificate.key": check_key,
    "certificate.cert_file": check_local_path,
    "certificate.key_file": check_local_path,
    "users.name": check_username,
    "users.bcrypt": check_bcrypt,
    "verify.user": check_verify_user,
    "verify.mirror_image": check_mirror_image,
    "storage.driver": check_storage_driver,
    "storage.endpoint": check_s3_endpoint,
    "storage.bucket": check_bucket,
    "storage.region": check_region,
    "storage.access_key": check_access_key,
    "storage.root_directory": check_root_directory,
}

_FIXES: dict[str, str] = {
    "registry.domain": "use a host name such as reg.example.test",
    "registry.ip": "use the registry host's address as clients reach it, e.g. 10.0.0.2",
    "registry.storage": "use a dedicated absolute directory such as /opt/docker-image",
    "registry.config_dir": "use a dedicated absolute directory such as /etc/regwizard",
    "certificate.country": "use the two-letter ISO 3166 code, e.g. CN, US or DE",
    "certificate.days": f"choose 1 to {MAX_DAYS} days (825 is a common choice)",
    "users.bcrypt": f"run `regwizard user hash NAME` (default cost {DEFAULT_COST}) and paste "
    "its output as bcrypt",
    "users.name": "use a short lowercase name such as testuser",
    "registry.manage_hosts_file": "write true or false",
    "registry.port": "use a port from 1 to 65535 (443 lets clients leave it out)",
    "registry.container": "use a container name such as registry",
    "registry.image": "write name[:tag][@sha256:<64 hex digits>], e.g. registry:2",
    "registry.image_archive": 'give a `docker save` .tar on this machine, or "" to pull',
    "registry.realm": 'use plain text such as "Registry Realm"',
    "registry.allow_delete": "write true or false",
    "host.address": '"local" for this machine, else a host name or IP address (no port)',
    "host.port": "use the SSH port, 1 to 65535 (usually 22)",
    "host.user": "use the SSH login name, e.g. root or admin",
    "host.auth": "use key, agent or password",
    "host.key_file": "give an SSH private key on this machine, e.g. ~/.ssh/id_ed25519",
    "host.sudo": "write true or false",
    "host.host_key": 'paste the SHA256:... fingerprint `ssh-keygen -lf` prints, or ""',
    "host.label": 'use a short display name, or ""',
    "host.runtimes": 'e.g. runtimes = ["docker", "containerd", "podman"] (any of them, at least one)',
    "host.manage_containerd_config": "write true or false",
    "certificate.mode": "use self-signed, local-ca or provided",
    "certificate.state": 'use plain text of at most 64 characters, or ""',
    "certificate.locality": 'use plain text of at most 64 characters, or ""',
    "certificate.organization": 'use plain text of at most 64 characters, or ""',
    "certificate.organizational_unit": 'use plain text of at most 64 characters, or ""',
    "certificate.common_name": 'use at most 64 characters, or "" for the domain',
    "certificate.email": 'use an address like ops@example.test, or ""',
    "certificate.key": "use rsa-2048, rsa-4096 or ecdsa-p256",
    "certificate.cert_file": "give a PEM certificate file on this machine",
    "certificate.key_file": "give a PEM private key file on this machine",
    "certificate.extra_sans": 'list host names or IP addresses, e.g. ["registry.lan"]',
    "verify.user": 'name one of the plan\'s [[users]], or "" for the first',
    "registry.proxy_remote_url": 'write https://host[:port] of the upstream registry, or "" '
    "for no mirror; its login comes from REGWIZARD_UPSTREAM_USER/REGWIZARD_UPSTREAM_PASSWORD, "
    "--upstream-credentials-file or a prompt",
    "registry.proxy_ca_file": 'give a PEM file on this machine with the upstream\'s CA, or ""',
    "verify.mirror_image": "give repository:tag of an image that exists upstream, e.g. "
    '"library/busybox:latest"',
    "policy.remove_users": "list only htpasswd users that are not in [[users]]",
    "storage.driver": 'write driver = "filesystem" (the registry host\'s disk) or "s3"',
    "storage.endpoint": 'write the S3 API\'s http(s)://host[:port], e.g. "http://10.0.0.5:8333"',
    "storage.bucket": 'name an existing bucket, e.g. "registry"',
    "storage.region": 'write the store\'s region, e.g. "us-east-1" (any name for SeaweedFS/MinIO)',
    "storage.access_key": "write the access key id; its secret key comes from --s3-secret-file, "
    "REGWIZARD_S3_SECRET_KEY or a prompt, never from the plan",
    "storage.root_directory": 'write a prefix such as "/registry", or "" for the bucket\'s root',
}


def check_field(key: str, value: object) -> str | None:
    """Validate one field by dotted key (``registry.domain``, ``clients.address``...)."""
    section, _, name = key.partition(".")
    if section in ("clients", "replicas"):
        section = "host"
    check = FIELD_CHECKS.get(f"{section}.{name}")
    return check(value) if check else None


# --------------------------------------------------------------------------- validation


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def validate_plan(plan: Plan) -> list[PlanError]:
    """Every problem in the plan, in file order. Empty = valid."""
    errors: list[PlanError] = []

    def add(path: str, msg: str | None, fix_key: str = "", fix: str = "") -> None:
        if msg:
            key = fix_key or re.sub(r"\[\d+\]", "", path)
            key = key.replace("clients.", "host.").replace("replicas.", "host.")
            errors.append(PlanError(path, msg, fix or _FIXES.get(key, "")))

    def section(obj: object, prefix: str, key_prefix: str) -> None:
        for f in fields(obj):  # type: ignore[arg-type]
            check = FIELD_CHECKS.get(f"{key_prefix}.{f.name}")
            if check:
                add(f"{prefix}.{f.name}", check(getattr(obj, f.name)), f"{key_prefix}.{f.name}")

    reg, cert = plan.registry, plan.certificate
    section(reg, "registry", "registry")
    if not check_storage(reg.storage) and not check_config_dir(reg.config_dir):
        if _nested(reg.storage, reg.config_dir):
            add(
                "registry.config_dir",
                "storage and config_dir must be separate directories, neither inside the other",
                fix="e.g. storage = /opt/docker-image and config_dir = /etc/regwizard",
            )

    section(plan.host, "host", "host")
    if plan.host.auth == "key" and not plan.host.key_file:
        add("host.key_file", "is required when auth = key")
    seen: set[tuple[str, int]] = set()
    for i, conn in enumerate(plan.clients):
        section(conn, f"clients[{i}]", "host")
        if conn.auth == "key" and not conn.key_file:
            add(f"clients[{i}].key_file", "is required when auth = key")
        ident = (str(conn.address), conn.port if isinstance(conn.port, int) else -1)
        if ident in seen:
            add(
                f"clients[{i}].address",
                f"{_show(conn.address)} is listed twice in clients",
                fix="remove the second [[clients]] table for it",
            )
        seen.add(ident)

    for i, conn in enumerate(plan.replicas):
        section(conn, f"replicas[{i}]", "host")
        if conn.auth == "key" and not conn.key_file:
            add(f"replicas[{i}].key_file", "is required when auth = key")

    section(cert, "certificate", "certificate")
    if not isinstance(cert.extra_sans, list):
        add("certificate.extra_sans", "must be a list of host names or IP addresses")
    else:
        for i, san in enumerate(cert.extra_sans):
            add(f"certificate.extra_sans[{i}]", check_san(san))
    if cert.mode == "provided":
        if not cert.cert_file:
            add("certificate.cert_file", "is required when mode = provided")
        if not cert.key_file:
            add("certificate.key_file", "is required when mode = provided")

    if not plan.users:
        errors.append(
            PlanError(
                "users",
                "at least one user is needed to log in to the registry",
                "add a [[users]] table with name and bcrypt (`regwizard user hash NAME`)",
            )
        )
    names: set[str] = set()
    for i, user in enumerate(plan.users):
        add(f"users[{i}].name", check_username(user.name), "users.name")
        msg = check_bcrypt(user.bcrypt)
        if msg and isinstance(user.name, str) and not check_username(user.name):
            fix = _FIXES["users.bcrypt"].replace("NAME", user.name)
            errors.append(PlanError(f"users[{i}].bcrypt", msg, fix))
        else:
            add(f"users[{i}].bcrypt", msg, "users.bcrypt")
        if not isinstance(user.name, str):
            continue
        if user.name in names:
            add(
                f"users[{i}].name",
                f"{_show(user.name)} is listed twice",
                fix="remove the second [[users]] table for it",
            )
        names.add(user.name)

    remove = plan.remove_users if isinstance(plan.remove_users, list) else [plan.remove_users]
    for i, name in enumerate(remove):
        msg = check_username(name)
        if not msg and name in names:
            msg = f"{_show(name)} is also a plan user; a user cannot be both kept and removed"
        add(f"policy.remove_users[{i}]", msg)

    v = plan.verify.user
    if v != "":
        msg = check_verify_user(v)
        if not msg and v not in names:
            known = ", ".join(sorted(names)) or "none"
            msg = f"{_show(v)} is not one of the plan's users ({known})"
        add("verify.user", msg)
    add("verify.mirror_image", check_mirror_image(plan.verify.mirror_image))

    if (
        reg.proxy_remote_url
        and not plan.verify.mirror_image
        and not check_proxy_remote_url(reg.proxy_remote_url)
    ):
        add(
            "verify.mirror_image",
            "is required for a mirror (proxy_remote_url is set): a mirror refuses pushes, so "
            "verification pulls an image that exists upstream through it",
            "verify.mirror_image",
        )
    if reg.proxy_ca_file and not reg.proxy_remote_url:
        add(
            "registry.proxy_ca_file",
            "is only used by a mirror, and proxy_remote_url is empty",
            fix='set registry.proxy_remote_url, or write proxy_ca_file = ""',
        )
    _storage_errors(plan, add, section)
    return errors


_S3_ONLY = ("endpoint", "bucket", "access_key", "root_directory")


def _storage_errors(plan: Plan, add: Callable[..., None], section: Callable[..., None]) -> None:
    """[storage] and [[replicas]]: the fields, what driver s3 needs, what replicas need."""
    st = plan.storage
    section(st, "storage", "storage")
    if st.driver == "s3":
        for name in ("endpoint", "bucket", "access_key"):
            if getattr(st, name) == "":
                add(f"storage.{name}", "is required when driver = s3", f"storage.{name}")
    elif st.driver == "filesystem":
        for name in _S3_ONLY:
            if getattr(st, name) not in ("", None):
                add(
                    f"storage.{name}",
                    f"is only used when driver = s3 (driver is {_show(st.driver)})",
                    fix=f'set driver = "s3" to keep the images in that bucket, or remove {name}',
                )
    if plan.replicas and st.driver != "s3":
        add(
            "replicas[0].address",
            '[[replicas]] need [storage] driver = "s3": registries on their own disks serve '
            "different images, so a client would see a push through one missing from another",
            fix='set [storage] driver = "s3" (with endpoint, bucket, access_key), or remove '
            "[[replicas]]",
        )

    def ident(c: Connection) -> tuple[str, int]:
        return (str(c.address), c.port if isinstance(c.port, int) else -1)

    seen: set[tuple[str, int]] = set()
    for i, conn in enumerate(plan.replicas):
        if ident(conn) == ident(plan.host):
            add(
                f"replicas[{i}].address",
                f"{_show(conn.address)} is the [host] itself; a replica is another machine",
                fix="remove that [[replicas]] table",
            )
        elif ident(conn) in seen:
            add(
                f"replicas[{i}].address",
                f"{_show(conn.address)} is listed twice in replicas",
                fix="remove the second [[replicas]] table for it",
            )
        seen.add(ident(conn))
        if (
            plan.registry.manage_hosts_file is True
            and isinstance(conn.address, str)
            and not check_address(conn.address)
            and not is_ip(conn.address)
        ):
            add(
                f"replicas[{i}].address",
                f"{_show(conn.address)} is not an IP address: with manage_hosts_file, clients "
                "map the registry's name to every registry host's address in /etc/hosts",
                fix="write the replica's IP address (its name can go in label), or set "
                "registry.manage_hosts_file = false and resolve the name yourself",
            )


def plan_warnings(plan: Plan) -> list[str]:
    """Things that are allowed but probably not intended."""
    out: list[str] = []
    for i, user in enumerate(plan.users):
        if user.bcrypt == PLACEHOLDER_BCRYPT:
            out.append(
                f"users[{i}] ({user.name}) still has the example placeholder hash; nobody "
                f"knows its password: run `regwizard user hash {user.name}`"
            )
    ip = _ip_or_none(plan.registry.ip) if isinstance(plan.registry.ip, str) else None
    if ip is not None and ip.is_loopback:
        out.append(
            "registry.ip is a loopback address: Docker trusts loopback registries without "
            "TLS checks, so verification through it proves nothing about trust"
        )
    if plan.registry.domain == "localhost" or str(plan.registry.domain).endswith(".localhost"):
        out.append("registry.domain is localhost: other machines cannot reach it by that name")
    return out


# --------------------------------------------------------------------------- TOML in

_PASSWORD_WORDS = ("password", "passwd", "passphrase", "secret", "token", "private_key")
_PASSWORD_KEYS = {"pass", "pw", "pwd", "psw"}

# section name -> (dataclass, is array of tables)
_SECTIONS: dict[str, tuple[type, bool]] = {
    "registry": (RegistrySpec, False),
    "host": (Connection, False),
    "clients": (Connection, True),
    "certificate": (CertificateSpec, False),
    "users": (User, True),
    "policy": (dict, False),
    "verify": (VerifySpec, False),
    "storage": (StorageSpec, False),
    "replicas": (Connection, True),
}
_POLICY_HINTS: dict[str, Any] = {"remove_users": list[str]}


def _hints(cls: type) -> dict[str, Any]:
    return _POLICY_HINTS if cls is dict else get_type_hints(cls)


def _all_keys() -> dict[str, str]:
    out: dict[str, str] = {}
    for sec, (cls, _) in _SECTIONS.items():
        for k in _hints(cls):
            out.setdefault(k, f"{sec}.{k}")
    return out


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _is_secret_key(k: str) -> bool:
    lk = k.lower().replace("-", "_")
    return lk in _PASSWORD_KEYS or any(w in lk for w in _PASSWORD_WORDS)


def _unknown(path: str, key: str, allowed: Iterable[str], section: str) -> PlanError:
    full = f"{path}.{_key(key)}" if path else _key(key)
    if _is_secret_key(key) and section == "storage":
        return PlanError(
            full,
            "unknown key: the S3 secret key never goes in the plan (a plan is meant to be "
            "shared and kept in git)",
            "delete this key; give the secret key when the plan runs: --s3-secret-file FILE, "
            "REGWIZARD_S3_SECRET_KEY, or the prompt",
        )
    if _is_secret_key(key):
        return PlanError(
            full,
            "unknown key: passwords never go in plans (a plan is meant to be shared and kept in git)",
            "delete this key: users carry a bcrypt hash (`regwizard user hash NAME`), and SSH, "
            "sudo and verify passwords are asked for when the plan runs",
        )
    allowed = list(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        hint = close[0]
    else:
        other = _all_keys().get(key, "")
        hint = other if other.split(".")[0] != section else ""
    msg = f'unknown key (did you mean "{hint}"?)' if hint else "unknown key"
    where = f"in [{section}]" if section else "at the top level"
    return PlanError(full, msg, f"keys allowed {where}: {', '.join(allowed)}")


def _type_name(v: object) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, int):
        return "a whole number"
    if isinstance(v, float):
        return "a decimal number"
    if isinstance(v, str):
        return "text"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a table"
    return "a date/time"


_EXPECTED = {
    str: ('text in double quotes, e.g. "abc"', str),
    int: ("a whole number without quotes, e.g. 443", int),
    bool: ("true or false (no quotes)", bool),
}


def _coerce(hint: Any, value: object, path: str, errors: list[PlanError]) -> Any:
    if hint == list[str]:
        if not isinstance(value, list):
            errors.append(
                PlanError(
                    path,
                    f'must be a list of text, e.g. ["a", "b"]; got {_type_name(value)}',
                    'write it in brackets, e.g. ["a", "b"], or [] for none',
                )
            )
            return []
        ok = True
        for i, item in enumerate(value):
            if not isinstance(item, str):
                errors.append(
                    PlanError(
                        f"{path}[{i}]",
                        f"must be text; got {_type_name(item)}",
                        'put each item in double quotes ("...")',
                    )
                )
                ok = False
        return list(value) if ok else []
    desc, typ = _EXPECTED[hint]
    good = isinstance(value, typ) and (typ is bool or not isinstance(value, bool))
    if not good:
        fix = f"write {path.rsplit('.', 1)[-1]} as {desc}"
        if typ is int and isinstance(value, str) and value.strip().isdigit():
            fix = f"write {path.rsplit('.', 1)[-1]} = {value.strip()} without quotes"
        elif typ is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            fix = f"write {value.lower()} without quotes"
        errors.append(PlanError(path, f"must be {desc}; got {_type_name(value)}", fix))
        return None
    return value


def _build(cls: type, data: object, path: str, errors: list[PlanError]) -> Any:
    """A dataclass (or the policy dict) from one TOML table, collecting errors."""
    if not isinstance(data, dict):
        fix = (
            f"write [{path}], not [[{path}]]"
            if isinstance(data, list) and "[" not in path
            else f"write it as a [{path.split('[')[0]}] table of key = value lines"
        )
        errors.append(PlanError(path, f"must be a table; got {_type_name(data)}", fix))
        return None
    hints = _hints(cls)
    section = path.split("[")[0].split(".")[0]
    n_before = len(errors)
    for key in data:
        if key not in hints:
            errors.append(_unknown(path, key, hints, section))
    kwargs: dict[str, Any] = {}
    for name, hint in hints.items():
        if name in data:
            kwargs[name] = _coerce(hint, data[name], f"{path}.{name}", errors)
    required = (
        []
        if cls is dict
        else [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    )
    for name in required:
        if name not in data:
            errors.append(PlanError(f"{path}.{name}", "is missing", f"add {name} = ... to {path}"))
    if len(errors) > n_before:
        return None
    return kwargs if cls is dict else cls(**kwargs)


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """A Plan from parsed TOML. Raises PlanError (all structural problems at once)."""
    errors: list[PlanError] = []
    if not isinstance(data, dict):
        raise PlanError("", "the plan must be a TOML document", "start from `regwizard plan new`")
    for key in data:
        if key not in _SECTIONS:
            errors.append(_unknown("", key, _SECTIONS, ""))
    parts: dict[str, Any] = {}
    for name, (cls, is_array) in _SECTIONS.items():
        if name not in data:
            continue
        value = data[name]
        if is_array:
            if not isinstance(value, list):
                errors.append(
                    PlanError(
                        name,
                        f"must be an array of tables ([[{name}]]); got a single one",
                        f"write [[{name}]], not [{name}]",
                    )
                    if isinstance(value, dict)
                    else PlanError(
                        name,
                        f"must be [[{name}]] tables; got {_type_name(value)}",
                        f"write one [[{name}]] table per entry",
                    )
                )
                continue
            parts[name] = [
                _build(cls, item, f"{name}[{i}]", errors) for i, item in enumerate(value)
            ]
        else:
            parts[name] = _build(cls, value, name, errors)
    if errors:
        raise PlanErrors.of(errors)
    plan = Plan()
    if "registry" in parts:
        plan.registry = parts["registry"]
    if "host" in parts:
        plan.host = parts["host"]
    if "clients" in parts:
        plan.clients = parts["clients"]
    if "certificate" in parts:
        plan.certificate = parts["certificate"]
    if "users" in parts:
        plan.users = parts["users"]
    if "policy" in parts:
        plan.remove_users = parts["policy"].get("remove_users", [])
    if "verify" in parts:
        plan.verify = parts["verify"]
    if "storage" in parts:
        plan.storage = parts["storage"]
    if "replicas" in parts:
        plan.replicas = parts["replicas"]
    return plan


def _asdict(obj: object) -> dict[str, Any]:
    return {f.name: _copy(getattr(obj, f.name)) for f in fields(obj)}  # type: ignore[arg-type]


def _copy(v: Any) -> Any:
    return list(v) if isinstance(v, list) else v


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The TOML document as plain data (the inverse of :func:`plan_from_dict`)."""
    return {
        "registry": _asdict(plan.registry),
        "host": _asdict(plan.host),
        "clients": [_asdict(c) for c in plan.clients],
        "certificate": _asdict(plan.certificate),
        "users": [_asdict(u) for u in plan.users],
        "policy": {"remove_users": list(plan.remove_users)},
        "verify": _asdict(plan.verify),
        # written only when used, so a one-host plan's file stays as it was
        **({"storage": _asdict(plan.storage)} if plan.storage != StorageSpec() else {}),
        **({"replicas": [_asdict(c) for c in plan.replicas]} if plan.replicas else {}),
    }


MAX_PLAN_BYTES = 1 << 20
_NOT_A_PLAN = "a plan is a small TOML text file: check the path (`regwizard plan new` writes one)"


def parse_plan(text: str | bytes, *, validate: bool = True, source: str = "") -> Plan:
    """Parse TOML text into a Plan; with ``validate`` also check every field.

    Raises PlanError (PlanErrors when several) and nothing else.
    """
    where = f"{source}: " if source else ""
    if isinstance(text, bytes | bytearray):
        if len(text) > MAX_PLAN_BYTES:
            raise PlanError("", f"{where}the plan file is too large (over 1 MiB)", _NOT_A_PLAN)
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise PlanError(
                "",
                f"{where}the plan is not UTF-8 text ({e.reason} at byte {e.start})",
                "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 OLD > NEW), or check that "
                "this is the plan file",
            ) from None
    if not isinstance(text, str):
        raise PlanError("", f"{where}the plan must be text", _NOT_A_PLAN)
    if len(text) > MAX_PLAN_BYTES:
        raise PlanError("", f"{where}the plan is too large (over 1 MiB)", _NOT_A_PLAN)
    text = text.removeprefix("\ufeff")
    import tomllib  # here, not at the top: the wizard's first paint needs no TOML

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlanError(
            "",
            f"{where}not valid TOML: {e}",
            'check quotes and brackets on that line; text values need double quotes ("...")',
        ) from None
    except RecursionError:
        raise PlanError("", f"{where}not valid TOML: nested too deeply", _NOT_A_PLAN) from None
    plan = plan_from_dict(data)
    if validate:
        plan.validate()
    return plan


def load_plan(path: str | os.PathLike[str], *, validate: bool = True) -> Plan:
    p = Path(os.path.expanduser(path))  # never raises for an unknown ~user
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_PLAN_BYTES + 1)
    except FileNotFoundError:
        raise PlanError(
            "", f"plan file {p} not found", f"create one with `regwizard plan new -o {p}`"
        ) from None
    except IsADirectoryError:
        raise PlanError(
            "", f"{p} is a directory, not a plan file", "give the path of the plan file itself"
        ) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the name
        reason = getattr(e, "strerror", None) or str(e)
        raise PlanError(
            "",
            f"cannot read plan file {p}: {reason}",
            "check the path, and that this user may read the file",
        ) from None
    return parse_plan(data, validate=validate, source=str(p))


_HEADER = """\
# regwizard plan. No passwords in here: users carry bcrypt hashes
# (`regwizard user hash NAME`); SSH, sudo and verify passwords are asked at run time.
"""


def _table(name: str, body: dict[str, Any], array: bool = False) -> str:
    import tomli_w

    head = f"[[{name}]]" if array else f"[{name}]"
    return f"\n{head}\n{tomli_w.dumps(body)}"


def dump_plan(plan: Plan) -> str:
    """The plan as TOML text (no secrets: the Plan holds none)."""
    d = plan_to_dict(plan)
    out = [_HEADER]
    if not d["clients"]:
        out.append("clients = []\n")
    if not d["users"]:
        out.append("users = []\n")
    out.append(_table("registry", d["registry"]))
    out.append(_table("host", d["host"]))
    out.extend(_table("clients", c, array=True) for c in d["clients"])
    out.append(_table("certificate", d["certificate"]))
    out.extend(_table("users", u, array=True) for u in d["users"])
    out.append(_table("policy", d["policy"]))
    out.append(_table("verify", d["verify"]))
    if "storage" in d:
        out.append(_table("storage", d["storage"]))
    out.extend(_table("replicas", c, array=True) for c in d.get("replicas", []))
    return "".join(out)


def save_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write the plan atomically (temp file + rename). Over an existing plan file, only
    the values that differ change: its comments, order and layout stay, and so does its
    mode. A new file is :func:`dump_plan`'s text, mode 0600."""
    update_plan_file(Path(os.path.expanduser(path)), plan)


def update_plan_file(path: Path, plan: Plan) -> None:
    """See :func:`save_plan`. An existing file that cannot be read as a plan's TOML is
    replaced by :func:`dump_plan`'s text, mode 0600, as a new file is."""
    edited: str | None = None
    mode = 0o600
    try:
        st = path.stat()
        if path.is_file() and st.st_size <= MAX_PLAN_BYTES:
            edited = _edited(path.read_bytes().decode("utf-8-sig"), plan)
            if edited is not None:
                mode = st.st_mode & 0o777  # the owner's choice for this plan stays
    except (OSError, ValueError, UnicodeDecodeError):
        edited = None
    write_private_text(path, dump_plan(plan) if edited is None else edited, mode=mode)


def edit_plan_text(old_text: str, plan: Plan) -> str:
    """``old_text`` (a plan's TOML) changed to say ``plan``, touching only what differs.

    Comments, key order and blank lines stay; a changed value keeps its line's comment
    (and its column); new keys go at the end of their table, and keys the file leaves
    to their default stay left out; ``[[users]]`` and ``[[clients]]`` entries are
    matched by name / address and port, so a removed entry takes its own lines with it.
    Whatever the old text, the result parses back to ``plan`` (else it is dump_plan's)."""
    edited = _edited(old_text, plan)
    return dump_plan(plan) if edited is None else edited


def _edited(old_text: str, plan: Plan) -> str | None:
    import tomllib

    import tomlkit

    try:
        doc = tomlkit.parse(old_text.removeprefix("\ufeff"))
        _edit_doc(doc, plan_to_dict(plan))
        text = tomlkit.dumps(doc)
        if plan_from_dict(tomllib.loads(text)) == plan:
            return text
    except Exception:  # noqa: BLE001 - any surprise in the old text: write it afresh
        pass
    return None


def _same(item: Any, want: Any) -> bool:
    """A TOML item holds exactly ``want`` (bool is not int here)."""
    have = item.unwrap() if hasattr(item, "unwrap") else item
    return type(have) is type(want) and have == want


def _edit_table(table: Any, want: dict[str, Any], defaults: dict[str, Any]) -> None:
    for key in [k for k in table if k not in want]:
        del table[key]
    for key, value in want.items():
        if key not in table:
            if key not in defaults or not _same(defaults[key], value):
                table[key] = value  # a key the file left to its default stays left out
        elif not _same(table[key], value):
            old_width = len(table.item(key).as_string())
            table[key] = value
            item = table.item(key)
            ws = item.trivia.comment_ws
            if item.trivia.comment and ws.strip() == "":  # keep the comment's column
                item.trivia.comment_ws = " " * max(1, len(ws) - (len(item.as_string()) - old_width))


def _defaults(section: str) -> dict[str, Any]:
    """The values a key left out of ``section`` takes (none for [[users]] entries)."""
    cls = _SECTIONS[section][0]
    if cls is dict:
        return {"remove_users": []}
    try:
        return _asdict(cls())
    except TypeError:  # required fields: no defaults
        return {}


_ENTRY_KEYS: dict[str, tuple[str, ...]] = {
    "users": ("name",),
    "clients": ("address", "port"),
    "replicas": ("address", "port"),
}


def _entry_key(section: str, entry: Any) -> tuple:
    return tuple(_plain(entry.get(k)) for k in _ENTRY_KEYS[section])


def _plain(v: Any) -> Any:
    return v.unwrap() if hasattr(v, "unwrap") else v


def _edit_array(doc: Any, section: str, want: list[dict[str, Any]]) -> None:
    import tomlkit
    from tomlkit.items import AoT

    old = doc.get(section)
    if not isinstance(old, AoT) or not want:
        if section in doc:
            del doc[section]
        if not want:
            # an empty [[users]] list reads as "none"; no [[clients]] would mean the default
            doc[section] = tomlkit.array()
            return
        old = tomlkit.aot()
        doc.append(section, old)
    tables = list(old.body)
    used: set[int] = set()
    chosen: list[Any] = []
    for entry in want:
        key = tuple(entry.get(k) for k in _ENTRY_KEYS[section])
        i = next(
            (i for i, t in enumerate(tables) if i not in used and _entry_key(section, t) == key),
            None,
        )
        if i is None:  # an entry whose key changed (a client's new address) keeps its lines
            i = next(
                (
                    i
                    for i in range(len(tables))
                    if i not in used and not _keyed(tables, i, want, section)
                ),
                None,
            )
        if i is None:
            table = _new_table(entry)
        else:
            used.add(i)
            table = tables[i]
            _edit_table(table, entry, _defaults(section))
        chosen.append(table)
    if [id(t) for t in chosen] == [id(t) for t in tables]:
        return
    # rebuild the array in the planned order; a dropped last entry leaves its trailing
    # comments (they introduce what follows) to the new last one
    tail = _trailing(tables[-1]) if tables and tables[-1] not in chosen else []
    while len(old):
        del old[0]
    for table in chosen:
        old.append(table)
    for item in tail:
        chosen[-1].add(item)


def _keyed(tables: list[Any], i: int, want: list[dict[str, Any]], section: str) -> bool:
    """Old entry ``i`` matches some wanted entry by its key (so it is not free to reuse)."""
    key = _entry_key(section, tables[i])
    return any(tuple(e.get(k) for k in _ENTRY_KEYS[section]) == key for e in want)


def _trailing(table: Any) -> list[Any]:
    """The comments and blank lines at the end of a table's body, taken out of it."""
    from tomlkit.items import Comment, Whitespace

    body = table.value.body
    out: list[Any] = []
    while body and body[-1][0] is None and isinstance(body[-1][1], Comment | Whitespace):
        out.insert(0, body.pop()[1])
    return out


def _new_table(values: dict[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.table()
    for k, v in values.items():
        table[k] = v
    table.add(tomlkit.nl())  # a blank line before whatever follows, as dump_plan writes
    return table


def _edit_doc(doc: Any, want: dict[str, Any]) -> None:

    for key in [k for k in doc if k not in want]:
        del doc[key]
    for section, value in want.items():
        if _SECTIONS[section][1]:
            _edit_array(doc, section, value)
        elif section in doc and hasattr(doc[section], "items"):
            _edit_table(doc[section], value, _defaults(section))
        else:
            if section in doc:
                del doc[section]
            doc.append(section, _new_table(value))


def write_private_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Atomically replace ``path`` with ``text``, readable by the owner only (or ``mode``:
    a plan edited in place keeps its own)."""
    data = text.encode("utf-8")
    directory = path.parent if str(path.parent) else Path(".")
    fix = f"write to a file in an existing directory you can write to (not {directory})"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the name
        raise RegwizardError(
            f"cannot write {path}: {getattr(e, 'strerror', None) or e}", fix
        ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise RegwizardError(f"cannot write {path}: {e.strerror or e}", fix) from None
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# --------------------------------------------------------------------------- example

EXAMPLE_PLAN = f"""\
# regwizard plan: a private Docker registry with TLS and htpasswd logins.
# Check it:  regwizard plan check PLAN      Run it:  regwizard apply PLAN
# No passwords go in this file: users carry bcrypt hashes, and SSH, sudo and
# verify passwords are asked for when the plan runs.

[registry]
domain = "reg.example.test"        # the name clients use: docker push reg.example.test/app
ip = "10.0.0.2"                    # the registry host's address as clients reach it ("" = DNS)
manage_hosts_file = true           # add "ip domain" to /etc/hosts on the host and clients
port = 443                         # 443 lets clients omit the port; else reg.example.test:PORT
container = "registry"             # docker container name
image = "registry:2"               # CNCF distribution image
image_archive = ""                 # optional local .tar (docker save) for hosts with no internet
storage = "/opt/docker-image"      # image data on the host (mounted at /var/lib/registry)
config_dir = "/etc/regwizard"      # certs/ and auth/htpasswd on the host
realm = "Registry Realm"           # shown in the 401 WWW-Authenticate header
proxy_remote_url = ""              # a mirror (pull-through cache) of this upstream, e.g.
                                   # "https://registry-1.docker.io"; "" = an ordinary registry.
                                   # A mirror refuses pushes. Its upstream login is never in
                                   # the plan: REGWIZARD_UPSTREAM_USER + REGWIZARD_UPSTREAM_PASSWORD,
                                   # --upstream-credentials-file FILE ("user:password") or a prompt
proxy_ca_file = ""                 # local PEM with the CA of the upstream's certificate
                                   # ("" = the image's system roots)
allow_delete = false               # true: images can be deleted (regwizard images rm, Browse);
                                   # changing it rewrites config.yml and restarts the registry

[host]                             # the machine that runs the registry
address = "10.0.0.2"               # "local" = this machine; else a host name or IP
port = 22                          # SSH port
user = "root"                      # SSH login; with sudo = true, a user allowed to sudo
auth = "key"                       # key | agent | password (asked at run time)
key_file = "~/.ssh/id_ed25519"     # used when auth = "key"
sudo = false
host_key = ""                      # optional pinned "SHA256:..." (ssh-keygen -lf); "" = known_hosts
label = "registry-host"            # display name

[[clients]]                        # machines whose runtimes must trust the registry
address = "local"                  # this machine
port = 22
user = "root"
auth = "key"
key_file = "~/.ssh/id_ed25519"
sudo = false
host_key = ""
label = ""
runtimes = ["docker"]              # any of docker, containerd, podman
manage_containerd_config = false   # may apply set config_path in /etc/containerd/config.toml?

# [[clients]]                      # a Kubernetes node (containerd) over SSH
# address = "10.0.0.3"
# user = "admin"
# auth = "agent"
# sudo = true
# runtimes = ["containerd"]
# manage_containerd_config = true  # restarts containerd once, when it sets config_path

[certificate]
mode = "self-signed"               # self-signed | local-ca | provided
country = "CN"                     # 2 letters (ISO 3166)
state = ""
locality = ""
organization = ""
organizational_unit = ""
common_name = ""                   # "" = the domain
email = ""
days = 825                         # validity, 1..{MAX_DAYS}; renewed when fewer than
                                   # min(30, days / 3) days are left
key = "ecdsa-p256"                 # ecdsa-p256 | rsa-4096 | rsa-2048; left out = rsa-4096
extra_sans = []                    # more names or IPs, e.g. ["registry.lan", "10.0.0.20"]
cert_file = ""                     # mode = "provided": local PEM certificate (full chain)
key_file = ""                      # mode = "provided": local PEM private key

[[users]]                          # registry logins (htpasswd, bcrypt only)
name = "testuser"
# A placeholder whose password nobody knows: replace it with the output of
#   regwizard user hash testuser
bcrypt = "{PLACEHOLDER_BCRYPT}"

[policy]
remove_users = []                  # htpasswd users to delete; others not in the plan are kept

[verify]
user = "testuser"                  # log in, push and pull as this user ("" = first user)
mirror_image = ""                  # a mirror: pull this repository:tag through it instead
                                   # of pushing, e.g. "library/busybox:latest" (required then)
"""
