"""Every known problem of a registry setup, defined once: an id, the message, the fix and
the evidence (what a Docker user sees).

``Known`` is the definition; calling it with the facts' values makes a ``Problem``.
The detectors below (``container``, ``storage``, ``trust``...) turn facts into problems;
they are pure, so offline tests feed them facts. adopt turns problems into notes,
doctor into findings, and the steps into the reasons of a change.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from regwizard.facts.tls import PLAIN_HTTP, UNKNOWN_CA
from regwizard.plan import cert_extra_sans, registry_addresses

if TYPE_CHECKING:
    from regwizard.facts.certsd import CertsD
    from regwizard.facts.read import HostsFile
    from regwizard.facts.registry import RegistryFacts
    from regwizard.facts.s3 import BucketStatus
    from regwizard.facts.tls import Served
    from regwizard.pki import CertInfo
    from regwizard.plan import Plan

Severity = Literal["fail", "warn"]
LOGIN_401 = "unauthorized: authentication required"
LEGACY_CN = "x509: certificate relies on legacy Common Name field, use SANs instead"
EXPIRED = "x509: certificate has expired or is not yet valid"


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Known:
    id: str
    check: str  # the doctor check it belongs to
    severity: Severity
    message: str  # str.format templates over the facts' values
    fix: str = ""
    evidence: str = ""
    unsupported: bool = False  # a plan cannot express it: apply refuses to replace the container

    def __call__(self, **values: object) -> Problem:
        v = _Blank({k: str(x) for k, x in values.items()})
        fmt = string.Formatter()
        return Problem(
            self,
            fmt.vformat(self.message, (), v),
            fmt.vformat(self.fix, (), v),
            fmt.vformat(self.evidence, (), v),
        )


@dataclass(frozen=True)
class Problem:
    known: Known
    message: str
    fix: str
    evidence: str

    @property
    def id(self) -> str:
        return self.known.id

    @property
    def check(self) -> str:
        return self.known.check

    @property
    def severity(self) -> Severity:
        return self.known.severity

    @property
    def note(self) -> str:
        """One line for adopt's notes: what is wrong, then what apply does about it."""
        return f"{self.message}; {self.fix}" if self.fix else self.message


CATALOGUE: dict[str, Known] = {}


def _k(*args, **kw) -> Known:  # noqa: ANN002, ANN003
    k = Known(*args, **kw)
    assert k.id not in CATALOGUE, k.id
    CATALOGUE[k.id] = k
    return k


# --------------------------------------------------------------------------- container

CONTAINER_MISSING = _k(
    "container-missing", "container", "fail",
    "there is no container named {name}",
    "regwizard apply creates it{adopt_hint}",
    "{others}",
)  # fmt: skip
CRASH_LOOP = _k(
    "container-crash-loop", "container", "fail",
    "{name} is crash-looping (restarted {restarts} times, exit code {code})",
    "read its last log lines (docker logs {name}); regwizard apply rewrites the certificate, "
    "htpasswd and container from the plan",
    "{logs}",
)  # fmt: skip
STOPPED = _k(
    "container-stopped", "container", "fail",
    "{name} is {status} (exit code {code}, since {since})",
    "regwizard apply starts it (docker start {name})",
    "{logs}",
)  # fmt: skip
RESTART_POLICY = _k(
    "restart-policy", "restart", "warn",
    "restart policy is '{policy}': after a reboot or a Docker restart the registry stays down",
    "regwizard apply sets it (docker update --restart=always {name})",
    'docker inspect {name}: RestartPolicy.Name = "{policy}"',
)  # fmt: skip

DELETE_DISABLED = _k(
    "delete-disabled", "storage", "warn",
    "the registry refuses to delete images (405 UNSUPPORTED): storage.delete.enabled is off",
    "set allow_delete = true under [registry] in the plan, then run `regwizard apply PLAN` "
    "(it rewrites config.yml and restarts the registry)",
    "{evidence}",
)  # fmt: skip

# --------------------------------------------------------------------------- TLS and port

PLAIN = _k(
    "plain-http", "tls", "fail",
    "plain HTTP registry: no TLS (no TLS certificate is configured); Docker refuses it unless "
    "every client lists it in insecure-registries",
    "regwizard apply runs it with a certificate with SANs, trusted in certs.d",
    "{evidence}",
)  # fmt: skip
UNTRUSTED_SERVER = _k(
    "server-not-verified", "tls", "fail",
    "the server at {where} does not prove it is {address}: its certificate does not verify "
    "against the plan's trust anchor ({anchor})",
    "check that {where} is the registry host (registry.ip, /etc/hosts); regwizard apply "
    "reissues the certificate and restarts the registry if it is",
    "{evidence}",
)  # fmt: skip
NO_PORT = _k(
    "port-none", "port", "fail",
    "the container publishes no port; clients cannot reach the registry on {cport}",
    "regwizard apply publishes {port} to the registry's own port ({cport})",
    "{evidence}",
)  # fmt: skip
PORT_MISMATCH = _k(
    "port-mismatch", "port", "fail",
    "port mismatch: {mapping} but {listens}: connections are dropped",
    "regwizard apply publishes {port} to the registry's own port ({cport})",
    "{evidence}",
)  # fmt: skip
PORT_HOST_NET = _k(
    "port-host-network", "port", "fail",
    "port mismatch: host networking and {listens}, the plan says {port}",
    "regwizard apply publishes {port} to the registry's own port ({cport})",
    "{evidence}",
)  # fmt: skip
PORT_PLAN = _k(
    "port-differs", "port", "fail",
    "the plan says port {port}, the container publishes {mapping}",
    "set registry.port = {published} in the plan, or run regwizard apply to move the registry "
    "to {port}",
    "{evidence}",
)  # fmt: skip
PORT_SILENT = _k(
    "port-silent", "port", "fail",
    "{mapping} and {listens}, but nothing answers on {where}",
    "check the container (docker logs) and firewalls between the hosts",
    "{evidence}",
)  # fmt: skip
PORT_TAKEN = _k(
    "port-taken", "port", "fail",
    "port {port} is held by another container, {other}",
    "stop it (docker stop {other}), adopt it (regwizard adopt ... --container {other}), or "
    "choose another port in the plan",
    "Bind for 0.0.0.0:{port} failed: port is already allocated",
)  # fmt: skip

