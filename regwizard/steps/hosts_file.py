"""2. /etc/hosts: the registry's name maps to its IP on every host (names match without
regard to case). The Docker daemon resolves the name, so every Docker host needs it.

With replicas, the name maps to every registry host's address, one line each, on every
host, registry hosts included (one rule everywhere; Go's resolver returns them all and
its dialer tries them in turn, so a stopped replica is skipped). A host whose lines hold
exactly that set, in any order, is left as it is.

Go tries IPv4 addresses in the order the file lists them, so the order written decides
which replica a host uses while all are up: a registry host lists itself first, and the
clients take the list rotated by their place in the plan, so they spread over the
replicas instead of all using the first (`preferred`)."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from regwizard.events import FileDiff
from regwizard.facts import hostfile, read
from regwizard.plan import registry_addresses
from regwizard.steps.base import Change, Ctx, HostEntry, Step, Unchanged, backup

HOSTS = "/etc/hosts"


@dataclass(frozen=True)
class HostsFileChange(Change):
    text: str = ""  # the whole new file


def preferred(ctx: Ctx, e: HostEntry) -> list[str]:
    """The registry's addresses in the order ``e``'s /etc/hosts gets them: a registry host
    first itself, a client the list rotated by its index among the clients."""
    want = registry_addresses(ctx.plan)
    if len(want) < 2:
        return want
    if e.is_registry:
        own = e.conn.address if e.is_replica else ctx.plan.registry.ip
        if own in want:
            return [own, *(a for a in want if a != own)]
    clients = ctx.clients
    i = clients.index(e) % len(want) if e in clients else 0
    return want[i:] + want[:i]


def hosts_facts(ctx: Ctx, e: HostEntry) -> read.HostsFile:
    reg = ctx.plan.registry
    return ctx.fact("hosts-file", e, lambda: read.hosts_file(e.host, reg.domain, reg.ip))


class HostsFile(Step[HostsFileChange]):
    name = "hosts-file"
    title = "/etc/hosts entry"
    scope = "all"
    settles_names = True

    def targets(self, ctx: Ctx) -> list[HostEntry]:
        reg = ctx.plan.registry
        if not reg.manage_hosts_file or not reg.ip:
            return []
        return list(ctx.hosts)

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        reg = ctx.plan.registry
        return tuple(
            f"echo {shlex.quote(f'{ip} {reg.domain}')} >> {HOSTS}"
            for ip in registry_addresses(ctx.plan)
        )

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | HostsFileChange:
        from regwizard import problems

        reg = ctx.plan.registry
        want = registry_addresses(ctx.plan)
        ips = ", ".join(want)
        hf = hosts_facts(ctx, e)
        found = problems.hosts_file(hf, ctx.plan, e.label)
        if not found:
            if hf.entry.maps_to(reg.ip):
                return Unchanged(f"{reg.domain} -> {ips} already in {HOSTS}")
            return Unchanged(f"{reg.domain} already resolves to {reg.ip}")
        wrong = tuple(a for a in hf.entry.addresses if a not in want)
        if wrong:
            why = f"maps to {', '.join(wrong)}"
        elif hf.entry.present:
            why = f"maps to {', '.join(hf.entry.addresses)} only"
        else:
            why = "missing"
        text = hostfile.with_mapping(hf.text, reg.domain, preferred(ctx, e))
        return HostsFileChange(
            f"{reg.domain} {why}; want {ips}",
            self.script(ctx),
            text,
            diffs=(FileDiff(e.label, HOSTS, hf.text, text),),
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: HostsFileChange) -> str:
        reg = ctx.plan.registry
        saved = backup(ctx, e, HOSTS, self.name)
        # atomic (temp + rename) unless the file is itself a mount point (containers, the
        # lab's nodes): then in place, restored from the backup if that write fails
        e.host.replace_file(HOSTS, change.text.encode(), backup=saved)
        ctx.hosts_changed_at[e.key] = time.monotonic()
        return f"{reg.domain} -> {', '.join(preferred(ctx, e))}"
