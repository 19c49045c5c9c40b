"""10. The registry answers over TLS as planned: ``GET /v2/`` -> 401 with Basic auth and
``Docker-Distribution-API-Version: registry/2.0``, over a connection verified against
the trust anchor, serving exactly the certificate on disk. Waiting is not a change."""

from __future__ import annotations

import time
from dataclasses import dataclass

from regwizard.diagnose import clean
from regwizard.facts.tls import Untrusted
from regwizard.steps.base import DOCKER_TIMEOUT, Change, Ctx, HostEntry, Step, Unchanged, explained
from regwizard.steps.certificate import tls_files
from regwizard.steps.trust import anchor

WAIT_SECONDS = 30


@dataclass(frozen=True)
class HealthChange(Change):
    pass


class Health(Step[HealthChange]):
    name = "health"
    title = "Registry answers over TLS"
    reads_only = True
    needs_registry = True

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | HealthChange:
        reg, target = ctx.plan.registry, ctx.target_of(e)
        try:
            status, headers, _ = ctx.net.request(reg.domain, target, reg.port, anchor(ctx), "/v2/")
        except Untrusted as ex:
            return HealthChange(f"the served certificate does not verify: {ex.reason}")
        except OSError as ex:
            return HealthChange(f"not answering yet: {clean(str(ex), 200)}")
        basic = "basic" in headers.get("www-authenticate", "").lower()
        if (
            status != 401
            or not basic
            or "registry/2.0" not in headers.get("docker-distribution-api-version", "")
        ):
            return HealthChange(f"GET /v2/ -> {status} (expected 401 with auth on)")
        disk = tls_files(ctx, e).cert
        served = ctx.net.served(reg.domain, target, reg.port)
        if disk and served.pem and _fingerprint(served.pem) != _fingerprint(disk):
            return HealthChange(f"it serves another certificate than {ctx.layout.cert_path}")
        return Unchanged(
            "GET /v2/ -> 401 with Docker-Distribution-API-Version: registry/2.0, serving "
            f"{ctx.layout.cert_path}"
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: HealthChange) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        last = change.detail
        while time.monotonic() < deadline:
            ctx.check_cancel()
            again = self.check(ctx, e)
            if isinstance(again, Unchanged):
                return again.detail
            last = again.detail
            time.sleep(0.1)  # a started registry listens within about 0.1 s
        logs = ""
        try:
            c = e.host.docker(DOCKER_TIMEOUT).containers.get(ctx.plan.registry.container)
            logs = c.logs(tail=15).decode(errors="replace")
        except Exception:  # noqa: BLE001
            pass
        raise explained(
            f"the registry does not answer correctly on {e.label} "
            f"({ctx.target_of(e)}:{ctx.plan.registry.port})",
            last,
            fix="check the container logs, the port and the certificate",
            evidence=clean(logs or last),
        )


def _fingerprint(pem: bytes) -> str:
    from regwizard import pki

    try:
        return pki.inspect_cert(pem).sha256
    except Exception:  # noqa: BLE001
        return ""