# --------------------------------------------------------------------------- certificate

CERT_NO_SAN = _k("cert-no-san", "certificate", "fail", "{what}{detail}", "{fix}", LEGACY_CN)
CERT_EXPIRED = _k("cert-expired", "certificate", "fail", "{what}{detail}", "{fix}", EXPIRED)
CERT_EXPIRING = _k("cert-expiring", "certificate", "warn", "{what}{detail}", "{fix}", "{short}")
CERT_NAMES = _k("cert-names", "certificate", "fail", "{what}{detail}", "{fix}", "{docker}")
CERT_WEAK = _k("cert-weak", "certificate", "fail", "{what}{detail}", "{fix}", "{detail}")
CERT_MISSING = _k(
    "cert-missing", "certificate", "fail",
    "no certificate: the registry serves none and none is at {path}",
    "regwizard apply issues one with SANs",
    "{evidence}",
)  # fmt: skip
CERT_STALE = _k(
    "cert-stale", "certificate", "warn",
    "the registry still serves an older certificate than {path} (TLS is loaded at start)",
    "regwizard apply restarts it (docker restart {name})",
    "served SHA256 {served}…, on disk SHA256 {disk}…",
)  # fmt: skip
CERT_NOT_SELF_SIGNED = _k(
    "cert-from-ca", "certificate", "warn",
    "the certificate was issued by {issuer}; the plan uses a self-signed one (clients get it "
    "in certs.d)",
    'set certificate.mode = "provided" with cert_file/key_file to keep your CA',
)  # fmt: skip
CA_KEY_MOUNTED = _k(
    "ca-key-mounted", "certificate", "warn",
    "the CA's private key {path} sits in the directory mounted into the registry container",
    "regwizard apply moves it to {dest} (root only, never mounted)",
    "docker inspect: {certs} is mounted at /certs",
)  # fmt: skip
LETSENCRYPT = _k(
    "tls-letsencrypt", "tls", "fail",
    "the registry gets its certificate from Let's Encrypt (http.tls.letsencrypt), which a plan "
    "cannot express",
    "keep it as it is; regwizard will not replace this container",
    unsupported=True,
)  # fmt: skip

# --------------------------------------------------------------------------- auth

NO_AUTH_SERVED = _k(
    "auth-none", "auth", "fail",
    "registry without auth: anonymous requests are served, anyone can push and pull{why}",
    "add a user to the plan (regwizard user hash NAME) and run regwizard apply: it turns on "
    "htpasswd auth",
    "GET {url} without credentials -> 200",
)  # fmt: skip
NO_HTPASSWD = _k(
    "auth-not-htpasswd", "auth", "fail",
    "registry without htpasswd auth{why}",
    "run regwizard apply: it turns on htpasswd auth",
    "docker inspect / config: no htpasswd auth",
)  # fmt: skip
TOKEN_AUTH = _k(
    "auth-unsupported", "auth", "fail",
    "the registry uses {kind} auth, which a plan cannot express (regwizard sets up htpasswd)",
    "keep it as it is; regwizard will not replace this container",
    unsupported=True,
)  # fmt: skip
AUTH_ODD = _k(
    "auth-odd", "auth", "warn",
    "GET /v2/ without credentials -> {status}",
    "check the registry logs",
    "{evidence}",
)  # fmt: skip
LOGIN_REFUSED = _k(
    "login-refused",
    "login",
    "fail",
    "login as {user} refused (HTTP {status})",
    "{fix}",
    "{evidence}",
)
LOGIN_SKIPPED = _k(
    "login-skipped", "login", "warn",
    "login as {user} not checked: the server did not prove it is the registry, so the password "
    "was not sent",
    "fix the TLS finding first, then run doctor again",
)  # fmt: skip

# --------------------------------------------------------------------------- htpasswd

NON_BCRYPT = _k(
    "htpasswd-non-bcrypt", "htpasswd", "fail",
    "non-bcrypt htpasswd line(s) in {where}: {names}; the registry ignores them, so these users "
    "get 401",
    "{fix}",
    "{lines}\ndocker login: " + LOGIN_401 + " / 401 Unauthorized",
)  # fmt: skip
HTPASSWD_INVALID = _k(
    "htpasswd-invalid", "htpasswd", "fail",
    "{where}: line(s) {lines} have no ':'; the registry rejects the whole file",
    "regwizard apply rewrites the file without them",
)  # fmt: skip
HTPASSWD_FILE_MOUNT = _k(
    "htpasswd-file-mount", "htpasswd", "warn",
    "htpasswd is mounted as a single file ({source} -> {path}): a rename-style rewrite "
    "(editors, htpasswd -B, regwizard) leaves the registry reading the old file",
    "regwizard apply mounts the auth directory instead (-v DIR/auth:/auth:ro)",
    "docker inspect: bind {source}:{path}",
)  # fmt: skip
HTPASSWD_MISSING = _k(
    "htpasswd-missing", "htpasswd", "warn",
    "{where} does not exist: the registry creates it with a user 'docker' and a random password "
    "(printed in its log)",
    "regwizard apply writes the plan's bcrypt hashes",
    "{logs}",
)  # fmt: skip
HTPASSWD_NO_PATH = _k(
    "htpasswd-no-path", "htpasswd", "fail",
    "htpasswd auth without a path",
    "run regwizard apply",
    "auth.htpasswd.path / REGISTRY_AUTH_HTPASSWD_PATH is not set",
)  # fmt: skip
BCRYPT_COST = _k(
    "bcrypt-cost", "htpasswd", "warn",
    "user(s) {names} have bcrypt cost above {limit}: the registry checks the hash on every "
    "request, so each pull or push costs it {cost_ms} of CPU",
    "give them a new password at cost {default} (regwizard user hash NAME) and run regwizard "
    "apply",
    "{lines}",
)  # fmt: skip

# --------------------------------------------------------------------------- storage

