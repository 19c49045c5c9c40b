"""Where a plan's files live: on the registry host, in the container, on each client.

One place for every path, so steps, doctor, adopt and the dry-run never spell one twice.

On the registry host, under ``config_dir`` (0700, root only)::

    certs/                    mounted read-only at /certs
      current -> GEN          the live pair; switched by one rename of this link
      GEN/DOMAIN.crt
      GEN/DOMAIN.key          0600
    auth/htpasswd             auth/ mounted read-only at /auth (the directory: a rewrite
                              by rename stays visible)
    registry/config.yml       0600; registry/ mounted read-only at /etc/distribution.
                              It holds the http secret, which docker inspect never shows.
    ca/ca.crt, ca/ca.key      local-CA mode: never mounted into the container
    upstream/ca.crt           a mirror's upstream CA (proxy_ca_file); upstream/ mounted
                              read-only at /upstream-ca, named by SSL_CERT_DIR
    restart-pending           a mirror's upstream login or the S3 secret key changed in
                              config.yml: the container step restarts the registry, then
                              removes it
    backups/                  every replaced key, certificate and file, root only
    maintenance               while `regwizard gc` holds the registry read-only (who, when);
                              one left behind means a gc was cut: apply restores read-write

Earlier versions kept ``certs/DOMAIN.crt|key``, ``certs/ca.key`` and ``http-secret``
directly; the steps move them into this layout (``legacy_*``).
"""

from __future__ import annotations

from dataclasses import dataclass

from regwizard.facts.certsd import trust_dir, trust_file
from regwizard.facts.registry import REGISTRY_DATA

C_CERTS = "/certs"
C_AUTH = "/auth"
C_CONFIG_DIR = "/etc/distribution"
C_CONFIG = f"{C_CONFIG_DIR}/config.yml"
C_DATA = REGISTRY_DATA
# a mirror's upstream CA. Go reads SSL_CERT_DIR instead of its default directories but
# still loads its default bundle file (/etc/ssl/certs/ca-certificates.crt): an image
# with system roots keeps them, one FROM scratch trusts this CA alone
C_UPSTREAM_CA = "/upstream-ca"
CURRENT = "current"


@dataclass(frozen=True)
class Layout:
    config_dir: str
    domain: str
    address: str

    # -- the registry host
    @property
    def certs_dir(self) -> str:
        return f"{self.config_dir}/certs"

    @property
    def current_link(self) -> str:
        return f"{self.certs_dir}/{CURRENT}"

    def generation_dir(self, gen: str) -> str:
        return f"{self.certs_dir}/{gen}"

    @property
    def cert_path(self) -> str:
        return f"{self.current_link}/{self.domain}.crt"

    @property
    def key_path(self) -> str:
        return f"{self.current_link}/{self.domain}.key"

    @property
    def ca_dir(self) -> str:
        return f"{self.config_dir}/ca"

    @property
    def ca_path(self) -> str:
        return f"{self.ca_dir}/ca.crt"

    @property
    def ca_key_path(self) -> str:
        return f"{self.ca_dir}/ca.key"

    @property
    def auth_dir(self) -> str:
        return f"{self.config_dir}/auth"

    @property
    def htpasswd_path(self) -> str:
        return f"{self.auth_dir}/htpasswd"

    @property
    def registry_dir(self) -> str:
        return f"{self.config_dir}/registry"

    @property
    def config_path(self) -> str:
        return f"{self.registry_dir}/config.yml"

    @property
    def upstream_dir(self) -> str:
        return f"{self.config_dir}/upstream"

    @property
    def upstream_ca_path(self) -> str:
        return f"{self.upstream_dir}/ca.crt"

    @property
    def restart_pending(self) -> str:
        return f"{self.config_dir}/restart-pending"

    @property
    def backups_dir(self) -> str:
        return f"{self.config_dir}/backups"

    @property
    def maintenance_marker(self) -> str:
        return f"{self.config_dir}/maintenance"

    # -- what earlier versions wrote
    @property
    def legacy_cert(self) -> str:
        return f"{self.certs_dir}/{self.domain}.crt"

    @property
    def legacy_key(self) -> str:
        return f"{self.certs_dir}/{self.domain}.key"

    @property
    def legacy_ca(self) -> str:
        return f"{self.certs_dir}/ca.crt"

    @property
    def legacy_ca_key(self) -> str:
        return f"{self.certs_dir}/ca.key"

    @property
    def legacy_secret(self) -> str:
        return f"{self.config_dir}/http-secret"

    # -- in the container
    @property
    def c_cert(self) -> str:
        return f"{C_CERTS}/{CURRENT}/{self.domain}.crt"

    @property
    def c_key(self) -> str:
        return f"{C_CERTS}/{CURRENT}/{self.domain}.key"

    @property
    def c_htpasswd(self) -> str:
        return f"{C_AUTH}/htpasswd"

    # -- every client
    @property
    def trust_dir(self) -> str:
        return trust_dir(self.address)

    @property
    def trust_file(self) -> str:
        return trust_file(self.address)


def layout(plan) -> Layout:  # noqa: ANN001 - plan.Plan (kept import-light)
    reg = plan.registry
    return Layout(reg.config_dir.rstrip("/") or "/", reg.domain, reg.address)
