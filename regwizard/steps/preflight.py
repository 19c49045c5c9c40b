"""1. Preflight: every host answers, can act as root, and runs Docker; the registry's
port is free and its storage has room. Reads only."""

from __future__ import annotations

import re

from regwizard.errors import RegwizardError
from regwizard.facts.registry import published_ports
from regwizard.steps.base import DOCKER_TIMEOUT, Change, Ctx, HostEntry, Step, StepError, Unchanged

MIN_FREE = 64 * 2**20


class Preflight(Step[Change]):
    name = "preflight"
    title = "Preflight"
    scope = "all"
    reads_only = True

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged:
        host = e.host
        facts = host.facts()
        e.facts = facts
        ctx.log(
            self.name,
            e,
            f"{facts.os or 'unknown OS'} {facts.arch}; Docker {facts.docker_version or '-'}; "
            f"{'root' if facts.is_root else ('sudo' if facts.sudo_ok else 'no root')}",
        )
        if not (facts.is_root or facts.sudo_ok):
            if e.conn.sudo:
                # sudo was asked for but failed: raise its own SudoFailed (wrong/missing
                # password, not in sudoers, not installed) instead of a generic message
                host.run(["true"])
            raise StepError(
                f"{e.label}: user {e.conn.user} is neither root nor allowed to sudo",
                "connect as root, or set sudo = true for a user in sudoers",
            )
        self._check_runtimes(e)
        if not e.needs_docker:
            return Unchanged(f"{', '.join(e.runtimes)}, {facts.arch}")
        if not facts.docker_version:
            # docker_error reads "HOST: why; fix: what to do" when the host could tell
            why, _, fix = (facts.docker_error or "no answer").partition("; fix: ")
            why = why.removeprefix(f"{e.label}: ")
            raise StepError(
                f"{e.label}: the Docker engine is unreachable ({why})",
                fix
                or "install Docker (apt-get install docker.io) and start it (systemctl start docker)",
            )
        if e.is_registry:
            self._check_port(ctx, e)
            self._check_space(ctx, e)
        return Unchanged(f"Docker {facts.docker_version}, {facts.arch}")

    @staticmethod
    def _check_runtimes(e: HostEntry) -> None:
        """The client runtimes the plan names are there (Docker is checked below)."""
        from regwizard.facts.runtimes import CONTAINERD_SOCKET

        if e.uses("containerd"):
            script = f"test -S {CONTAINERD_SOCKET} && command -v ctr >/dev/null"
            if e.host.run(["sh", "-c", script], check=False, timeout=15).rc != 0:
                raise StepError(
                    f"{e.label}: no containerd answers at {CONTAINERD_SOCKET} (or ctr is missing)",
                    "start containerd on it (systemctl start containerd; apt-get install "
                    'containerd), or remove "containerd" from its runtimes',
                )
        if e.uses("podman"):
            if e.host.run(["sh", "-c", "command -v podman"], check=False, timeout=15).rc != 0:
                raise StepError(
                    f"{e.label}: podman is not installed",
                    'install it (apt-get install podman), or remove "podman" from its runtimes',
                )

    def _check_port(self, ctx: Ctx, e: HostEntry) -> None:
        reg = ctx.plan.registry
        running = e.host.docker(DOCKER_TIMEOUT).containers.list()
        ours = False
        for c in running:
            if reg.port in {p for ps in published_ports(c.attrs).values() for p in ps}:
                if c.name != reg.container:
                    raise StepError(
                        f"{e.label}: port {reg.port} is held by container {c.name!r}",
                        f"stop it (docker stop {c.name}) or choose another port in the plan",
                    )
                ours = True
        if ours:
            return  # docker-proxy listens for our own container
        r = e.host.run(["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"], check=False)
        hexport = f":{reg.port:04X}"
        for line in r.stdout.decode(errors="replace").splitlines()[1:]:
            parts = line.split()
            if len(parts) > 3 and parts[1].endswith(hexport) and parts[3] == "0A":
                raise StepError(
                    f"{e.label}: port {reg.port} is already in use by "
                    f"{self._port_holder(e, reg.port) or 'another process'}",
                    f"stop it (ss -ltnp 'sport = :{reg.port}') or choose another port in the plan",
                )

    @staticmethod
    def _port_holder(e: HostEntry, port: int) -> str:
        """``process NAME (pid N)`` listening on the port, from ss -ltnp; "" if unknown."""
        try:
            r = e.host.run(["ss", "-ltnp", f"sport = :{port}"], check=False, timeout=15)
        except RegwizardError:
            return ""
        m = re.search(r'users:\(\("([^"]+)",pid=(\d+)', r.stdout.decode(errors="replace"))
        return f"process {m.group(1)!r} (pid {m.group(2)})" if m else ""

    def _check_space(self, ctx: Ctx, e: HostEntry) -> None:
        storage = ctx.plan.registry.storage
        free = e.host.free_bytes(storage)
        if free is not None:
            ctx.log(self.name, e, f"free at {storage}: {free // 2**20} MiB")
            if free < MIN_FREE:
                raise StepError(
                    f"{e.label}: only {free // 2**20} MiB free at {storage}",
                    "free some space or choose another storage path",
                )