V1_PATH = "STORAGE_PATH={path} is a registry v1 setting that v2 ignores: images go to {root}"
STORAGE_FIX = (
    "regwizard apply copies the images to {storage} (bound at {root}) before it replaces the "
    "container{kept}"
)
STORAGE_LAYER = _k(
    "storage-layer", "storage", "fail",
    "storage not persisted: {v1}images are in the container's writable layer ({root}); "
    "`docker rm` deletes them",
    STORAGE_FIX,
    "docker inspect: no mount at {root}",
)  # fmt: skip
STORAGE_ANONYMOUS = _k(
    "storage-anonymous", "storage", "fail",
    "storage not persisted: {v1}images are in anonymous volume {volume} ({root}); "
    "`docker rm -v` or `docker volume prune` deletes them",
    STORAGE_FIX,
    "{root} <- volume {volume_full} ({path}): {repos}",
)  # fmt: skip
STORAGE_TMPFS = _k(
    "storage-tmpfs", "storage", "fail",
    "storage not persisted: {v1}images are on a tmpfs at {root}; a restart deletes them",
    "regwizard apply stores them in {storage} (nothing can be copied from a tmpfs once the "
    "container stops: push them again afterwards)",
    "docker inspect: tmpfs at {root}",
)  # fmt: skip
STORAGE_ELSEWHERE = _k(
    "storage-elsewhere", "storage", "warn",
    "{v1}images are in {where}, not in the plan's storage {storage}",
    STORAGE_FIX,
    "{root} <- {where}: {repos}",
)  # fmt: skip
STORAGE_V1 = _k(
    "storage-v1-path", "storage", "warn",
    V1_PATH,
    "regwizard apply recreates the container without it",
    "docker inspect: STORAGE_PATH={path}",
)  # fmt: skip
STORAGE_DRIVER = _k(
    "storage-unsupported", "storage", "fail",
    "images are kept by the {driver} storage driver ({params}), which a plan cannot express",
    "keep it as it is; regwizard will not replace this container (it would start an empty "
    "registry)",
    "configuration: storage.{driver}",
    unsupported=True,
)  # fmt: skip
STORAGE_DIFFERS = _k(
    "storage-differs", "storage", "fail",
    "the registry keeps its images {running}, but the plan keeps them {planned}",
    "{fix}",
    "configuration: {evidence}",
)  # fmt: skip
AWS_ENV = _k(
    "aws-env", "storage", "fail",
    "the registry container's environment holds {names}: the S3 driver reads AWS_* "
    "variables (AWS_CA_BUNDLE makes it panic at start)",
    "{fix}",
    "docker inspect {name}: {names}; with AWS_CA_BUNDLE the log says \"unable to load custom "
    "CA bundle\"",
)  # fmt: skip
S3_ENV_OVERRIDE = _k(
    "s3-env-override", "storage", "warn",
    "the registry's S3 settings are overridden by environment variables ({names}): anyone "
    "who can run docker inspect reads them",
    "regwizard apply recreates the container with every S3 setting in its root-only config.yml",
    "docker inspect {name}: {names}",
)  # fmt: skip
S3_REDIRECT = _k(
    "s3-redirect", "storage", "warn",
    "the registry redirects blob downloads to presigned URLs on the object store "
    "(storage.redirect is on): every client must reach and trust {endpoint} too",
    "regwizard apply sets storage.redirect.disable: true (the registry serves blobs itself)",
    "configuration: storage.redirect.disable is not true",
)  # fmt: skip
PROXY = _k(
    "proxy-unsupported", "storage", "fail",
    "the registry is a pull-through cache of {url} (proxy.remoteurl), which a plan cannot "
    "express: {why}",
    "keep it as it is; regwizard will not replace this container",
    "configuration: proxy.remoteurl = {url}",
    unsupported=True,
)  # fmt: skip
PROXY_DIFFERS = _k(
    "proxy-differs", "mirror", "warn",
    "the registry {running}, but the plan {planned}",
    "{fix}",
    "configuration: proxy.remoteurl = {url}",
)  # fmt: skip
MIRROR_NOTE = "mirror of {url}: pushes are refused by design (a pull-through cache)"
CONFIG_UNREADABLE = _k(
    "config-unreadable", "storage", "fail",
    "the registry's configuration {where} cannot be read: {error}",
    "fix the file by hand; regwizard will not replace a container whose setup it cannot read",
    unsupported=True,
)  # fmt: skip
SECRET_IN_ENV = _k(
    "http-secret-env", "container", "warn",
    "the registry's http secret is an environment variable: anyone who can run docker inspect "
    "reads it",
    "regwizard apply moves it into a root-only configuration file",
    "docker inspect {name}: REGISTRY_HTTP_SECRET=…",
)  # fmt: skip

# --------------------------------------------------------------------------- maintenance

READ_ONLY = _k(
    "registry-read-only", "maintenance", "fail",
    "the registry is stuck read-only: {why}; every push fails while pulls go on",
    "if no `regwizard gc` is running now, run regwizard apply: it writes config.yml back "
    "read-write and restarts the registry",
    "{evidence}",
)  # fmt: skip
# distribution registers no upload methods when read-only: POST .../blobs/uploads/ -> 405
READ_ONLY_PUSH = "HTTP 405 Method Not Allowed on POST /v2/NAME/blobs/uploads/ (read-only mode)"


# --------------------------------------------------------------------------- every host

