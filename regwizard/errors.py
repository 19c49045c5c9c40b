"""User-facing errors: one clear message naming the cause and the fix."""

from __future__ import annotations


class RegwizardError(Exception):
    """An error a person can act on. Never shown with a traceback."""

    def __init__(self, cause: str, fix: str = "", evidence: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix
        self.evidence = evidence

    def __str__(self) -> str:
        text = self.cause
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class PlanError(RegwizardError):
    """The plan file or a wizard field is invalid."""

    def __init__(self, field: str, message: str, fix: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message, fix)
        self.field = field
        self.message = message


class HostKeyUnknown(RegwizardError):
    """The SSH host key is not known yet; it must be shown and confirmed."""

    def __init__(self, host: str, fingerprint: str, key_type: str) -> None:
        super().__init__(
            f"{host}: unknown SSH host key {key_type} {fingerprint}",
            f"check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), "
            f"then rerun with --accept-host-key {fingerprint}",
        )
        self.host = host
        self.fingerprint = fingerprint
        self.key_type = key_type


class HostKeyChanged(RegwizardError):
    """The host key differs from the known or pinned one. Never bypassable."""

    def __init__(self, host: str, expected: str, got: str) -> None:
        super().__init__(
            f"{host}: SSH host key CHANGED (expected {expected}, got {got}); refusing to connect",
            "if the host was really reinstalled, remove its old line from ~/.ssh/known_hosts "
            f"(ssh-keygen -R '{host}'; for a port other than 22 the entry is '[host]:port') "
            "or update host_key in the plan; otherwise suspect an attack",
        )
        self.host = host
        self.expected = expected
        self.got = got


class Cancelled(RegwizardError):
    def __init__(self) -> None:
        super().__init__("cancelled by the user", "rerun when ready; completed steps are kept")


# --- hosts (regwizard/hosts.py) -------------------------------------------------------


class ConnectFailed(RegwizardError):
    """The SSH connection could not be made: network, handshake or lost connection."""


class AuthFailed(ConnectFailed):
    """The SSH server refused every credential we tried."""


class CommandFailed(RegwizardError):
    """A command on a host exited non-zero. ``command`` never contains a secret."""

    def __init__(self, host: str, command: str, rc: int, stderr: str = "") -> None:
        tail = stderr.strip().splitlines()
        last = tail[-1].strip() if tail else ""
        shown = command if len(command) <= 160 else command[:157] + "..."
        super().__init__(
            f"{host}: `{shown}` failed (exit {rc})" + (f": {last}" if last else ""),
            "read the command's error output, fix the cause on the host, then rerun",
            "\n".join(tail[-20:]),
        )
        self.host = host
        self.command = command
        self.rc = rc
        self.stderr = stderr


class CommandTimeout(RegwizardError):
    """A command on a host did not finish in time; it was abandoned."""

    def __init__(self, host: str, program: str, timeout: float) -> None:
        super().__init__(
            f"{host}: `{program}` did not finish within {timeout:g}s",
            "check that the host is responsive (load, disk, network) and rerun",
        )
        self.host = host
        self.program = program
        self.timeout = timeout


class SudoFailed(RegwizardError):
    """sudo refused: wrong or missing password, not allowed, or not installed."""


class DockerUnavailable(RegwizardError):
    """The Docker engine on a host cannot be reached."""


class LockBusy(RegwizardError):
    """Another regwizard run holds a host's run lock (Host.run_lock) and kept it too long."""

    def __init__(self, host: str, name: str, holder: str, waited: float, path: str = "") -> None:
        who = holder or "a run that has not named itself yet"
        super().__init__(
            f"{host}: another regwizard run is working on this host: {who} "
            f"(its {name!r} lock was still held after waiting {waited:.0f}s)",
            "wait for that run to finish, then rerun. If no such run exists any more, "
            "remove nothing: the lock belongs to that run's process and frees itself when "
            "the process ends (at once when it is killed; after a dropped SSH connection, "
            "when the host's sshd notices)",
            f"lock file on the host: {path} (`fuser -v {path}` there shows its process)"
            if path
            else "",
        )
        self.host = host
        self.name = name
        self.holder = holder
        self.waited = waited
        self.path = path
