"""Turn the errors Docker users see into a cause and a fix."""

from __future__ import annotations

import re

# (pattern in the error text, cause, fix); first match wins. Patterns are lower-case.
KNOWN: list[tuple[str, str, str]] = [
    (
        "legacy common name field",
        "the registry certificate has no subjectAltName (CN-only, as `openssl req -x509` makes it)",
        "reissue the certificate with SANs: rerun `regwizard apply`",
    ),
    (
        "certificate signed by unknown authority",
        "this Docker host does not trust the registry's certificate",
        "put the CA in /etc/docker/certs.d/<domain>[:port]/ca.crt (port only when not 443): "
        "rerun `regwizard apply`",
    ),
    (
        "doesn't contain any ip sans",
        "the certificate has no IP SAN for the address in use",
        "reissue the certificate with the IP in its SANs: rerun `regwizard apply`",
    ),
    (
        "certificate is valid for",
        "the certificate's SANs do not cover the name in use",
        "reissue the certificate for this name (domain / extra_sans): rerun `regwizard apply`",
    ),
    (
        "certificate has expired or is not yet valid",
        "the certificate expired, or the clocks differ",
        "check the clocks (date) on both hosts; rotate the certificate: rerun `regwizard apply`",
    ),
    (
        "server gave http response to https client",
        "the registry serves plain HTTP, clients expect TLS",
        "run the registry with REGISTRY_HTTP_TLS_*: rerun `regwizard apply`",
    ),
    (
        "no basic auth credentials",
        "not logged in (or the login is stored under another key: host vs host:port)",
        "docker login <domain>[:port] with the same spelling used in the image name",
    ),
    (
        "401 unauthorized",
        "the registry refused the credentials (wrong password, or a non-bcrypt htpasswd line)",
        "set the user's password again (regwizard user hash NAME) and rerun `regwizard apply`",
    ),
    (
        "unauthorized: authentication required",
        "the registry refused the credentials (wrong password, or a non-bcrypt htpasswd line)",
        "set the user's password again (regwizard user hash NAME) and rerun `regwizard apply`",
    ),
    (
        "no such host",
        "the registry name does not resolve on this Docker host",
        "add it to /etc/hosts (manage_hosts_file = true) or to DNS",
    ),
    (
        # the name is not in /etc/hosts and no DNS server answered ("lookup NAME on
        # 127.0.0.1:53: read udp ...: connection refused"): before "connection refused",
        # which would blame the registry's port
        "dial tcp: lookup ",
        "the registry name does not resolve on this Docker host (and no DNS server answered)",
        "add it to /etc/hosts (manage_hosts_file = true) or to DNS",
    ),
    (
        "connection refused",
        "nothing listens on the registry port",
        "check the registry container (docker ps, docker logs) and the published port",
    ),
    (
        "received unexpected http status: 500",
        "the registry failed to store data: storage not writable, or the disk is full",
        "check free space and permissions of the storage path on the registry host",
    ),
    (
        "no space left on device",
        "the disk is full",
        "free space on the registry host (df -h), then rerun",
    ),
    (
        "address already in use",
        "another process holds the registry port",
        "stop it, or choose another port in the plan",
    ),
    (
        "port is already allocated",
        "another container holds the registry port",
        "stop it (docker ps), or choose another port in the plan",
    ),
]


def explain(text: str) -> tuple[str, str] | None:
    low = text.lower()
    for pattern, cause, fix in KNOWN:
        if pattern in low:
            return cause, fix
    return None


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def clean(text: str, limit: int = 600) -> str:
    """One tidy evidence string: no ANSI, no control characters, bounded length."""
    text = _ANSI.sub("", text)
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in text)
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]