HOSTS_WRONG = _k(
    "hosts-wrong", "hosts-file", "fail",
    "/etc/hosts maps {domain} to {wrong}, not {ip}",
    "regwizard apply writes '{ip} {domain}' into /etc/hosts (the Docker daemon resolves the "
    "name, so every Docker host needs it)",
    "Docker on {host} connects to {first}:{port}; typical errors: connection refused, or x509: "
    "certificate is valid for ..., not {domain}",
)  # fmt: skip
HOSTS_MISSING = _k(
    "hosts-missing", "hosts-file", "fail",
    "{domain} is not in /etc/hosts and does not resolve to {ip}",
    "regwizard apply writes '{ip} {domain}' into /etc/hosts (the Docker daemon resolves the "
    "name, so every Docker host needs it)",
    'Get "https://{address}/v2/": dial tcp: lookup {domain}: no such host',
)  # fmt: skip
HOSTS_REPLICAS_MISSING = _k(
    "hosts-replicas-missing", "hosts-file", "fail",
    "/etc/hosts maps {domain} to {have}, not to every registry host ({ip})",
    "regwizard apply writes one '{domain}' line per registry host (Docker tries each "
    "address in turn, so a stopped replica is skipped)",
    "while {missing_one} is the only replica up, Docker on {host} cannot reach {domain}",
)  # fmt: skip
NO_RESOLVE = _k(
    "name-unresolved", "hosts-file", "fail",
    "{domain} does not resolve on {host}",
    "set registry.ip and manage_hosts_file = true, or add the name to DNS",
    'Get "https://{address}/v2/": dial tcp: lookup {domain}: no such host',
)  # fmt: skip
TRUST_FIX = "regwizard apply writes {want}/ca.crt (read at each connection: no restart)"
TRUST_MISNAMED = _k(
    "certs-d-misnamed", "trust", "fail",
    "certs.d directory misnamed: {dirs}; Docker only looks in {want}/ ({why})",
    TRUST_FIX, UNKNOWN_CA,
)  # fmt: skip
TRUST_MISSING = _k(
    "certs-d-missing", "trust", "fail",
    "{want}/ is missing: Docker on {host} does not trust the registry",
    TRUST_FIX, UNKNOWN_CA,
)  # fmt: skip
TRUST_STRAY = _k(
    "certs-d-stray", "trust", "fail",
    "{want}/{name}: Docker refuses the whole directory (a CA must end in .crt)",
    "regwizard apply moves it aside and writes ca.crt",
    "{error}",
)  # fmt: skip
TRUST_EMPTY = _k(
    "certs-d-empty", "trust", "fail",
    "{want}/ has no .crt file: Docker does not trust the registry",
    TRUST_FIX, UNKNOWN_CA,
)  # fmt: skip
TRUST_WRONG = _k(
    "certs-d-wrong", "trust", "fail",
    "the .crt files in {want}/ do not match the certificate the registry {serves}",
    TRUST_FIX, UNKNOWN_CA,
)  # fmt: skip


# --------------------------------------------------------------------------- other runtimes

CTRD_DOWN = _k(
    "containerd-down", "containerd", "fail",
    "no containerd answers on {host} at {socket}",
    'start it (systemctl start containerd), or remove "containerd" from its runtimes',
)  # fmt: skip
CTRD_CRI_OFF = _k(
    "containerd-cri-disabled", "containerd", "fail",
    "containerd on {host} disables its CRI plugin: it is not a Kubernetes runtime",
    'remove "containerd" from runtimes for {host}: its Docker trust is enough',
    "{path}: disabled_plugins = [\"cri\"]",
)  # fmt: skip
CTRD_NO_PATH = _k(
    "containerd-config-path", "containerd", "fail",
    "CRI on {host} reads no certs.d directory: config_path is not set in {path}",
    "{fix}",
    "kubelet / crictl pull: x509: certificate signed by unknown authority",
)  # fmt: skip
CTRD_PATHS = _k(
    "containerd-config-paths", "containerd", "warn",
    "config_path on {host} lists several directories ({value}); containerd's transfer "
    "service reads only the first well (containerd#12808)",
    "{fix}",
    "{path}: config_path = \"{value}\"",
)  # fmt: skip
CTRD_CA = _k(
    "containerd-ca", "containerd", "fail",
    "{dir}/ca.crt {state}: containerd on {host} does not trust the registry",
    "regwizard apply writes it and hosts.toml (read per pull: no restart)",
    UNKNOWN_CA,
)  # fmt: skip
CTRD_HOSTS = _k(
    "containerd-hosts-toml", "containerd", "fail",
    "{dir}: {problem}: containerd on {host} does not use the CA",
    "regwizard apply writes hosts.toml with a [host] section naming ca.crt",
    UNKNOWN_CA,
)  # fmt: skip
PODMAN_CA = _k(
    "podman-ca", "podman", "fail",
    "{dir}/ca.crt {state}: podman on {host} does not trust the registry",
    "regwizard apply writes it (read per connection: no restart)",
    UNKNOWN_CA,
)  # fmt: skip
PODMAN_EMPTY = _k(
    "podman-empty-dir", "podman", "fail",
    "{dir}/ exists without a .crt file: podman reads it before {docker_dir}/ and stops there, "
    "so Docker's trust on {host} does not help podman",
    "regwizard apply writes ca.crt into it",
    UNKNOWN_CA,
)  # fmt: skip
PODMAN_MISSING = _k(
    "podman-missing", "podman", "fail",
    "podman is not installed on {host}",
    'install it (apt-get install podman), or remove "podman" from its runtimes',
)  # fmt: skip


# --------------------------------------------------------------------------- object storage (S3)

S3_BUCKET_MISSING = _k(
    "s3-bucket-missing", "bucket", "fail",
    "bucket {bucket} does not exist at {endpoint}{where}",
    "create it on the object store (SeaweedFS: echo 's3.bucket.create -name {bucket}' | "
    "weed shell -master=MASTER:9333), or correct storage.bucket in the plan",
    "{evidence}",
)  # fmt: skip
S3_ACCESS_DENIED = _k(
    "s3-access-denied", "bucket", "fail",
    "{endpoint} refused access key {access_key} on bucket {bucket}{where}",
    "check storage.access_key and its secret key (--s3-secret-file or "
    "REGWIZARD_S3_SECRET_KEY) against the object store's identities (SeaweedFS: s3.json)",
    "{evidence}",
)  # fmt: skip
S3_UNREACHABLE = _k(
    "s3-unreachable", "bucket", "fail",
    "the object store at {endpoint} does not answer{where}",
    "start it, or correct storage.endpoint; the registry cannot store or serve anything "
    "until it answers",
    "{evidence}",
)  # fmt: skip
S3_ERROR = _k(
    "s3-error", "bucket", "fail",
    "bucket {bucket} at {endpoint} answered with an error{where}",
    "read the evidence: a wrong region (storage.region), an https endpoint whose certificate "
    "is not trusted, or something that is not an S3 API at that address",
    "{evidence}",
)  # fmt: skip


