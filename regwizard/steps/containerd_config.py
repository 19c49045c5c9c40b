"""5. containerd's CRI reads the registry's hosts.toml: ``config_path`` is set in
/etc/containerd/config.toml (the table depends on its version), to ONE directory.

Changing config.toml is allowed only where the plan says so
(``manage_containerd_config = true`` on that client): the file is backed up first and
containerd is restarted, only on the run that changed the file. A containerd whose CRI
plugin is disabled (the one dockerd uses for itself) is not a Kubernetes runtime."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from regwizard.diffs import redact
from regwizard.events import FileDiff
from regwizard.facts import read, runtimes
from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, Unchanged, backup

RESTART = (
    "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then "
    "exec systemctl restart containerd; "
    "elif command -v service >/dev/null 2>&1; then exec service containerd restart; "
    "else echo 'no systemctl or service to restart containerd with' >&2; exit 3; fi"
)


def containerd_facts(ctx: Ctx, e: HostEntry) -> read.Containerd:
    return ctx.fact("containerd", e, lambda: read.containerd(e.host, ctx.plan.registry.address))


@dataclass(frozen=True)
class ContainerdConfigChange(Change):
    text: str = ""  # the whole new config.toml


class ContainerdConfig(Step[ContainerdConfigChange]):
    name = "containerd-config"
    title = "containerd reads certs.d"
    scope = "clients"
    runtime = "containerd"

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        cfg = runtimes.ContainerdConfig(True, 2)
        return (
            f"# in {runtimes.CONTAINERD_CONFIG}: {cfg.header} "
            f'config_path = "{runtimes.CONTAINERD_CERTS_D}"',
            "systemctl restart containerd",
        )

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | ContainerdConfigChange:
        f = containerd_facts(ctx, e)
        cfg = f.config
        where = f"{e.label}: {runtimes.CONTAINERD_CONFIG}"
        if cfg.error:
            raise StepError(f"{where} cannot be read: {cfg.error}", "fix the file, then rerun")
        if cfg.cri_disabled:
            raise StepError(
                f"{where} disables the CRI plugin: this containerd is not a Kubernetes runtime "
                "(it serves dockerd)",
                f'remove "containerd" from runtimes for {e.label}: its Docker trust is enough',
            )
        if cfg.hosts_dir:
            return Unchanged(f'config_path = "{cfg.hosts_dir}"')
        why = (
            f"config_path lists several directories ({cfg.config_path}), which containerd's "
            "transfer service mishandles"
            if cfg.dirs
            else "config_path is not set: CRI reads no certs.d directory"
        )
        if cfg.conflicts:
            raise StepError(
                f"{where}: {why}, and its registry table sets {', '.join(cfg.conflicts)}: "
                "containerd refuses that next to config_path (its CRI plugin would not load)",
                f"move those settings into hosts.toml files under {runtimes.CONTAINERD_CERTS_D}"
                " (a directory per registry), remove them from config.toml, then rerun",
            )
        if not e.conn.manage_containerd_config:
            raise StepError(
                f"{where}: {why}",
                f"set manage_containerd_config = true for {e.label} in the plan (apply then "
                f"sets it and restarts containerd once), or add to that file: {cfg.header} "
                f'config_path = "{runtimes.CONTAINERD_CERTS_D}" and restart containerd',
            )
        text = runtimes.with_config_path(f.text, cfg, runtimes.CONTAINERD_CERTS_D)
        check = runtimes.containerd_config(text.encode(), 2 if cfg.version != 3 else 3)
        if check.hosts_dir != runtimes.CONTAINERD_CERTS_D:
            raise StepError(
                f"{where}: cannot set config_path safely in this file",
                f'add {cfg.header} config_path = "{runtimes.CONTAINERD_CERTS_D}" by hand',
            )
        cmds = (
            f"# in {runtimes.CONTAINERD_CONFIG}: {cfg.header} "
            f'config_path = "{runtimes.CONTAINERD_CERTS_D}"',
            "systemctl restart containerd",
        )
        diff = FileDiff(
            e.label,
            runtimes.CONTAINERD_CONFIG,
            redact(f.text) if f.text else None,
            redact(text),
            "containerd restarts once to read it",
        )
        return ContainerdConfigChange(
            f"{why}; set it and restart containerd", cmds, text, diffs=(diff,)
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: ContainerdConfigChange) -> str:
        path = runtimes.CONTAINERD_CONFIG
        e.host.makedirs("/etc/containerd", 0o755)
        saved = backup(ctx, e, path, self.name)
        # the file keeps its mode, owner and label: it may hold registry credentials (0600)
        e.host.replace_file(path, change.text.encode(), backup=saved)
        ctx.log(
            self.name, e, f"set config_path in {path}; restarting containerd (it read the file)"
        )
        r = e.host.run(["sh", "-c", RESTART], check=False, timeout=90)
        if r.rc != 0:
            raise StepError(
                f"{e.label}: containerd could not be restarted: "
                f"{r.stderr.decode(errors='replace').strip()[-200:]}",
                "restart containerd on that host (systemctl restart containerd), then rerun",
            )
        self._await_socket(ctx, e)
        ctx.forget(e)
        return f'config_path = "{runtimes.CONTAINERD_CERTS_D}"; containerd restarted'

    @staticmethod
    def _await_socket(ctx: Ctx, e: HostEntry) -> None:
        deadline = time.monotonic() + 30
        probe = shlex.join(["ctr", "--address", runtimes.CONTAINERD_SOCKET, "version"])
        while time.monotonic() < deadline:
            ctx.check_cancel()
            if e.host.run(["sh", "-c", probe + " >/dev/null 2>&1"], check=False).rc == 0:
                return
            time.sleep(0.3)
        raise StepError(
            f"{e.label}: containerd does not answer after its restart",
            "check it on the host (systemctl status containerd; journalctl -u containerd)",
        )