REPLICA_STORAGE_UNREADABLE = _k(
    "replica-storage-unreadable", "replicas", "fail",
    "{host} cannot read the registry's storage: GET /v2/_catalog through {where} -> {what}",
    "check that {host} reaches the object store at {endpoint} (its registry container's "
    "network, a firewall) and read its registry logs: docker logs {container}",
    "{evidence}",
)  # fmt: skip
REPLICA_CATALOG_DIFFERS = _k(
    "replica-catalog-differs", "replicas", "fail",
    "{host} lists other repositories than {primary} ({mine} vs {theirs}): they do not "
    "serve one storage",
    "regwizard apply writes the plan's [storage] into every registry host's config.yml; "
    "then compare their storage settings (replica-storage-differs)",
    "{evidence}",
)  # fmt: skip


# --------------------------------------------------------------------------- detectors


def container(facts: RegistryFacts, logs: str = "", now: float | None = None) -> list[Problem]:
    out = []
    if facts.crash_looping(now):
        out.append(
            CRASH_LOOP(
                name=facts.name, restarts=facts.restart_count, code=facts.exit_code, logs=logs
            )
        )
    elif not facts.running:
        out.append(
            STOPPED(
                name=facts.name,
                status=facts.status or "not running",
                code=facts.exit_code,
                since=facts.finished_at[:19],
                logs=logs,
            )
        )
    if facts.restart_policy != "always":
        out.append(RESTART_POLICY(name=facts.name, policy=facts.restart_policy))
    if facts.http_secret == "env":
        out.append(SECRET_IN_ENV(name=facts.name))
    return out


def unsupported(facts: RegistryFacts) -> list[Problem]:
    """What a plan cannot express: apply must refuse to replace this container."""
    out = []
    cfg = facts.config
    if cfg is not None and cfg.error:
        out.append(CONFIG_UNREADABLE(where=cfg.where or cfg.path, error=cfg.error))
    st = facts.storage
    # an unreadable file names no driver: that is not "the (none) driver", it is unknown
    expressible = ("filesystem", "s3")  # a plan's [storage] driver
    if st.driver not in expressible and not (cfg is not None and cfg.error and not st.driver):
        params = ", ".join(f"{k} {v}" for k, v in sorted(st.params.items()) if v) or "no settings"
        out.append(STORAGE_DRIVER(driver=st.driver or "(none)", params=params))
    if facts.proxy_remote:
        from regwizard.plan import check_proxy_remote_url, redacted_url

        why = check_proxy_remote_url(facts.proxy_remote)
        if why:
            out.append(PROXY(url=redacted_url(facts.proxy_remote), why=why))
    if facts.auth.kind not in ("", "htpasswd"):
        out.append(TOKEN_AUTH(kind=facts.auth.kind))
    if facts.tls.letsencrypt:
        out.append(LETSENCRYPT())
    return out


def proxy(facts: RegistryFacts, plan_url: str) -> list[Problem]:
    """A mirror the plan does not describe, or the other way round."""
    from regwizard.plan import check_proxy_remote_url, redacted_url

    have = facts.proxy_remote
    if have == plan_url or (have and check_proxy_remote_url(have)):
        return []  # the same; or one a plan cannot express (unsupported() says it)
    url = redacted_url(have)
    if have and not plan_url:
        return [
            PROXY_DIFFERS(
                running=f"mirrors {url} (a pull-through cache)",
                planned="has no proxy_remote_url",
                fix=f'set registry.proxy_remote_url = "{url}" in the plan to keep the mirror '
                "(regwizard adopt writes it); else apply makes it an ordinary registry",
                url=url,
            )
        ]
    return [
        PROXY_DIFFERS(
            running=f"mirrors {url}" if have else "is not a mirror",
            planned=f"mirrors {plan_url}",
            fix=f"regwizard apply recreates it as a mirror of {plan_url}",
            url=url or "(none)",
        )
    ]


def _where(driver: str, spec) -> str:  # noqa: ANN001 - plan.StorageSpec
    if driver == "s3":
        return f"in S3 bucket {spec.bucket} at {spec.endpoint or '(no endpoint)'}"
    return f"with the {driver or '(no)'} storage driver"


def s3(facts: RegistryFacts, plan: Plan) -> list[Problem]:
    """The running registry's storage driver and S3 settings against the plan's
    [storage], and what in its environment the S3 driver would trip over."""
    from regwizard.facts.registry import s3_spec

    out: list[Problem] = []
    st, want = facts.storage, plan.storage
    have = s3_spec(st) if st.driver == "s3" else None
    aws = [n for n in facts.env_names if n.startswith("AWS_")]
    if aws and (st.driver == "s3" or want.is_s3):
        fix = (
            "regwizard apply recreates it with an explicit environment (no AWS_*); if the "
            "image itself sets them, use an image without them"
            if facts.managed or want.is_s3
            else "recreate the container without -e AWS_... (regwizard adopt, then apply)"
        )
        out.append(AWS_ENV(names=", ".join(aws), name=facts.name, fix=fix))
    if st.driver == "s3" and st.env_overrides:
        out.append(S3_ENV_OVERRIDE(names=", ".join(st.env_overrides), name=facts.name))
    if want.is_s3 and have is not None and not st.redirect_disabled:
        out.append(S3_REDIRECT(endpoint=have.endpoint or "the object store"))
    if st.driver not in ("filesystem", "s3"):
        return out  # unsupported() says it
    if want.is_s3 and have is not None:
        same = (have.bucket, have.endpoint.rstrip("/")) == (want.bucket, want.endpoint.rstrip("/"))
        if same:
            return out
        out.append(
            STORAGE_DIFFERS(
                running=_where("s3", have),
                planned=_where("s3", want),
                fix=f"check the plan's [storage]: apply points the registry at bucket "
                f"{want.bucket}, where the images of {have.bucket} are not; copy them first, or "
                "set the plan back (regwizard adopt writes what runs)",
                evidence=f"storage.s3 bucket {have.bucket}, regionendpoint {have.endpoint}",
            )
        )
    elif want.is_s3:
        out.append(
            STORAGE_DIFFERS(
                running=f"on the filesystem ({st.host_path or st.root})",
                planned=_where("s3", want),
                fix="regwizard apply switches to the bucket only while the directory holds no "
                f"images: copy them into bucket {want.bucket} first (aws s3 sync, weed "
                'filer.copy), or keep [storage] driver = "filesystem"',
                evidence=f"storage.filesystem rootdirectory {st.root}",
            )
        )
    elif have is not None:
        out.append(
            STORAGE_DIFFERS(
                running=_where("s3", have),
                planned=f"on the filesystem ({plan.registry.storage})",
                fix=f'set [storage] driver = "s3", bucket = "{have.bucket}", endpoint = '
                f'"{have.endpoint}" (regwizard adopt writes them); apply refuses to replace a '
                "registry whose images would disappear from view",
                evidence=f"storage.s3 bucket {have.bucket}, regionendpoint {have.endpoint}",
            )
        )
    return out


def maintenance(marker: bytes | None, config_read_only: bool, where: str) -> list[Problem]:
    """A `regwizard gc` marker left on the host, or a config.yml that is read-only."""
    if marker is None and not config_read_only:
        return []
    note = " ".join(marker.decode(errors="replace").split())[:300] if marker is not None else ""
    if marker is not None:
        why = f"a `regwizard gc` was cut before it switched it back ({where}: {note})"
    else:
        why = "storage.maintenance.readonly is on in its config.yml"
    return [READ_ONLY(why=why, evidence=f"docker push: {READ_ONLY_PUSH}")]


def storage(facts: RegistryFacts, plan_storage: str, repos: str = "") -> list[Problem]:
    """Where the images live, against the plan's storage directory."""
    st = facts.storage
    if st.driver != "filesystem":
        return []  # unsupported() or s3() says it
    v1 = V1_PATH.format(path=st.v1_path, root=st.root) + "; " if st.v1_path else ""
    kept = {
        "layer": "",
        "bind": "; the old directory is kept, nothing is deleted",
    }.get(st.kind, "; the old volume is kept, nothing is deleted")
    common = {
        "v1": v1,
        "root": st.root,
        "storage": plan_storage,
        "repos": repos or "empty",
        "kept": kept,
        "path": st.host_path or "",
    }
    kind = st.kind
    if kind == "layer":
        return [STORAGE_LAYER(**common)]
    if kind == "tmpfs":
        return [STORAGE_TMPFS(**common)]
    name = st.mount.name if st.mount else ""
    if kind == "anonymous-volume":
        return [STORAGE_ANONYMOUS(**common, volume=name[:12], volume_full=name)]
    where = f"volume {name}" if kind == "volume" else (st.host_path or "")
    if kind == "volume" or (st.host_path or "").rstrip("/") != plan_storage.rstrip("/"):
        return [STORAGE_ELSEWHERE(**common, where=where)]
    if st.v1_path:
        return [STORAGE_V1(path=st.v1_path, root=st.root)]
    return []


def delete(facts: RegistryFacts, plan: Plan) -> list[Problem]:
    """The plan allows deleting images but the running registry does not (yet)."""
    if plan.registry.allow_delete and not facts.delete_enabled:
        return [DELETE_DISABLED(evidence="storage.delete.enabled is off in the running registry")]
    return []


def tls(facts: RegistryFacts | None, served: Served | None) -> list[Problem]:
    no_cert = facts is not None and not facts.tls.certificate
    if no_cert or (served is not None and served.plain_http):
        ev = served.docker_error if served is not None and served.plain_http else PLAIN_HTTP
        return [PLAIN(evidence=ev)]
    return []


def port(facts: RegistryFacts, plan_port: int, served: Served | None, where: str) -> list[Problem]:
    cport = facts.listen_port
    listens = f"the registry listens on {cport}" + (
        f" (http.addr {facts.listen_addr})" if facts.listen_addr else ""
    )
    evidence = served.docker_error if served is not None and not served.tls else ""
    base = {"port": plan_port, "cport": cport, "listens": listens, "evidence": evidence}
    if facts.host_network:
        return [] if cport == plan_port else [PORT_HOST_NET(**base)]
    pub = facts.published
    mapping = ", ".join(f"-p {hp}:{cp}" for cp, hps in sorted(pub.items()) for hp in hps)
    if not pub:
        return [NO_PORT(**base)]
    if cport not in pub:
        return [PORT_MISMATCH(**base, mapping=mapping)]
    if plan_port not in pub[cport]:
        return [PORT_PLAN(**base, mapping=mapping, published=pub[cport][0])]
    if served is not None and not served.connected:
        return [PORT_SILENT(**base, mapping=mapping, where=where)]
    return []


def port_taken(plan_port: int, holders: list[str]) -> list[Problem]:
    return [PORT_TAKEN(port=plan_port, other=h) for h in holders[:1]]


def certificate(info: CertInfo, plan: Plan, what: str = "") -> list[Problem]:
    """The certificate against the plan: names, lifetime, strength. ``what`` prefixes the
    message ("the served certificate: ")."""
    from regwizard import pki

    reg, spec = plan.registry, plan.certificate
    if spec.mode == "provided":
        fix = (
            "replace certificate.cert_file/key_file with a certificate whose SANs cover "
            f"{reg.domain}" + (f" and {reg.ip}" if reg.ip else "")
        )
    else:
        fix = (
            "regwizard apply issues a new one with SANs for "
            + ", ".join(v for v in (reg.domain, reg.ip, *cert_extra_sans(plan)) if v)
            + f" ({spec.days} days), restarts the registry and updates certs.d on every host"
        )
    out = []
    for detail in pki.cert_problems(
        info,
        domain=reg.domain,
        ip=reg.ip,
        extra_sans=cert_extra_sans(plan),
        min_days=pki.renew_days(spec.days),
    ):
        values = {"what": what, "detail": detail, "fix": fix}
        if "no subjectAltName" in detail:
            out.append(CERT_NO_SAN(**values))
        elif "expired on" in detail or "not valid until" in detail:
            out.append(CERT_EXPIRED(**values))
        elif "expires on" in detail:
            out.append(CERT_EXPIRING(**values, short=detail.split(";")[0]))
        elif "key usage" in detail:  # says what Docker reports too, but it is no name problem
            out.append(CERT_WEAK(**values))
        elif "Docker reports" in detail:
            docker = detail.split('Docker reports "', 1)[1].rstrip('"')
            out.append(CERT_NAMES(**values, docker=docker))
        else:
            out.append(CERT_WEAK(**values))
    return out


def auth(facts: RegistryFacts | None, served: Served | None) -> list[Problem]:
    kind = facts.auth.kind if facts is not None else ""
    why = "" if kind else " (no auth configured in the container)"
    if served is not None and served.tls and served.status == 200:
        return [NO_AUTH_SERVED(why=why, url=served.url)]
    if served is not None and served.tls and served.status == 401:
        return []
    if facts is not None and kind != "htpasswd":
        if kind and kind != "htpasswd":
            return []  # unsupported() names token auth
        return [NO_HTPASSWD(why=" (no auth section, no REGISTRY_AUTH)")]
    if served is not None and served.tls:
        return [AUTH_ODD(status=served.status, evidence=served.docker_error)]
    return []


def htpasswd(
    facts: RegistryFacts, text: str | None, where: str, plan: Plan | None
) -> list[Problem]:
    from regwizard import htpasswd as ht

    a = facts.auth
    if a.kind != "htpasswd":
        return []
    out = []
    if a.single_file_mount and a.htpasswd_mount is not None:
        out.append(HTPASSWD_FILE_MOUNT(source=a.htpasswd_mount.source, path=a.htpasswd))
    if not a.htpasswd:
        return [HTPASSWD_NO_PATH(), *out]
    if text is None:
        return [HTPASSWD_MISSING(where=where), *out]
    entries = ht.parse(text)
    bad = [x for x in entries if not ht.is_bcrypt(x.hash)]
    if bad:
        names = ", ".join(f"{x.name} ({ht.hash_kind(x.hash)})" for x in bad)
        fix = []
        in_plan = [x.name for x in bad if plan is not None and plan.user(x.name)]
        if in_plan:
            fix.append(f"regwizard apply replaces {', '.join(in_plan)} with the plan's bcrypt")
        for x in bad:
            if x.name not in in_plan:
                fix.append(
                    f"give {x.name} a new password (regwizard user hash {x.name}), add it to "
                    "[[users]], then regwizard apply"
                )
        lines = "\n".join(f"{x.name}:{x.hash[:7]}…" for x in bad)
        out.insert(0, NON_BCRYPT(where=where, names=names, fix="; ".join(fix), lines=lines))
    invalid = ht.invalid_lines(text)
    if invalid:
        out.append(HTPASSWD_INVALID(where=where, lines=", ".join(map(str, invalid))))
    costly = [x for x in entries if ht.is_bcrypt(x.hash) and ht.cost_of(x.hash) > ht.MAX_COST]
    if costly:
        top = max(ht.cost_of(x.hash) for x in costly)
        out.append(
            BCRYPT_COST(
                names=", ".join(x.name for x in costly),
                limit=ht.MAX_COST,
                cost_ms=ht.cost_words(top),
                default=ht.DEFAULT_COST,
                lines="\n".join(f"{x.name}:{x.hash[:7]}…" for x in costly),
            )
        )
    return out


def hosts_file(hf: HostsFile, plan: Plan, host: str) -> list[Problem]:
    """/etc/hosts must map the name to exactly the registry hosts' addresses (one with
    no replicas: ``registry.ip``), in any order."""
    reg = plan.registry
    want = registry_addresses(plan)
    values = {"domain": reg.domain, "ip": ", ".join(want), "host": host, "address": reg.address}
    if not (reg.manage_hosts_file and reg.ip):
        if hf.entry.present or hf.resolves_to:
            return []
        return [NO_RESOLVE(**values)]
    have = hf.entry.addresses
    if set(have) == set(want):
        return []
    wrong = tuple(a for a in have if a not in want)
    if wrong:
        return [HOSTS_WRONG(**values, wrong=", ".join(wrong), first=wrong[0], port=reg.port)]
    if have:
        missing = [a for a in want if a not in have]
        return [HOSTS_REPLICAS_MISSING(**values, have=", ".join(have), missing_one=missing[0])]
    if reg.ip in hf.resolves_to:
        return []
    return [HOSTS_MISSING(**values)]


def trust(cd: CertsD, plan: Plan, host: str, anchor: bytes, served_pem: bytes) -> list[Problem]:
    from regwizard.facts import certsd

    reg = plan.registry
    want = certsd.trust_dir(reg.address)
    if not cd.exists:
        wrong = certsd.misnamed(cd.dirs, reg.domain, reg.ip, reg.port)
        if wrong:
            why = (
                "port 443 is written without :443"
                if reg.port == 443
                else f"the port {reg.port} is part of the name"
            )
            dirs = ", ".join(f"{certsd.CERTS_D}/{d}" for d in wrong)
            return [TRUST_MISNAMED(dirs=dirs, want=want, why=why)]
        return [TRUST_MISSING(want=want, host=host)]
    out = [TRUST_STRAY(want=want, name=n, error=err) for n, err in cd.stray]
    if not cd.bundle.strip():
        return [*out, TRUST_EMPTY(want=want)]
    target = served_pem or anchor
    if target and not certsd.trusts(cd.bundle, target):
        out.append(TRUST_WRONG(want=want, serves="serves" if served_pem else "will serve"))
    return out


def containerd(cf, plan: Plan, host: str, anchor: bytes, manage: bool) -> list[Problem]:  # noqa: ANN001
    """containerd on one client (facts.read.Containerd) against the plan."""
    from regwizard.facts import runtimes

    cfg, path = cf.config, runtimes.CONTAINERD_CONFIG
    if not cf.socket:
        return [CTRD_DOWN(host=host, socket=runtimes.CONTAINERD_SOCKET)]
    if cfg.cri_disabled:
        return [CTRD_CRI_OFF(host=host, path=path)]
    out = []
    fix = (
        "regwizard apply sets it to "
        + runtimes.CONTAINERD_CERTS_D
        + " and restarts containerd once"
        if manage
        else f"set manage_containerd_config = true for {host} in the plan, or add "
        f'{cfg.header} config_path = "{runtimes.CONTAINERD_CERTS_D}" and restart containerd'
    )
    if not cfg.config_path:
        out.append(CTRD_NO_PATH(host=host, path=path, fix=fix))
    elif not cfg.hosts_dir:
        out.append(CTRD_PATHS(host=host, path=path, value=cfg.config_path, fix=fix))
    d = f"{cf.hosts_dir}/{plan.registry.address}"
    if anchor and cf.ca != anchor:
        out.append(CTRD_CA(dir=d, host=host, state="is missing" if cf.ca is None else "differs"))
    problem = runtimes.hosts_toml_names(cf.hosts_toml, plan.registry.address, f"{d}/ca.crt")
    if problem:
        out.append(CTRD_HOSTS(dir=d, problem=problem, host=host))
    return out


def podman(pf, plan: Plan, host: str, anchor: bytes, installed: bool = True) -> list[Problem]:  # noqa: ANN001
    """podman's certs.d on one client (facts.read.Podman) against the plan."""
    from regwizard.facts import certsd, runtimes

    if not installed:
        return [PODMAN_MISSING(host=host)]
    d = runtimes.podman_trust_dir(plan.registry.address)
    if pf.dir_exists and not any(n.endswith(".crt") for n in pf.files):
        return [PODMAN_EMPTY(dir=d, docker_dir=certsd.trust_dir(plan.registry.address), host=host)]
    if anchor and pf.ca != anchor:
        return [PODMAN_CA(dir=d, host=host, state="is missing" if pf.ca is None else "differs")]
    return []


# --------------------------------------------------------------------------- replicas

HTTP_SECRET_DIFFERS = _k(
    "http-secret-differs", "replicas", "fail",
    "the http secret of {host} differs from {primary}'s (sha256 {mine} vs {theirs})",
    "regwizard apply gives every registry host {primary}'s secret (the old config.yml is "
    "backed up) and restarts the registry",
    "an upload started on one replica and continued on another fails: blob upload invalid",
)  # fmt: skip
REPLICA_STORAGE_DIFFERS = _k(
    "replica-storage-differs", "replicas", "fail",
    "{host} stores in {mine}, {primary} in {theirs}: replicas must share one storage",
    "regwizard apply writes the plan's [storage] into every registry host's config.yml",
    "an image pushed through one replica is missing when pulled through another "
    "(manifest unknown)",
)  # fmt: skip
FILESYSTEM_ON_REPLICAS = _k(
    "filesystem-on-replicas", "replicas", "fail",
    "the storage driver is filesystem on {hosts}: each keeps its own disk, so they are "
    "not replicas of one registry",
    "set [storage] driver = \"s3\" with a bucket all of them reach, then regwizard apply",
    "a pull through one host misses what was pushed through another",
)  # fmt: skip


def secret_digest(secret: str) -> str:
    """A short SHA-256 of an http secret: enough to compare, never the secret."""
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def storage_identity(st: object) -> tuple[str, str, str, str]:
    """(driver, bucket, endpoint, rootdirectory) of a registry's storage facts."""
    params = getattr(st, "params", {}) or {}
    driver = getattr(st, "driver", "") or ""
    if driver == "filesystem":
        return (driver, "", "", getattr(st, "root", "") or "")
    return (
        driver,
        str(params.get("bucket", "")),
        str(params.get("regionendpoint", "")),
        str(params.get("rootdirectory", "")),
    )


def replicas(
    secrets: dict[str, str], storages: dict[str, tuple[str, str, str, str]], primary: str
) -> list[tuple[str, Problem]]:
    """Registry hosts that do not act as one: (host, problem). ``secrets``: host -> http
    secret ("" unknown); ``storages``: host -> storage_identity; ``primary`` first."""
    out: list[tuple[str, Problem]] = []
    mine = secrets.get(primary, "")
    for host, sec in secrets.items():
        if host != primary and sec and mine and sec != mine:
            out.append((host, HTTP_SECRET_DIFFERS(
                host=host, primary=primary, mine=secret_digest(sec), theirs=secret_digest(mine),
            )))  # fmt: skip
    fs = [h for h, st in storages.items() if st[0] == "filesystem"]
    if len(fs) > 1:
        out.append((fs[0], FILESYSTEM_ON_REPLICAS(hosts=", ".join(fs))))
    first = storages.get(primary)
    for host, st in storages.items():
        if host != primary and first is not None and st != first and host not in fs[1:]:
            out.append((host, REPLICA_STORAGE_DIFFERS(
                host=host, primary=primary, mine=_identity_text(st), theirs=_identity_text(first),
            )))  # fmt: skip
    return out


def _identity_text(st: tuple[str, str, str, str]) -> str:
    driver, bucket, endpoint, root = st
    if driver == "filesystem":
        return f"filesystem {root}"
    return f"{driver} bucket {bucket or '?'} at {endpoint or '?'}" + (f" /{root}" if root else "")


_BUCKET_PROBLEMS = {
    "no-such-bucket": S3_BUCKET_MISSING,
    "access-denied": S3_ACCESS_DENIED,
    "unreachable": S3_UNREACHABLE,
}


def bucket(status: BucketStatus, access_key: str = "", where: str = "") -> list[Problem]:
    """What a bucket probe (facts/s3.bucket_status) says is wrong; ``where`` names the host
    it was asked from (each replica asks for itself)."""
    if status.kind == "ok":
        return []
    known = _BUCKET_PROBLEMS.get(status.kind, S3_ERROR)
    return [
        known(
            bucket=status.bucket,
            endpoint=status.endpoint,
            access_key=access_key or "(none)",
            where=f" (asked from {where})" if where else "",
            evidence=status.evidence,
        )
    ]
