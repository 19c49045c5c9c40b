"""Hosts: one object per machine, behind one interface.

CONTRACT (implemented in this module; used by steps/engine/UI):

    connect(conn: Connection, secrets: Secrets, *, cancel: threading.Event | None = None,
            timeout: float = 10.0) -> Host
        - conn.is_local -> LocalHost (subprocess + local Docker socket).
        - ~/.ssh/config (regwizard/sshconfig.py, SSHHost.route): HostName, Port, User,
          IdentityFile, ProxyCommand (paramiko.ProxyCommand), ProxyJump (a nested SSHHost
          for the jump, same host-key checks, then a direct-tcpip channel as the socket),
          HostKeyAlias (the known_hosts name). Plan values other than the defaults win.
        - else SSHHost: ONE paramiko Transport per host, reused for commands, SFTP and the
          Docker API. Auth by key (conn.key_file), agent, or password
          (secrets.ssh_passwords[conn.address]). Timeouts on connect, auth, every command.
        - Host keys: pinned conn.host_key must match, else HostKeyChanged. The pin is
          "SHA256:..." or a whole `ssh-keygen -lf` line ("256 SHA256:... root@h (ECDSA)"),
          whose type is then negotiated. A bare pin that the server's first key type does
          not match is tried against each other type the server offers (one extra
          handshake each, only on a mismatch); no key matching -> HostKeyChanged.
          Otherwise ~/.ssh/known_hosts (its key types are negotiated first): a different
          key -> HostKeyChanged (never bypassable); unknown -> HostKeyUnknown(fingerprint)
          unless a key of the host (any type, as for a bare pin) is in
          secrets.accepted_host_keys, in which case it is accepted and appended to
          ~/.ssh/known_hosts. Unknown keys are never added silently.
        - sudo (conn.sudo and user != root): commands run as
          ``sudo -k -S -p '' -- ARGV`` with secrets.sudo_passwords[conn.address] + "\\n"
          fed first on stdin; never on a command line. Wrong password -> RegwizardError.

    class Host:
        label: str                 # display name
        def run(argv: list[str], *, input: bytes | None = None, timeout: float = 60,
                check: bool = True, on_line: Callable[[str], None] | None = None) -> Result
            # argv is quoted with shlex.join for the remote shell: metacharacters never
            # reach a shell unquoted. Runs as root (directly or via sudo).
            # check=True and rc != 0 -> CommandFailed (a RegwizardError with rc/stderr).
        def read_file(path: str) -> bytes | None        # None when missing
        def write_file(path: str, data: bytes, mode: int = 0o644) -> None
            # atomic: temp file in the same dir + chmod + rename
        def write_in_place(path: str, data: bytes) -> None
            # truncate+write the same inode (for /etc/hosts, often a bind mount)
        def docker(timeout: float = 60) -> docker.DockerClient
            # SSH: the SDK's HTTP goes over this host's transport through
            # `docker system dial-stdio` (sudo'd when needed). Local: unix socket.
        def facts() -> HostFacts   # os, arch, docker version, is_root/sudo_ok, fingerprint
        def close() -> None

DETAILS AND ADDITIONS (same module):

    connect(..., known_hosts: str | None = None)   # default ~/.ssh/known_hosts (for tests)
    Result(rc: int, stdout: bytes, stderr: bytes)  # .ok, .text (stdout decoded)
    Host.run(..., as_root: bool = True)            # as_root=False: as the login user, no sudo
    Host.makedirs(path, mode=0o755) -> None        # mkdir -p; mode applies to a created leaf
    Host.exists(path) -> bool
    Host.backup(path) -> str | None                # copy to PATH.bak-YYYYmmdd-HHMMSS (mode kept)
    Host.replace_file(path, data, *, mode=0o644, backup=None, timeout=60) -> str
        # "renamed": temp file in the same dir with the old mode/owner, renamed over it;
        # "in place": path is a mount point (a bind-mounted /etc/hosts), same inode; a
        # write failing part-way is undone from `backup` (made by backup()) and raised
    Host.free_bytes(path) -> int                   # df on the nearest existing parent
    Host.run_lock(name="registry", *, holder=None, wait=120.0, on_wait=None, cancel=None,
                  timeout=30.0) -> RunLock          # a context manager; see its docstring
        # host-side flock (/run/lock/regwizard/NAME.lock): one run per machine however it
        # is named; freed on exit, or by itself when we die or the SSH session ends.
        # Busy: on_wait(holder note) once, wait, then LockBusy naming the holder.
    Host.facts(path: str | None = None)            # path given -> free_bytes filled
    Host.fingerprint / Host.key_type               # "" for LocalHost
    Host is a context manager (close() on exit).

    Errors (regwizard.errors): ConnectFailed (network/handshake/lost), AuthFailed
    (a ConnectFailed), HostKeyUnknown, HostKeyChanged, SudoFailed (wrong/missing password,
    not allowed, no sudo), CommandFailed (.rc/.command/.stderr), CommandTimeout,
    DockerUnavailable, LockBusy (.holder/.waited/.path), Cancelled. Secret values (Secrets.all_values()) are redacted from
    every message and every on_line line.

    sudo: the first root command probes once per host: ``sudo -k -n -- true`` (NOPASSWD ->
    ``sudo -n -- ARGV``, no password is fed), else ``sudo -k -S -p '' -- true`` with the
    password, so a wrong password fails fast and clearly instead of sudo eating the
    command's stdin as further password attempts.

    Commands are strings for the remote user's login shell (sh/bash/dash/zsh); csh/fish
    login shells are not supported. Over SSH each command runs as
    ``sh -c 'echo "regwizard-pid $$" >&2; exec "$@"' sh ARGV...`` (that stderr line is
    consumed, never shown; a command fed nothing gets ``</dev/null`` and no EOF): a
    command that times out or is cancelled is then killed with ``kill -TERM PID``
    (through sudo when commands go through sudo). OpenSSH ignores
    "signal" channel requests for root logins, and closing the channel alone leaves the
    process running. Locally the process group gets SIGTERM, then SIGKILL.

    write_file(): a symlink target is replaced, the link kept; a directory is an error;
    an existing file's owner is kept (chown --reference, best effort).

    docker(): SSH -> regwizard.dockerssh over `[sudo ...] docker system dial-stdio` exec
    channels of this host's transport (one pooled channel serves many API calls).
    Local -> the unix socket when root or when it is accessible; else a local
    `sudo ... docker system dial-stdio` process. The API version is negotiated
    (min(daemon, SDK default)). An unreachable engine -> DockerUnavailable, explained by
    running `docker version` on the host (not installed / not running / permission).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import errno
import getpass
import hashlib
import logging
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paramiko

from . import sshconfig
from .errors import (
    AuthFailed,
    Cancelled,
    CommandFailed,
    CommandTimeout,
    ConnectFailed,
    DockerUnavailable,
    HostKeyChanged,
    HostKeyUnknown,
    LockBusy,
    RegwizardError,
    SudoFailed,
)
from .events import HostFacts
from .plan import Connection, Secrets

if TYPE_CHECKING:
    import docker

__all__ = [
    "Host",
    "HostKeyPin",
    "LocalHost",
    "Result",
    "RunLock",
    "SSHHost",
    "connect",
    "fingerprint",
    "known_hosts_name",
    "normalize_fingerprint",
    "parse_host_key_pin",
    "run_holder",
]

# paramiko logs handshake failures at ERROR; with no handler configured Python would print
# them on stderr (through the TUI). We report errors ourselves.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

KEEPALIVE_SECONDS = 15
DOCKER_SOCKET = "/var/run/docker.sock"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"  # a standalone one (dockerd's is elsewhere)
_EXIT_GRACE = 2.0  # after the exit status: wait this long for output EOF (daemonized kids)
_MISSING = 100  # exit code our small sh snippets use for "path does not exist"

OnLine = Callable[[str], None]
_MAX_JUMPS = 4  # ProxyJump hosts in a row (a config loop ends here)


def _jump_text(hop: sshconfig.Jump) -> str:
    host = f"[{hop.host}]" if ":" in hop.host else hop.host
    return (f"{hop.user}@" if hop.user else "") + host + (f":{hop.port}" if hop.port else "")


# ---------------------------------------------------------------------------------------
# small helpers


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:<base64 without padding>`` of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def normalize_fingerprint(fp: str) -> str:
    """Accept ``SHA256:abc``, ``sha256:abc=``, a bare ``abc`` or a whole ``ssh-keygen -lf``
    line (``256 SHA256:abc root@host (ECDSA)``); return ``SHA256:abc``."""
    fp = fp.strip()
    if len(fp.split()) > 1:
        fp = next((w for w in fp.split() if w.upper().startswith("SHA256:")), fp)
    if ":" in fp:
        algo, _, rest = fp.partition(":")
        if algo.upper() == "SHA256":
            fp = rest
        else:
            return fp
    return "SHA256:" + fp.strip().rstrip("=")


# ssh-keygen -lf's type name (the last word, in parentheses) -> paramiko key families
_PIN_TYPES = {
    "ED25519": ("ssh-ed25519",),
    "ECDSA": ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"),
    "RSA": ("ssh-rsa",),
}
_PIN_LINE = re.compile(
    r"(?:(?P<bits>\d+)\s+)?(?P<fp>\S+)(?:\s+.*?)?(?:\s*\((?P<type>[A-Za-z0-9-]+)\))?",
    re.DOTALL,
)


@dataclass(frozen=True)
class HostKeyPin:
    """A pinned host key: ``SHA256:...`` and, from an ``ssh-keygen -lf`` line, its type."""

    fingerprint: str
    key_type: str = ""  # "ED25519" | "ECDSA" | "RSA"; "" = not said (any type may match)
    bits: int = 0

    @property
    def families(self) -> tuple[str, ...]:
        """Key families (see _key_family) to ask the server for, best first."""
        families = _PIN_TYPES.get(self.key_type, ())
        if self.key_type == "ECDSA" and self.bits:  # the curve is in the bits: ask for it first
            own = f"ecdsa-sha2-nistp{self.bits}"
            families = (own, *(f for f in families if f != own))
        return families


def parse_host_key_pin(text: str) -> HostKeyPin:
    """``SHA256:abc`` (any case, padding optional) or a whole ``ssh-keygen -lf`` line such
    as ``256 SHA256:abc root@host (ECDSA)``. An unsupported key type -> RegwizardError."""
    text = text.strip()
    m = _PIN_LINE.fullmatch(text)
    if m is None or not m["fp"].upper().startswith("SHA256:"):
        return HostKeyPin(normalize_fingerprint(text))
    key_type = (m["type"] or "").upper()
    if key_type and key_type not in _PIN_TYPES:
        raise RegwizardError(
            f"the pinned host key {m['fp']} is of type {key_type}, which regwizard "
            "cannot use for a host key",
            "pin the host's ED25519 (or ECDSA/RSA) key instead: "
            "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host",
        )
    return HostKeyPin(normalize_fingerprint(m["fp"]), key_type, int(m["bits"] or 0))


def known_hosts_name(address: str, port: int) -> str:
    """The name OpenSSH uses in known_hosts: ``addr`` for port 22, else ``[addr]:port``."""
    address = address.lower()
    return address if port == 22 else f"[{address}]:{port}"


def _pattern_matches(name: str, pattern: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            return paramiko.HostKeys.hash_host(name, pattern) == pattern
        except Exception:
            return False
    # OpenSSH patterns know only * and ?; brackets are literal ([host]:port).
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name, flags=re.IGNORECASE) is not None


def _names_match(name: str, patterns: list[str]) -> bool:
    matched = False
    for pat in patterns:
        negated = pat.startswith("!")
        if _pattern_matches(name, pat[1:] if negated else pat):
            if negated:
                return False
            matched = True
    return matched


def _known_keys(path: str, name: str) -> tuple[list[paramiko.PKey], list[paramiko.PKey]]:
    """(known keys, @revoked keys) for ``name`` in an OpenSSH known_hosts file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return [], []
    except OSError as e:
        raise RegwizardError(
            f"cannot read {path}: {e.strerror or e}",
            f"check the permissions of {path} (it should be yours, mode 600)",
        ) from None
    known: list[paramiko.PKey] = []
    revoked: list[paramiko.PKey] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker = ""
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            line = line.strip()
            if marker != "@revoked":
                continue  # @cert-authority: host certificates are not used here
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
        except Exception:
            continue
        if entry is None or entry.key is None or not _names_match(name, entry.hostnames):
            continue
        (revoked if marker else known).append(entry.key)
    return known, revoked


def _remember_host_key(path: str, name: str, key: paramiko.PKey) -> None:
    """Append ``name type base64`` to known_hosts (dir 0700 / file 0600 when created)."""
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
    line = f"{name} {key.get_name()} {key.get_base64()}\n".encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
    finally:
        os.close(fd)


def _same_key(a: paramiko.PKey, b: paramiko.PKey) -> bool:
    return a.asbytes() == b.asbytes()


def _key_family(algo: str) -> str:
    algo = algo.replace("-cert-v01@openssh.com", "")
    return "ssh-rsa" if algo in ("rsa-sha2-256", "rsa-sha2-512") else algo


class _Lines:
    """Split a byte stream into decoded lines for on_line."""

    def __init__(self, cb: OnLine | None) -> None:
        self.cb = cb
        self.buf = b""

    def feed(self, data: bytes) -> None:
        if self.cb is None:
            return
        if b"\n" not in data:  # (no re-splitting of a long partial line)
            self.buf += data
            return
        *lines, self.buf = (self.buf + data).split(b"\n")
        for line in lines:
            self.cb(line.rstrip(b"\r").decode(errors="replace"))

    def flush(self) -> None:
        if self.cb is not None and self.buf:
            self.cb(self.buf.rstrip(b"\r").decode(errors="replace"))
        self.buf = b""


def _start_writer(
    write: Callable[[bytes], Any], finish: Callable[[], Any], data: bytes
) -> threading.Thread | None:
    """Feed stdin in a thread (so a chatty command can't deadlock us), then send EOF."""

    def feed() -> None:
        try:
            if data:
                write(data)
        except Exception:
            pass  # the command exited without reading all of stdin
        finally:
            try:
                finish()
            except Exception:
                pass

    if not data:
        feed()
        return None
    thread = threading.Thread(target=feed, name="regwizard-stdin", daemon=True)
    thread.start()
    return thread


_PID_MARK = b"regwizard-pid "
_PID_SCRIPT = 'echo "regwizard-pid $$" >&2; exec "$@"'
# A command fed nothing reads /dev/null, so no EOF has to follow it (see _send_eof)
_PID_SCRIPT_NO_STDIN = _PID_SCRIPT + " </dev/null"


def _send_eof(chan: paramiko.Channel) -> None:
    """``chan.shutdown_write()`` without paramiko's race (paramiko#1115, #1705): it builds
    the EOF under the channel's lock but sends it after releasing it, so the transport
    thread can answer the server's CLOSE in between. OpenSSH then gets an EOF for a
    channel it has freed and drops the whole connection ("ieof packet referred to
    nonexistent channel"): every command in flight on that host fails. Seen on the lab
    with four doctor checks at once on one host, about one run in a hundred. Sent under
    the lock, our EOF always goes out before our CLOSE. (During a re-key the send waits
    for it, at most paramiko's clear_to_send_timeout, while the lock is held.)"""
    lock = getattr(chan, "lock", None)
    build = getattr(chan, "_send_eof", None)
    send = getattr(getattr(chan, "transport", None), "_send_user_message", None)
    if lock is None or build is None or send is None:  # another paramiko: its own EOF,
        chan.shutdown_write()  # racy, still beats none (a fed command waits for it)
        return
    with lock:
        if chan.closed or chan.eof_sent:
            return
        m = build()
        if m is not None:
            send(m)


class _PidSniffer:
    """Take our ``regwizard-pid N`` line out of the head of a stderr stream."""

    def __init__(self) -> None:
        self.pid = 0
        self._pending = b""
        self._done = False

    def feed(self, chunk: bytes) -> bytes:
        if self._done:
            return chunk
        self._pending += chunk
        buf = self._pending
        at = buf.find(_PID_MARK)
        while at > 0 and buf[at - 1 : at] != b"\n":  # must start a line
            at = buf.find(_PID_MARK, at + 1)
        if at >= 0:
            end = buf.find(b"\n", at)
            if end < 0:
                return b""
            try:
                self.pid = int(buf[at + len(_PID_MARK) : end])
            except ValueError:
                self.pid = 0
            self._done, self._pending = True, b""
            return buf[:at] + buf[end + 1 :]
        if len(buf) > 16384:  # shell noise and no marker: give up sniffing
            return self.flush()
        return b""

    def flush(self) -> bytes:
        self._done = True
        out, self._pending = self._pending, b""
        return out


_SUDO_WRONG = ("Sorry, try again", "incorrect password attempt", "no password was provided")
_SUDO_NOT_ALLOWED = ("not in the sudoers", "may not run sudo", "is not allowed to execute")


def _looks_like_sudo_refusal(res: Result) -> bool:
    err = res.stderr.decode(errors="replace")
    return res.rc == 1 and not res.stdout.strip() and any(s in err for s in _SUDO_WRONG)


# ---------------------------------------------------------------------------------------
# run lock (Host.run_lock)

_STARTED = time.time()  # ~ this process's start, for the default holder note
_LOCK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# Runs as root: $1 name, $2 holder note, $3 seconds to wait. The lock is fd 9 of this
# shell, which finally execs into `cat`: the lock lives exactly as long as our stdin
# stays open (EOF when we close it, die, or the SSH session ends). The note names the
# holder by its PID, and is believed only while that PID lives: a stale note (a killed
# run, or the new holder not done writing yet) never names the wrong run.
_LOCK_SCRIPT = r"""
name="$1"; note="$2"; wait="$3"
if ! command -v flock >/dev/null 2>&1; then echo NOFLOCK; exit 127; fi
case "$(flock --version 2>&1)" in
  *util-linux*) ;;
  *) echo "NOFLOCK $(flock --version 2>&1 | head -n 1)"; exit 127 ;;
esac
if [ -d /run/lock ]; then d=/run/lock/regwizard
elif [ -d /run ]; then d=/run/regwizard
else echo "neither /run/lock nor /run exists on this host" >&2; exit 1; fi
umask 077
mkdir -p -m 700 -- "$d" || exit 1
f="$d/$name.lock"; h="$d/$name.holder"
echo "PATH $f"
exec 9>>"$f" || exit 1
holder() {
  i=0
  while [ "$i" -lt 10 ]; do
    if [ -r "$h" ] && { IFS= read -r pid && IFS= read -r text; } 2>/dev/null <"$h" &&
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      printf '%s\n' "$text"; return
    fi
    sleep 0.1; i=$((i + 1))
  done
  echo
}
if ! flock -n 9; then
  printf 'BUSY %s\n' "$(holder)" || exit 1
  flock -w "$wait" 9 & w=$!
  trap 'kill "$w" 2>/dev/null; exit 143' TERM INT HUP
  if ! wait "$w"; then printf 'TIMEOUT %s\n' "$(holder)"; exit 75; fi
  trap - TERM INT HUP
fi
echo LOCKED || exit 1
printf '%s\n%s\n' "$$" "$note" >"$h.new" && mv -f -- "$h.new" "$h"
exec cat >/dev/null
"""


def run_holder(label: str = "") -> str:
    """A holder note for this process: ``node0 (root) pid 1234 started 2026-11-30 13:05:00
    UTC`` (``label`` replaces the host name)."""
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.geteuid())
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(_STARTED))
    return f"{label or socket.gethostname()} ({user}) pid {os.getpid()} started {when}"


class _Held:
    """A command left running with its stdin open (the holder of a run lock)."""

    def __init__(self) -> None:
        self._buf = b""
        self._eof = False
        self.stderr = bytearray()

    def _pump(self, wait: float) -> None:
        """Take in what is ready (waiting up to ``wait``); set _eof at stdout's end."""
        raise NotImplementedError

    def readline(self, deadline: float, cancelled: Callable[[], bool]) -> str | None:
        """The next stdout line; None at EOF. TimeoutError at ``deadline`` (monotonic)."""
        while b"\n" not in self._buf and not self._eof:
            if cancelled():
                raise Cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self._pump(min(0.1, left))
        if b"\n" not in self._buf:
            return None
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace")

    @property
    def alive(self) -> bool:
        raise NotImplementedError

    def release(self, timeout: float) -> None:
        """Close its stdin and wait (``timeout``) for it to end; kill it if it does not."""
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError


class RunLock:
    """Host.run_lock(): a context manager holding a host-side ``flock``."""

    def __init__(
        self,
        host: Host,
        name: str,
        *,
        holder: str | None,
        wait: float,
        on_wait: Callable[[str], None] | None,
        cancel: threading.Event | None,
        timeout: float,
    ) -> None:
        if not _LOCK_NAME.fullmatch(name):
            raise ValueError(f"bad lock name {name!r}")
        self.host = host
        self.name = name
        self.holder = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", holder or run_holder()).split())
        self.wait = max(0.0, wait)
        self.on_wait = on_wait
        self.cancel = cancel
        self.timeout = timeout
        self.path = ""  # the lock file on the host, once known
        self._held: _Held | None = None

    @property
    def held(self) -> bool:
        """Still held: False once released, or when the holder process or its SSH
        connection is gone (then another run may take the lock)."""
        return self._held is not None and self._held.alive

    def _cancelled(self) -> bool:
        return any(c is not None and c.is_set() for c in (self.cancel, self.host._cancel))

    def __enter__(self) -> RunLock:
        host = self.host
        if self._cancelled():
            raise Cancelled()
        argv = ["sh", "-c", _LOCK_SCRIPT, "sh", self.name, self.holder, f"{self.wait:.3f}"]
        full, prefix = host._wrap(argv, True)
        started = time.monotonic()
        held = host._start_held(full, prefix, self.timeout)
        busy: str | None = None  # the holder named when we found the lock busy
        deadline = started + self.timeout
        try:
            while True:
                try:
                    line = held.readline(deadline, self._cancelled)
                except TimeoutError:
                    if busy is None:
                        raise CommandTimeout(host.label, "flock", self.timeout) from None
                    raise self._busy(busy, started) from None
                if line is None:
                    raise self._failed(held)
                word, _, rest = line.partition(" ")
                if word == "LOCKED":
                    self._held = held
                    return self
                if word == "PATH":
                    self.path = rest
                elif word == "BUSY" and busy is None:
                    busy = host._redact(rest.strip())
                    if self.on_wait is not None:
                        self.on_wait(busy or "a run that has not named itself yet")
                    # the host gives up after `wait` (flock -w); this is a backstop
                    deadline = time.monotonic() + self.wait + self.timeout
                elif word == "TIMEOUT":
                    raise self._busy(host._redact(rest.strip()) or busy or "", started)
                elif word == "NOFLOCK":
                    raise self._no_flock(rest)
        except BaseException:
            held.kill()
            raise

    def _busy(self, holder: str, started: float) -> LockBusy:
        waited = time.monotonic() - started
        return LockBusy(self.host.label, self.name, holder, waited, self.path)

    def _no_flock(self, version: str) -> RegwizardError:
        label = self.host.label
        return RegwizardError(
            f"{label}: `flock` from util-linux is missing on the host"
            + (f" (found: {version}, which cannot wait with a timeout)" if version else ""),
            "install util-linux on the host (apt-get install util-linux; "
            "dnf install util-linux; on Alpine: apk add flock), then rerun",
        )

    def _failed(self, held: _Held) -> RegwizardError:
        err = self.host._redact(held.stderr.decode(errors="replace")).strip()
        last = err.splitlines()[-1] if err else "it ended without a word"
        return RegwizardError(
            f"{self.host.label}: cannot take the run lock {self.name!r} ({last})",
            "check that /run/lock (or /run) on the host is writable by root, then rerun",
            err,
        )

    def __exit__(self, *exc: object) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.release(min(self.timeout, 10.0))


# ---------------------------------------------------------------------------------------
# Host: everything that is the same for SSH and local


class Host:
    """One machine. Subclasses provide ``_exec`` (run an argv, raw) and docker plumbing."""

    fingerprint: str = ""
    key_type: str = ""

    def __init__(
        self,
        conn: Connection,
        secrets: Secrets,
        *,
        cancel: threading.Event | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.conn = conn
        self.secrets = secrets
        self.label = conn.name
        self._cancel = cancel
        self._timeout = timeout
        self._mode: str | None = None  # "direct" | "sudo" | "sudo-nopass"
        self._mode_failure: tuple[str, SudoFailed] | None = None
        self._mode_lock = threading.Lock()
        self._dockers: dict[float, docker.DockerClient] = {}
        self._docker_lock = threading.Lock()
        self._closed = False

    def watch_cancel(self, cancel: threading.Event | None) -> None:
        """Stop this host's long waits on ``cancel`` from now on (a connection opened
        before its run began: regwizard.preconnect)."""
        self._cancel = cancel

    # -- subclass hooks ----------------------------------------------------------------

    def _exec(
        self, argv: list[str], data: bytes, timeout: float, on_line: OnLine | None, program: str
    ) -> Result:
        raise NotImplementedError

    def _login_is_root(self) -> bool:
        raise NotImplementedError

    def _login_user(self) -> str:
        raise NotImplementedError

    def _make_docker(self, timeout: float) -> docker.DockerClient:
        raise NotImplementedError

    def _close_transport(self) -> None:
        pass

    def _start_held(self, argv: list[str], data: bytes, timeout: float) -> _Held:
        """Start ``argv`` with ``data`` fed first and stdin left open."""
        raise NotImplementedError

    # -- secrets / cancel ----------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for value in sorted(self.secrets.all_values(), key=len, reverse=True):
            text = text.replace(value, "********")
        return text

    def _redacting(self, on_line: OnLine | None) -> OnLine | None:
        if on_line is None:
            return None
        return lambda line: on_line(self._redact(line))

    def _check_cancel(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled()

    # -- sudo ----------------------------------------------------------------------------

    def _sudo_password(self) -> str:
        return self.secrets.sudo_passwords.get(self.conn.address, "")

    def _root_mode(self) -> str:
        with self._mode_lock:
            if self._mode is not None:
                return self._mode
            if self._mode_failure is not None:
                password, failure = self._mode_failure
                if password == self._sudo_password():
                    raise failure
            try:
                self._mode = self._detect_mode()
            except SudoFailed as e:
                self._mode_failure = (self._sudo_password(), e)
                raise
            return self._mode

    def _detect_mode(self) -> str:
        if self._login_is_root() or not self.conn.sudo:
            return "direct"
        user = self._login_user()
        probe = self._exec(["sudo", "-k", "-n", "--", "true"], b"", 30, None, "sudo")
        if probe.rc == 0:
            return "sudo-nopass"
        err = probe.stderr.decode(errors="replace")
        if probe.rc == 127 or "sudo: not found" in err or "command not found" in err:
            raise SudoFailed(
                f"{self.label}: sudo is not installed",
                "install sudo on the host (apt-get install sudo), or connect as root",
            )
        password = self._sudo_password()
        if not password:
            if any(s in err for s in _SUDO_NOT_ALLOWED):
                raise self._sudo_not_allowed(user, err)
            raise SudoFailed(
                f"sudo on {self.label} needs a password for {user}",
                "enter the sudo password for this host "
                f"(or allow {user} to use sudo without a password)",
            )
        res = self._exec(
            ["sudo", "-k", "-S", "-p", "", "--", "true"],
            (password + "\n").encode(),
            30,
            None,
            "sudo",
        )
        if res.rc == 0:
            return "sudo"
        err = res.stderr.decode(errors="replace")
        if any(s in err for s in _SUDO_NOT_ALLOWED):
            raise self._sudo_not_allowed(user, err)
        raise self._sudo_refused(err)

    def _sudo_refused(self, err: str = "") -> SudoFailed:
        return SudoFailed(
            f"sudo on {self.label} refused the password",
            f"check the sudo password for {self._login_user()} on {self.label} "
            "(usually that user's login password) and enter it again",
            self._redact("\n".join(err.strip().splitlines()[-5:])),
        )

    def _sudo_not_allowed(self, user: str, err: str) -> SudoFailed:
        return SudoFailed(
            f"sudo on {self.label}: {user} is not allowed to run commands as root",
            f"add {user} to the sudo group on the host (usermod -aG sudo {user}), "
            "or connect as root",
            self._redact("\n".join(err.strip().splitlines()[-5:])),
        )

    def _wrap(self, argv: list[str], as_root: bool) -> tuple[list[str], bytes]:
        """(argv to execute, bytes to feed before stdin)."""
        if not as_root:
            return argv, b""
        mode = self._root_mode()
        if mode == "sudo":
            return ["sudo", "-k", "-S", "-p", "", "--", *argv], (
                self._sudo_password() + "\n"
            ).encode()
        if mode == "sudo-nopass":
            return ["sudo", "-n", "--", *argv], b""
        return argv, b""

    # -- commands ------------------------------------------------------------------------

    def run(
        self,
        argv: list[str],
        *,
        input: bytes | None = None,
        timeout: float = 60,
        check: bool = True,
        on_line: OnLine | None = None,
        as_root: bool = True,
    ) -> Result:
        return self._run(
            argv, input=input, timeout=timeout, check=check, on_line=on_line, as_root=as_root
        )

    def _run(
        self,
        argv: list[str],
        *,
        input: bytes | None = None,
        timeout: float = 60,
        check: bool = True,
        on_line: OnLine | None = None,
        as_root: bool = True,
        what: str | None = None,
    ) -> Result:
        """``what``: how messages name the command (default: argv[0] / the whole argv)."""
        if not argv:
            raise ValueError("run() needs a non-empty argv")
        argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in argv]
        if isinstance(input, str):
            input = input.encode()
        self._check_cancel()
        full, prefix = self._wrap(argv, as_root)
        self._check_cancel()
        res = self._exec(
            full,
            prefix + (input or b""),
            timeout,
            self._redacting(on_line),
            self._redact(what or argv[0]),
        )
        if prefix and _looks_like_sudo_refusal(res):
            raise self._sudo_refused(res.stderr.decode(errors="replace"))
        if check and res.rc != 0:
            raise self._failed(what or shlex.join(argv), res)
        return res

    def _failed(self, what: str, res: Result) -> CommandFailed:
        return CommandFailed(
            self.label,
            self._redact(what),
            res.rc,
            self._redact(res.stderr.decode(errors="replace")),
        )

    def _sh(self, script: str, *args: str, what: str, **kw: Any) -> Result:
        """``sh -c SCRIPT sh ARGS...``: paths travel as positional args, never as code."""
        return self._run(["sh", "-c", script, "sh", *args], what=what, **kw)

    def read_file(self, path: str, *, timeout: float = 60) -> bytes | None:
        what = f"cat -- {shlex.quote(path)}"
        script = f'[ -e "$1" ] || exit {_MISSING}; exec cat -- "$1"'
        res = self._sh(script, path, what=what, check=False, timeout=timeout)
        if res.rc == _MISSING:
            return None
        if res.rc != 0:
            raise self._failed(what, res)
        return res.stdout

    # Both writers first receive the whole stdin into a temp file and check its size:
    # when regwizard dies or the SSH connection drops mid-transfer, `cat` just sees EOF
    # and exits 0, so without the check a truncated (even empty) file would be committed.
    _RECEIVE = (
        'cat > "$t" || { rc=$?; rm -f -- "$t"; exit "$rc"; }\n'
        'n=$(wc -c < "$t")\n'
        'if [ "$n" -ne "$want" ]; then rm -f -- "$t"; '
        'echo "$1: received $n of $want bytes (connection cut?); left unchanged" >&2; exit 1; fi\n'
    )

    def write_file(self, path: str, data: bytes, mode: int = 0o644, *, timeout: float = 60) -> None:
        script = (
            "umask 077\n"
            'p="$1"; want="$4"\n'
            # a symlink keeps pointing where it did: replace its target, not the link
            'if [ -L "$p" ]; then p=$(readlink -f -- "$p") || exit 1; fi\n'
            'if [ -d "$p" ]; then echo "$1: is a directory" >&2; exit 1; fi\n'
            't="$p.regwizard-tmp-$2"\n' + self._RECEIVE + 'chmod "$3" -- "$t" && '
            '{ [ ! -e "$p" ] || chown --reference="$p" -- "$t" 2>/dev/null || :; } && '
            'mv -f -- "$t" "$p" && exit 0\n'
            "rc=$?\n"
            'rm -f -- "$t"\n'
            'exit "$rc"\n'
        )
        mode_text = format(mode & 0o7777, "o")
        self._sh(
            script,
            path,
            os.urandom(6).hex(),
            mode_text,
            str(len(data)),
            what=f"write {shlex.quote(path)} (mode {mode_text}, atomic)",
            input=data,
            timeout=timeout,
        )

    def write_in_place(self, path: str, data: bytes, *, timeout: float = 60) -> None:
        # same inode (a bind-mounted /etc/hosts cannot be renamed over); the data is
        # received completely into a private temp file before the target is touched
        script = (
            "umask 077\n"
            'want="$2"\n'
            "t=$(mktemp) || exit 1\n" + self._RECEIVE + 'cat -- "$t" > "$1"\n'
            "rc=$?\n"
            'rm -f -- "$t"\n'
            'exit "$rc"\n'
        )
        self._sh(
            script,
            path,
            str(len(data)),
            what=f"cat > {shlex.quote(path)}",
            input=data,
            timeout=timeout,
        )

    # Is the target a mount point (a single bind-mounted file, as /etc/hosts in Docker
    # containers)? rename() over it fails with EBUSY, and a rename elsewhere would leave
    # the mount showing the old inode. /proc/self/mountinfo lists every mount point
    # (octal-escaped) in our own mount namespace: st_dev or `stat -c %m` miss a bind
    # mount from the same filesystem, and busybox's `mountpoint` refuses files.
    _IS_MOUNT = (
        'is_mount() { [ -r /proc/self/mountinfo ] && P="$1" LC_ALL=C awk \'\n'
        "function unoct(s,  o, i, c) {\n"
        '  o = ""\n'
        '  while ((i = index(s, "\\\\")) > 0) {\n'
        "    o = o substr(s, 1, i - 1); c = substr(s, i + 1, 3)\n"
        "    if (c ~ /^[0-7][0-7][0-7]$/) {\n"
        '      o = o sprintf("%c", substr(c, 1, 1) * 64 + substr(c, 2, 1) * 8 + substr(c, 3, 1))\n'
        "      s = substr(s, i + 4)\n"
        '    } else { o = o "\\\\"; s = substr(s, i + 1) }\n'
        "  }\n"
        "  return o s\n"
        "}\n"
        'unoct($5) == ENVIRON["P"] { found = 1 } END { exit !found }\n'
        "' /proc/self/mountinfo; }\n"
    )
    _REPLACED_IN_PLACE_FAILED = 101  # in-place write failed, nothing to restore from
    _RESTORED = 102  # in-place write failed, the backup was put back
    _RESTORE_FAILED = 103  # in-place write failed, and so did putting the backup back

    def replace_file(
        self,
        path: str,
        data: bytes,
        *,
        mode: int = 0o644,
        backup: str | None = None,
        timeout: float = 60,
    ) -> str:
        """Replace ``path`` atomically; return "renamed" or "in place".

        A temp file in the same directory gets the old file's mode and owner (``mode``
        and root for a new file), then is renamed over the old one. Only when ``path`` is
        itself a mount point (a single bind-mounted file) is it written in place (same
        inode); if that write fails part-way, ``backup`` (a copy the caller made with
        backup()) is copied back and RegwizardError says so. A symlink keeps pointing
        where it did: its target is replaced. The data is received whole before anything
        is touched.
        """
        script = (
            "umask 077\n"
            'p="$1"; want="$3"; bak="$5"\n'
            'if [ -L "$p" ]; then p=$(readlink -f -- "$p") || exit 1; fi\n'
            'if [ -d "$p" ]; then echo "$1: is a directory" >&2; exit 1; fi\n'
            't="$p.regwizard-tmp-$2"\n'
            + self._RECEIVE
            + self._IS_MOUNT
            + 'if [ -e "$p" ] && is_mount "$(readlink -f -- "$p")"; then\n'
            "  inplace=1\n"
            "else\n"
            "  inplace=\n"
            '  if [ -e "$p" ]; then\n'
            '    m=$(stat -c %a -- "$p") && o=$(stat -c %u:%g -- "$p") || '
            '{ rm -f -- "$t"; exit 1; }\n'
            '  else m="$4"; o=; fi\n'
            '  chmod "$m" -- "$t" && { [ -z "$o" ] || chown "$o" -- "$t"; } || '
            '{ rc=$?; rm -f -- "$t"; exit "$rc"; }\n'
            # SELinux: a new file in /etc would get etc_t, not the old file's label
            '  if [ -e "$p" ] && [ -e /sys/fs/selinux/enforce ]; then '
            'chcon --reference="$p" -- "$t" 2>/dev/null || :; fi\n'
            '  if err=$(LC_ALL=C mv -f -- "$t" "$p" 2>&1); then echo renamed; exit 0; fi\n'
            # EBUSY: a mount point after all (mountinfo unreadable, or another namespace)
            '  case "$err" in *[Bb]usy*) inplace=1 ;; '
            '*) echo "$err" >&2; rm -f -- "$t"; exit 1 ;; esac\n'
            "fi\n"
            'if cat -- "$t" > "$p"; then rm -f -- "$t"; echo "in place"; exit 0; fi\n'
            'rm -f -- "$t"\n'
            f'[ -n "$bak" ] || exit {self._REPLACED_IN_PLACE_FAILED}\n'
            f'cat -- "$bak" > "$p" && exit {self._RESTORED}\n'
            f"exit {self._RESTORE_FAILED}\n"
        )
        what = f"replace {shlex.quote(path)}"
        res = self._sh(
            script,
            path,
            os.urandom(6).hex(),
            str(len(data)),
            format(mode & 0o7777, "o"),
            backup or "",
            what=what,
            input=data,
            timeout=timeout,
            check=False,
        )
        if res.rc == 0:
            return "renamed" if res.text.strip() == "renamed" else "in place"
        err = self._redact(res.stderr.decode(errors="replace")).strip()
        first = f"{self.label}: writing {path} in place (it is a mount point) failed part-way"
        if res.rc == self._RESTORED:
            raise RegwizardError(
                f"{first}; it was restored from {backup}",
                "fix the cause on the host (disk space, read-only mount), then rerun",
                err,
            )
        if res.rc == self._RESTORE_FAILED:
            raise RegwizardError(
                f"{first}, and restoring it from {backup} failed too: {path} may be damaged",
                f"restore it by hand on the host (cat {shlex.quote(backup or '')} > "
                f"{shlex.quote(path)}) after fixing the cause (disk space, read-only mount)",
                err,
            )
        if res.rc == self._REPLACED_IN_PLACE_FAILED:
            raise RegwizardError(
                f"{first}, and no backup was made: {path} may be incomplete",
                f"check {path} on the host and fix it by hand, then rerun",
                err,
            )
        raise self._failed(what, res)

    def run_lock(
        self,
        name: str = "registry",
        *,
        holder: str | None = None,
        wait: float = 120.0,
        on_wait: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        timeout: float = 30.0,
    ) -> RunLock:
        """``with host.run_lock("registry", holder=...):`` -- one regwizard run at a time.

        A host-side ``flock`` on /run/lock/regwizard/NAME.lock (/run/regwizard without
        /run/lock), held by a process on the host whose stdin we keep open: it is freed
        when the block ends, and by itself when we die or the SSH connection drops. So
        every run on the same machine contends, however the machine was named. Busy:
        ``on_wait(holder note)`` once, then up to ``wait`` seconds (``cancel`` or the
        host's cancel -> Cancelled), then LockBusy naming the holder. ``holder`` (default
        run_holder()) is stored next to the lock (root-only) for others to read; it is
        not secret (it is on the host's command line). Not re-entrant. No util-linux
        flock on the host -> RegwizardError.
        """
        return RunLock(
            self,
            name,
            holder=holder,
            wait=wait,
            on_wait=on_wait,
            cancel=cancel,
            timeout=timeout,
        )

    def makedirs(self, path: str, mode: int = 0o755, *, timeout: float = 60) -> None:
        self.run(["mkdir", "-p", "-m", format(mode & 0o7777, "o"), "--", path], timeout=timeout)

    def exists(self, path: str, *, timeout: float = 60) -> bool:
        return self.run(["test", "-e", path], check=False, timeout=timeout).rc == 0

    def backup(self, path: str, *, timeout: float = 120) -> str | None:
        target = f"{path}.bak-{time.strftime('%Y%m%d-%H%M%S')}"
        what = f"cp -p -- {shlex.quote(path)} {shlex.quote(target)}"
        script = (
            f'[ -e "$1" ] || exit {_MISSING}\n'
            'b="$2"; n=1\n'
            'while [ -e "$b" ]; do b="$2.$n"; n=$((n+1)); done\n'
            'if [ -d "$1" ]; then cp -a -- "$1" "$b"; else cp -p -- "$1" "$b"; fi && '
            'printf %s "$b"\n'
        )
        res = self._sh(script, path, target, what=what, check=False, timeout=timeout)
        if res.rc == _MISSING:
            return None
        if res.rc != 0:
            raise self._failed(what, res)
        return res.stdout.decode()

    def free_bytes(self, path: str, *, timeout: float = 30) -> int:
        what = f"df -Pk {shlex.quote(path)}"
        script = (
            'p="$1"\n'
            'while [ ! -e "$p" ]; do q=$(dirname -- "$p"); [ "$q" = "$p" ] && break; p="$q"; done\n'
            'exec df -Pk -- "$p"\n'
        )
        res = self._sh(script, path, what=what, timeout=timeout, as_root=False)
        try:
            return int(res.text.strip().splitlines()[-1].split()[3]) * 1024
        except (IndexError, ValueError):
            raise RegwizardError(
                f"{self.label}: cannot read free space for {path} from df",
                "check that df works on the host",
                self._redact(res.text[-500:]),
            ) from None

    # -- docker --------------------------------------------------------------------------

    def docker(self, timeout: float = 60) -> docker.DockerClient:
        self._check_cancel()
        with self._docker_lock:
            client = self._dockers.get(timeout)
            if client is not None:
                return client
            try:
                client = self._make_docker(timeout)
            except RegwizardError:
                raise
            except Exception as e:
                raise self._docker_unavailable(e) from None
            self._dockers[timeout] = client
            return client

    def _docker_unavailable(self, exc: BaseException) -> RegwizardError:
        """Explain why the Docker API is unreachable, by asking the docker CLI."""
        detail = self._redact(str(exc))[-300:]
        try:
            res = self.run(
                ["docker", "version", "--format", "{{.Server.Version}}"], check=False, timeout=30
            )
        except RegwizardError as e:
            return e
        err = self._redact(res.stderr.decode(errors="replace")).strip()
        low = err.lower()
        if res.rc == 127 or "not found" in low:
            return DockerUnavailable(
                f"{self.label}: Docker is not installed",
                "install Docker Engine on the host (apt-get install docker.io, "
                "or docker-ce from download.docker.com)",
                err,
            )
        if "permission denied" in low:
            return DockerUnavailable(
                f"{self.label}: {self._login_user()} may not use the Docker socket",
                "turn on sudo for this host, or connect as root "
                f"(or add {self._login_user()} to the docker group)",
                err,
            )
        if "cannot connect to the docker daemon" in low or "is the docker daemon running" in low:
            return DockerUnavailable(
                f"{self.label}: the Docker daemon is not running",
                "start it on the host (systemctl enable --now docker) and rerun",
                err,
            )
        if res.rc == 0:
            return DockerUnavailable(
                f"{self.label}: Docker {res.text.strip()} runs, but its API is not reachable "
                f"through `docker system dial-stdio` ({detail})",
                "upgrade the docker CLI on the host (dial-stdio needs 18.09+) and rerun",
                err,
            )
        return DockerUnavailable(
            f"{self.label}: the Docker engine is not reachable ({detail})",
            "check `docker version` on the host",
            err,
        )

    # -- facts ---------------------------------------------------------------------------

    def facts(self, path: str | None = None) -> HostFacts:
        f = HostFacts(
            label=self.label,
            address=self.conn.address,
            fingerprint=self.fingerprint,
            key_type=self.key_type,
        )
        # The engine's version is asked over its own channel while the shell command
        # runs: two round trips overlap instead of adding up.
        probe: dict[str, BaseException | None] = {"error": None}

        def ask_docker() -> None:
            try:
                self._docker_facts(f)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                probe["error"] = e

        asker = threading.Thread(target=ask_docker, name=f"facts-{self.label}", daemon=True)
        asker.start()
        try:
            self._shell_facts(f)
        finally:
            asker.join()
        if probe["error"] is not None:
            raise probe["error"]
        f.runtimes = [r for r in ("docker", "containerd", "podman") if r in f.runtimes]
        if path:
            try:
                f.free_bytes = self.free_bytes(path)
            except Cancelled:
                raise
            except RegwizardError:
                f.free_bytes = None
        return f

    def _shell_facts(self, f: HostFacts) -> None:
        res = self._sh(
            "id -u; uname -m; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release "
            "2>/dev/null; echo @@runtimes; command -v podman >/dev/null 2>&1 && echo podman; "
            f"[ -S {CONTAINERD_SOCKET} ] && command -v ctr >/dev/null 2>&1 && ! grep -Eqs "
            "'^[[:space:]]*disabled_plugins[[:space:]]*=.*\"(cri|io.containerd.grpc.v1.cri)\"' "
            "/etc/containerd/config.toml && echo containerd; :",
            what="id -u; uname -m; cat /etc/os-release; runtimes",
            check=False,
            timeout=30,
            as_root=False,
        )
        lines = res.text.splitlines()
        if len(lines) >= 2:
            f.is_root = lines[0].strip() == "0"
            f.arch = lines[1].strip()
        if "@@runtimes" in lines:
            cut = lines.index("@@runtimes")
            found = {ln.strip() for ln in lines[cut + 1 :]}
            f.runtimes.extend(r for r in ("containerd", "podman") if r in found)
            lines = lines[:cut]
        os_release: dict[str, str] = {}
        for line in lines[2:]:
            key, sep, value = line.partition("=")
            if sep:
                try:
                    parts = shlex.split(value)
                except ValueError:
                    parts = [value]
                os_release[key.strip()] = parts[0] if parts else ""
        f.os = os_release.get("PRETTY_NAME") or os_release.get("NAME", "")
        if not f.is_root and self.conn.sudo:
            try:
                f.sudo_ok = self._root_mode() in ("sudo", "sudo-nopass")
            except SudoFailed:
                f.sudo_ok = False

    def _docker_facts(self, f: HostFacts) -> None:
        try:
            with self._docker_lock:
                client = next(iter(self._dockers.values()), None)
            info = (client or self.docker(timeout=30)).version()
            f.docker_version = str(info.get("Version", ""))
            if f.docker_version:
                f.runtimes.append("docker")
        except Cancelled:
            raise
        except RegwizardError as e:
            f.docker_error = f"{e.cause}; fix: {e.fix}" if e.fix else e.cause
        except Exception as e:
            err = self._docker_unavailable(e)
            f.docker_error = f"{err.cause}; fix: {err.fix}" if err.fix else err.cause

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        with self._docker_lock:
            clients, self._dockers = list(self._dockers.values()), {}
        for client in clients:
            try:
                client.close()
            except Exception:
                pass
        self._closed = True
        self._close_transport()

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


# ---------------------------------------------------------------------------------------
# SSH


class _Transport(paramiko.Transport):
    """A Transport that records the host key algorithms the server offered."""

    offered_key_types: list[str] | None = None

    def _really_parse_kex_init(self, m: Any, ignore_first_byte: bool = False) -> dict:
        # (paramiko >= 3.4; with an older one offered_key_types stays None)
        parsed = super()._really_parse_kex_init(m, ignore_first_byte)
        if not ignore_first_byte and self.offered_key_types is None:  # the server's KEXINIT
            self.offered_key_types = list(parsed.get("server_key_algo_list") or [])
        return parsed


class SSHHost(Host):
    def __init__(
        self,
        conn: Connection,
        secrets: Secrets,
        *,
        cancel: threading.Event | None = None,
        timeout: float = 10.0,
        known_hosts: str | None = None,
        route: sshconfig.Route | None = None,
        depth: int = 0,
    ) -> None:
        super().__init__(conn, secrets, cancel=cancel, timeout=timeout)
        self.known_hosts = known_hosts or os.path.expanduser("~/.ssh/known_hosts")
        # where the plan's host really is (~/.ssh/config), see regwizard/sshconfig.py
        self.route = route or sshconfig.resolve(conn)
        self._addr, self._port, self._user = self.route.hostname, self.route.port, self.route.user
        hp = self._addr if self._port == 22 else f"{self._addr}:{self._port}"
        self.where = hp if self._addr == conn.address else f"{conn.address} ({hp})"
        self._depth = depth  # how many jump hosts lie before this one
        self._jump: SSHHost | None = None  # the ProxyJump host we tunnel through
        self._host_key: paramiko.PKey | None = None  # trusted at the first connect
        self._t_lock = threading.Lock()
        self._transport: paramiko.Transport | None = None
        try:
            self._transport = self._open()
        except BaseException:
            if self._jump is not None:
                self._jump.close()
            raise

    # -- connecting ----------------------------------------------------------------------

    def _tcp_connect(self) -> Any:
        if self.route.proxy_jump:
            return self._jump_channel()
        if self.route.proxy_command:
            return self._proxy_command()
        addr, port, timeout = self._addr, self._port, self._timeout
        try:
            sock = socket.create_connection((addr, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small requests
            return sock
        except socket.gaierror as e:
            raise ConnectFailed(
                f"{self.where}: cannot resolve host name {addr!r} ({e.strerror})",
                "check the spelling, DNS, or /etc/hosts on this machine",
            ) from None
        except ConnectionRefusedError:
            raise ConnectFailed(
                f"{self.where}: connection refused",
                f"check that sshd runs on the host and listens on port {port} "
                "(systemctl status ssh), and that no firewall rejects it",
            ) from None
        except TimeoutError:
            raise ConnectFailed(
                f"{self.where}: no answer within {timeout:g}s",
                "check the address and port, that the host is up, and that no firewall drops SSH",
            ) from None
        except OSError as e:
            if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                raise ConnectFailed(
                    f"{self.where}: no route to host",
                    "check the address, the network (VPN, cables) and the routes",
                ) from None
            raise ConnectFailed(
                f"{self.where}: cannot connect ({e.strerror or e})",
                "check the address and port, and that the host is up",
            ) from None

    def _proxy_command(self) -> paramiko.ProxyCommand:
        """The ProxyCommand's stdin/stdout as the socket (its reads time out)."""
        cmd = self.route.proxy_command
        try:
            proxy = paramiko.ProxyCommand(cmd)
        except Exception as e:
            raise ConnectFailed(
                f"{self.where}: cannot start the ProxyCommand from {self.route.path} ({e})",
                f"check the ProxyCommand for {self.conn.address} (ssh -G {self.conn.address})",
            ) from None
        proxy.settimeout(self._timeout)
        return proxy

    def _jump_channel(self) -> paramiko.Channel:
        """ProxyJump: connect to the (last) jump host, resolved through the same config and
        checked the same way (known_hosts, accepted keys; never a silent trust), and open
        a direct-tcpip channel from it to the target."""
        hops = sshconfig.parse_jumps(self.route.proxy_jump, self.route.path, self.conn.address)
        if self._depth + len(hops) > _MAX_JUMPS:
            raise ConnectFailed(
                f"{self.where}: more than {_MAX_JUMPS} ProxyJump hosts (a loop in the config?)",
                f"check the ProxyJump lines in {self.route.path or '~/.ssh/config'}",
            )
        jump = self._jump
        if jump is None or jump._transport is None or not jump._transport.is_active():
            if jump is not None:
                jump.close()
            self._jump = jump = self._connect_jump(hops)
        try:
            return jump.transport.open_channel(
                "direct-tcpip",
                (self._addr, self._port),
                ("127.0.0.1", 0),
                timeout=self._timeout,
            )
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectFailed(
                f"{self.where}: the jump host {jump.label} cannot reach "
                f"{self._addr}:{self._port} ({str(e) or type(e).__name__})",
                f"check that {jump.label} reaches the host, and that its sshd allows "
                "TCP forwarding (AllowTcpForwarding yes)",
            ) from None

    def _connect_jump(self, hops: list[sshconfig.Jump]) -> SSHHost:
        last = hops[-1]
        conn = Connection(
            address=last.host,
            port=last.port or 22,
            user=last.user or "",
            auth=self.conn.auth if self.conn.auth != "password" else "key",
            key_file=self.conn.key_file,
        )
        route = sshconfig.resolve(conn)
        if not last.user and route.sources.get("user") != "config":
            route = dataclasses.replace(route, user=self._user)  # like the target's login
        if len(hops) > 1:  # the earlier hops carry this one
            route = dataclasses.replace(
                route, proxy_jump=",".join(_jump_text(h) for h in hops[:-1]), proxy_command=""
            )
        return SSHHost(
            conn,
            self.secrets,
            cancel=self._cancel,
            timeout=self._timeout,
            known_hosts=self.known_hosts,
            route=route,
            depth=self._depth + 1,
        )

    def _open(self) -> paramiko.Transport:
        self._check_cancel()
        pin = parse_host_key_pin(self.conn.host_key) if self.conn.host_key.strip() else None
        t = self._handshake(self._first_families(pin))
        try:
            key = t.get_remote_server_key()
            problem, remember = self._judge(key, pin)
            wanted = self._worth_other_types(problem, pin)
            if problem is not None and wanted:
                other, seen = self._other_key_types(t, key, wanted)
                if other is not None:
                    t.close()
                    t = other
                    key = t.get_remote_server_key()
                    problem, remember = self._judge(key, pin)
                elif isinstance(problem, HostKeyChanged):
                    problem.evidence = "the host's keys: " + ", ".join(seen)
            elif isinstance(problem, HostKeyChanged) and pin is not None and pin.key_type:
                offered = getattr(t, "offered_key_types", None) or []
                if offered and not {_key_family(a) for a in offered} & set(pin.families):
                    problem.evidence = (
                        f"the host has no {pin.key_type} host key (it offers "
                        + ", ".join(offered)
                        + ")"
                    )
            self.fingerprint, self.key_type = fingerprint(key), key.get_name()
            if problem is not None:
                raise problem
            if remember:
                self._remember(key)
            self._host_key = key
            self._check_cancel()
            self._authenticate(t)
            t.set_keepalive(KEEPALIVE_SECONDS)
            return t
        except BaseException:
            t.close()
            raise

    def _handshake(self, families: list[str], *, only: bool = False) -> paramiko.Transport:
        """TCP connect + SSH key exchange, asking for host key ``families`` first
        (``only``: no other). Not authenticated yet, the host key not checked yet."""
        sock = self._tcp_connect()
        try:
            t = _Transport(sock)
        except BaseException:
            sock.close()
            raise
        try:
            t.banner_timeout = self._timeout
            t.handshake_timeout = self._timeout
            t.auth_timeout = self._timeout
            opts = t.get_security_options()
            types = list(opts.key_types)
            first = [a for f in families for a in types if _key_family(a) == f]
            if first:
                opts.key_types = first if only else first + [a for a in types if a not in first]
            try:
                t.start_client(timeout=self._timeout)
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise ConnectFailed(
                    f"{self.where}: SSH handshake failed ({str(e) or type(e).__name__})",
                    f"check that port {self._port} on the host is an SSH server "
                    "and that it is reachable",
                ) from None
            if not t.is_active() or not getattr(t, "initial_kex_done", True):
                raise ConnectFailed(
                    f"{self.where}: SSH handshake did not finish within {self._timeout:g}s",
                    f"check that port {self._port} on the host is an SSH server "
                    "and that it is reachable",
                )
            return t
        except BaseException:
            t.close()
            raise

    def _first_families(self, pin: HostKeyPin | None) -> list[str]:
        """Like OpenSSH: negotiate a host key type we already know for this host."""
        if self._host_key is not None:
            return [_key_family(self._host_key.get_name())]
        if pin is not None:
            return list(pin.families)  # a bare fingerprint: [] (the default order)
        try:
            known, _ = _known_keys(self.known_hosts, self._kh_name)
        except RegwizardError:
            return []
        return list(dict.fromkeys(_key_family(k.get_name()) for k in known))

    def _worth_other_types(
        self, problem: RegwizardError | None, pin: HostKeyPin | None
    ) -> set[str]:
        """Fingerprints a key of another type could match, when the first key did not.

        A bare pinned fingerprint (or one accepted for an unknown host) does not say
        its type, and the server chose its first type (usually ed25519). A pin with
        its type, a reconnect, and known_hosts already asked for the right type.
        """
        if problem is None or self._host_key is not None:
            return set()
        if pin is not None:
            return {pin.fingerprint} if not pin.key_type else set()
        if isinstance(problem, HostKeyUnknown):
            return {normalize_fingerprint(a) for a in self.secrets.accepted_host_keys}
        return set()

    def _other_key_types(
        self, first: _Transport, first_key: paramiko.PKey, wanted: set[str]
    ) -> tuple[paramiko.Transport | None, list[str]]:
        """A new handshake per other host key type the server offers (each restricted to
        that type), until one's fingerprint is in ``wanted``: (that transport, keys seen)."""
        ours = list(dict.fromkeys(_key_family(a) for a in paramiko.Transport._preferred_keys))
        offered = set(ours)  # paramiko < 3.4 does not show us the offer: try each type
        if first.offered_key_types is not None:
            offered = {_key_family(a) for a in first.offered_key_types}
        tried = _key_family(first_key.get_name())
        seen = [f"{first_key.get_name()} {fingerprint(first_key)}"]
        for family in ours:
            if family == tried or family not in offered:
                continue
            self._check_cancel()
            try:
                t = self._handshake([family], only=True)
            except ConnectFailed:
                continue  # no key of this type after all
            key = t.get_remote_server_key()
            if fingerprint(key) in wanted:
                return t, seen
            seen.append(f"{key.get_name()} {fingerprint(key)}")
            t.close()
        return None, seen

    @property
    def _kh_name(self) -> str:
        return self.route.known_hosts_name

    def _judge(
        self, key: paramiko.PKey, pin: HostKeyPin | None
    ) -> tuple[RegwizardError | None, bool]:
        """(the error to raise or None, whether to add the key to known_hosts)."""
        fp = fingerprint(key)
        if self._host_key is not None:  # reconnecting: must be the key we trusted
            if not _same_key(key, self._host_key):
                return HostKeyChanged(self.where, fingerprint(self._host_key), fp), False
            return None, False
        if pin is not None:
            if pin.fingerprint != fp:
                return HostKeyChanged(self.where, pin.fingerprint, fp), False
            return None, False
        known, revoked = _known_keys(self.known_hosts, self._kh_name)
        if any(_same_key(key, k) for k in revoked):
            return RegwizardError(
                f"{self.where}: the SSH host key {fp} is marked @revoked in {self.known_hosts}",
                "the host uses a key you revoked; replace its host key, or remove the "
                "@revoked line if that was a mistake",
            ), False
        if any(_same_key(key, k) for k in known):
            return None, False
        if known:
            expected = ", ".join(sorted({fingerprint(k) for k in known}))
            return HostKeyChanged(self.where, expected, fp), False
        accepted = {normalize_fingerprint(a) for a in self.secrets.accepted_host_keys}
        if fp not in accepted:
            return HostKeyUnknown(self.where, fp, key.get_name()), False
        return None, True

    def _remember(self, key: paramiko.PKey) -> None:
        try:
            _remember_host_key(self.known_hosts, self._kh_name, key)
        except OSError as e:
            raise RegwizardError(
                f"cannot add {self.where}'s host key to {self.known_hosts}: {e.strerror or e}",
                f"check the permissions of {os.path.dirname(self.known_hosts)}",
            ) from None

    def _authenticate(self, t: paramiko.Transport) -> None:
        user, method = self._user, self.conn.auth
        who = f"{user}@{self.where}"
        key_file = self._key_paths()[0]
        fixes = {
            "key": f"check that the public key of {key_file} is in "
            f"~{user}/.ssh/authorized_keys on the host "
            f"(ssh-copy-id -i {key_file} -p {self._port} {user}@{self.conn.address})",
            "agent": "load the right key into your ssh-agent (ssh-add) and check that it is "
            f"in ~{user}/.ssh/authorized_keys on the host",
            "password": f"check the user name and the password for {who}",
        }
        fix = fixes.get(method, "use key, agent or password authentication")
        try:
            if method == "key":
                key = self._load_key()
                t.auth_publickey(user, key)
            elif method == "agent":
                self._auth_agent(t, user)
            elif method == "password":
                self._auth_password(t, user)
            else:
                raise RegwizardError(
                    f"{who}: unknown authentication method {method!r}",
                    "use key, agent or password",
                )
        except paramiko.BadAuthenticationType as e:
            allowed = ", ".join(e.allowed_types) or "nothing"
            raise AuthFailed(
                f"{who}: authentication failed ({method} is not accepted; "
                f"the server allows: {allowed})",
                "choose a method the server allows" if method != "key" else fix,
            ) from None
        except paramiko.AuthenticationException as e:
            reason = f"{method} rejected"
            text = str(e) if str(e) and str(e) != "Authentication failed." else ""
            raise AuthFailed(
                f"{who}: authentication failed ({reason}{'; ' + text if text else ''})",
                fix,
            ) from None
        except paramiko.SSHException as e:
            raise AuthFailed(
                f"{who}: authentication failed ({self._redact(str(e)) or 'no answer'})", fix
            ) from None
        if not t.is_authenticated():
            raise AuthFailed(
                f"{who}: authentication failed (the server wants more steps, e.g. a second "
                "factor, which regwizard does not support)",
                "allow a single method for this user (key or password) in sshd_config",
            )

    def _key_paths(self) -> list[str]:
        """The plan's key file; when the plan leaves the default, the config's
        IdentityFiles first (those that exist), then the default."""
        own = os.path.expanduser(self.conn.key_file or sshconfig.DEFAULTS.key_file)
        found = [p for p in self.route.identity_files if os.path.exists(p)]
        return list(dict.fromkeys([*found, own])) if found else [own]

    def _load_key(self) -> paramiko.PKey:
        path = self._key_paths()[0]
        try:
            return paramiko.PKey.from_path(path)
        except FileNotFoundError:
            raise RegwizardError(
                f"SSH key file {path} does not exist",
                "choose an existing private key, or create one (ssh-keygen -t ed25519) and "
                f"install it on the host (ssh-copy-id -i {path} -p {self._port} "
                f"{self._user}@{self.conn.address})",
            ) from None
        except IsADirectoryError:
            raise RegwizardError(
                f"SSH key file {path} is a directory", "choose the private key file itself"
            ) from None
        except PermissionError:
            raise RegwizardError(
                f"cannot read SSH key file {path}: permission denied",
                f"make it readable by you (chown $USER {path}; chmod 600 {path}), "
                "or choose another key",
            ) from None
        except OSError as e:
            raise RegwizardError(
                f"cannot read SSH key file {path}: {e.strerror or e}",
                "check the path and its permissions",
            ) from None
        except (TypeError, paramiko.PasswordRequiredException) as e:
            if "encrypt" in str(e).lower() or "password" in str(e).lower():
                raise RegwizardError(
                    f"SSH key file {path} is encrypted (protected by a passphrase)",
                    f"load it into ssh-agent (ssh-add {path}) and choose agent "
                    "authentication, or use a key without a passphrase",
                ) from None
            raise RegwizardError(
                f"SSH key file {path} is not a usable private key ({e})",
                "choose the private key (not the .pub file)",
            ) from None
        except paramiko.UnknownKeyType:
            raise RegwizardError(
                f"SSH key file {path} has a key type regwizard cannot use",
                "use an ed25519, ECDSA or RSA key (ssh-keygen -t ed25519)",
            ) from None
        except (ValueError, paramiko.SSHException) as e:
            raise RegwizardError(
                f"SSH key file {path} is not a private key regwizard can read ({e})",
                "choose the private key (not the .pub file), in OpenSSH or PEM format",
            ) from None

    def _auth_agent(self, t: paramiko.Transport, user: str) -> None:
        agent = paramiko.Agent()
        try:
            keys = agent.get_keys()
            if not keys:
                sock = os.environ.get("SSH_AUTH_SOCK")
                raise AuthFailed(
                    f"{user}@{self.where}: authentication failed (ssh-agent has no keys"
                    + ("" if sock else "; SSH_AUTH_SOCK is not set")
                    + ")",
                    "start ssh-agent and add your key (eval $(ssh-agent); ssh-add), "
                    "or choose key authentication",
                )
            last: Exception | None = None
            for key in keys:
                try:
                    t.auth_publickey(user, key)
                    if t.is_authenticated():
                        return
                except paramiko.BadAuthenticationType:
                    raise
                except paramiko.AuthenticationException as e:
                    last = e
            if last is not None:
                raise last
        finally:
            agent.close()

    def _auth_password(self, t: paramiko.Transport, user: str) -> None:
        password = self.secrets.ssh_passwords.get(self.conn.address, "")
        if not password:
            raise AuthFailed(
                f"{user}@{self.where}: no SSH password given",
                "enter the SSH password for this host, or choose key authentication",
            )
        try:
            t.auth_password(user, password, fallback=False)
        except paramiko.BadAuthenticationType as e:
            if "keyboard-interactive" not in e.allowed_types:
                raise

            def answer(_title: str, _instr: str, prompts: list[tuple[str, bool]]) -> list[str]:
                return [password for _ in prompts]

            t.auth_interactive(user, answer)

    def _live(self) -> paramiko.Transport:
        """The transport; reconnected (same host key required) when it has dropped."""
        with self._t_lock:
            if self._closed:
                raise ConnectFailed(
                    f"{self.label}: the connection was closed",
                    "internal error: the host was used after close(); rerun",
                )
            t = self._transport
            if t is not None and t.is_active():
                return t
            if t is not None:
                t.close()
            try:
                self._transport = self._open()
            except ConnectFailed as e:
                raise ConnectFailed(
                    f"{self.label}: the SSH connection dropped and reconnecting failed: {e.cause}",
                    e.fix,
                ) from None
            return self._transport

    @property
    def transport(self) -> paramiko.Transport:
        return self._live()

    def _login_is_root(self) -> bool:
        return self._user == "root"

    def _login_user(self) -> str:
        return self._user

    def _close_transport(self) -> None:
        with self._t_lock:
            t, self._transport = self._transport, None
            jump, self._jump = self._jump, None
        if t is not None:
            t.close()
        if jump is not None:
            jump.close()

    # -- commands ------------------------------------------------------------------------

    def _open_channel(self, timeout: float) -> paramiko.Channel:
        t = self._live()
        wait = max(min(timeout, 30.0), self._timeout)
        for attempt in (1, 2):
            try:
                return t.open_session(timeout=wait)
            except (paramiko.SSHException, EOFError, OSError) as e:
                # Opening a session runs nothing yet, so a busy sshd that did not answer in
                # time gets one more try (seen once in CI: "Timeout opening channel.").
                if attempt == 1 and "timeout opening channel" in str(e).lower() and t.is_active():
                    continue
                raise ConnectFailed(
                    f"{self.label}: cannot open an SSH session ({str(e) or type(e).__name__})",
                    "the server may limit sessions (MaxSessions) or the connection dropped; rerun",
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _exec(
        self,
        argv: list[str],
        data: bytes,
        timeout: float,
        on_line: OnLine | None,
        program: str,
        *,
        track: bool = True,
    ) -> Result:
        """Run ``argv`` in a new session channel.

        With ``track`` the command runs as ``sh -c 'echo "regwizard-pid $$" >&2; exec "$@"'
        sh ARGV...``: we learn its PID (our first stderr line, not passed on) so a command
        that times out or is cancelled can be killed. (OpenSSH ignores "signal" requests
        for root logins, and closing the channel alone leaves the process running.)
        """
        # fed nothing, a tracked command reads /dev/null: no EOF is sent, so none can race
        # the channel's close (_send_eof)
        no_stdin = track and not data
        if track:
            argv = ["sh", "-c", _PID_SCRIPT_NO_STDIN if no_stdin else _PID_SCRIPT, "sh", *argv]
        chan = self._open_channel(timeout)
        pid = _PidSniffer() if track else None
        try:
            chan.settimeout(timeout)
            try:
                chan.exec_command(shlex.join(argv))
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise ConnectFailed(
                    f"{self.label}: the server refused to run `{program}` ({e})",
                    "check that the account has a working login shell",
                ) from None
            if not no_stdin:
                _start_writer(chan.sendall, lambda: _send_eof(chan), data)
            try:
                return self._collect(chan, timeout, on_line, program, pid, interruptible=track)
            except (CommandTimeout, Cancelled):
                chan.close()
                if pid is not None and pid.pid:
                    self._kill_remote(pid.pid)
                raise
        finally:
            chan.close()

    def _start_held(self, argv: list[str], data: bytes, timeout: float) -> _Held:
        try:
            chan = self._channel_running(["sh", "-c", _PID_SCRIPT, "sh", *argv], data, timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectFailed(
                f"{self.label}: the server refused to run the lock command ({e})",
                "check that the account has a working login shell",
            ) from None
        return _SSHHeld(self, chan)

    def _channel_running(self, argv: list[str], data: bytes, timeout: float) -> paramiko.Channel:
        """A new channel running ``argv``, fed ``data`` first; closed again if that fails."""
        chan = self._open_channel(timeout)
        try:
            chan.settimeout(timeout)
            chan.exec_command(shlex.join(argv))
            if data:
                chan.sendall(data)
        except BaseException:
            chan.close()
            raise
        return chan

    def _kill_remote(self, pid: int) -> None:
        """SIGTERM a command we gave up on (via sudo when commands run via sudo)."""
        argv = ["sh", "-c", 'kill -TERM "$1"', "sh", str(pid)]
        prefix = b""
        if self._mode is not None:  # never probe sudo from here (we may be inside the probe)
            argv, prefix = self._wrap(argv, True)
        try:
            self._exec(argv, prefix, 15, None, "kill", track=False)
        except Exception:
            pass

    def _collect(
        self,
        chan: paramiko.Channel,
        timeout: float,
        on_line: OnLine | None,
        program: str,
        pid: _PidSniffer | None,
        *,
        interruptible: bool = True,
    ) -> Result:
        deadline = time.monotonic() + timeout
        out, err = bytearray(), bytearray()
        lines_out, lines_err = _Lines(on_line), _Lines(on_line)
        exited_at: float | None = None

        def take_err(chunk: bytes) -> None:
            if pid is not None:
                chunk = pid.feed(chunk)
            if chunk:
                err.extend(chunk)
                lines_err.feed(chunk)

        while True:
            if interruptible and self._cancel is not None and self._cancel.is_set():
                raise Cancelled()
            got = False
            while chan.recv_ready():
                chunk = chan.recv(65536)
                if not chunk:
                    break
                out += chunk
                lines_out.feed(chunk)
                got = True
            while chan.recv_stderr_ready():
                chunk = chan.recv_stderr(65536)
                if not chunk:
                    break
                take_err(chunk)
                got = True
            now = time.monotonic()
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                if chan.eof_received or chan.closed:
                    break
                exited_at = exited_at or now
                if now - exited_at > _EXIT_GRACE:
                    break
            if now >= deadline:
                raise CommandTimeout(self.label, program, timeout)
            if not got:
                ready, _, _ = select.select([chan], [], [], min(0.1, deadline - now))
                if ready and not chan.recv_ready() and not chan.recv_stderr_ready():
                    # EOF seen, exit status pending: wake the moment it arrives (no spin)
                    chan.status_event.wait(min(0.05, max(0.0, deadline - now)))
        if pid is not None:
            take_err(pid.flush())
        lines_out.flush()
        lines_err.flush()
        return Result(chan.recv_exit_status(), bytes(out), bytes(err))

    # -- docker --------------------------------------------------------------------------

    def _dial_docker(self, timeout: float) -> paramiko.Channel:
        argv, prefix = self._wrap(["docker", "system", "dial-stdio"], True)
        return self._channel_running(argv, prefix, timeout)

    def _make_docker(self, timeout: float) -> docker.DockerClient:
        self._root_mode()  # sudo problems surface as SudoFailed, not as an HTTP error
        from . import dockerssh

        return dockerssh.client_over(self._dial_docker, timeout=timeout)


class _SSHHeld(_Held):
    def __init__(self, host: SSHHost, chan: paramiko.Channel) -> None:
        super().__init__()
        self.host = host
        self.chan = chan
        self.pid = _PidSniffer()

    def _drain(self) -> bool:
        chan, got = self.chan, False
        while chan.recv_stderr_ready():
            chunk = chan.recv_stderr(65536)
            if not chunk:
                break
            self.stderr += self.pid.feed(chunk)
            got = True
        while chan.recv_ready():
            chunk = chan.recv(65536)
            if not chunk:
                break
            self._buf += chunk
            got = True
        return got

    def _pump(self, wait: float) -> None:
        if self._drain():
            return
        if self.chan.eof_received or self.chan.closed:
            self._drain()  # what came with the EOF
            self.stderr += self.pid.flush()
            self._eof = True
            return
        select.select([self.chan], [], [], wait)

    @property
    def alive(self) -> bool:
        t = self.chan.get_transport()
        return (
            not self.chan.closed
            and not self.chan.exit_status_ready()
            and t is not None
            and t.is_active()
        )

    def release(self, timeout: float) -> None:
        try:
            if self.alive:
                _send_eof(self.chan)  # EOF: the host's `cat` ends, the lock is freed
                if not self.chan.status_event.wait(timeout):
                    self.kill()
        except Exception:
            pass  # the connection is gone: so is the lock (sshd ended the session)
        finally:
            self.chan.close()

    def kill(self) -> None:
        try:
            self._drain()
        except Exception:
            pass
        self.chan.close()
        if self.pid.pid and self.host._transport is not None:
            self.host._kill_remote(self.pid.pid)


# ---------------------------------------------------------------------------------------
# local


class LocalHost(Host):
    def _euid(self) -> int:
        return os.geteuid()

    def _login_is_root(self) -> bool:
        return self._euid() == 0

    def _login_user(self) -> str:
        try:
            return getpass.getuser()
        except Exception:
            return str(self._euid())

    def _exec(
        self, argv: list[str], data: bytes, timeout: float, on_line: OnLine | None, program: str
    ) -> Result:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError:
            return Result(127, b"", f"{argv[0]}: command not found\n".encode())
        except PermissionError:
            return Result(126, b"", f"{argv[0]}: permission denied\n".encode())
        assert proc.stdin and proc.stdout and proc.stderr

        def finish() -> None:
            proc.stdin.close()  # type: ignore[union-attr]

        _start_writer(proc.stdin.write, finish, data)
        deadline = time.monotonic() + timeout
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        bufs = {out_fd: bytearray(), err_fd: bytearray()}
        splitters = {fd: _Lines(on_line) for fd in bufs}
        open_fds = set(bufs)
        exited_at: float | None = None
        try:
            while True:
                if self._cancel is not None and self._cancel.is_set():
                    self._kill(proc)
                    raise Cancelled()
                now = time.monotonic()
                if now >= deadline:
                    self._kill(proc)
                    raise CommandTimeout(self.label, program, timeout)
                if open_fds:
                    ready, _, _ = select.select(list(open_fds), [], [], min(0.1, deadline - now))
                    for fd in ready:
                        chunk = os.read(fd, 65536)
                        if not chunk:
                            open_fds.discard(fd)
                            continue
                        bufs[fd] += chunk
                        splitters[fd].feed(chunk)
                if proc.poll() is not None:
                    if not open_fds:
                        break
                    exited_at = exited_at or now
                    if now - exited_at > _EXIT_GRACE:
                        break
                elif not open_fds:
                    time.sleep(0.02)
        finally:
            for s in splitters.values():
                s.flush()
            proc.stdout.close()
            proc.stderr.close()
        return Result(proc.wait(), bytes(bufs[out_fd]), bytes(bufs[err_fd]))

    def _start_held(self, argv: list[str], data: bytes, timeout: float) -> _Held:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # our Ctrl-C is not its; our exit closes its stdin
                close_fds=True,
            )
        except OSError as e:
            raise RegwizardError(
                f"{self.label}: cannot start `{argv[0]}` for the run lock ({e.strerror or e})",
                "check that sh is installed and in PATH",
            ) from None
        held = _LocalHeld(proc)
        if data:
            try:
                proc.stdin.write(data)  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            except OSError:
                pass  # it ended already: readline() reports why
        return held

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait(timeout=5)

    def _make_docker(self, timeout: float) -> docker.DockerClient:
        from . import dockerssh

        mode = self._root_mode()
        if mode == "direct" or os.access(DOCKER_SOCKET, os.R_OK | os.W_OK):
            return dockerssh.unix_client(DOCKER_SOCKET, timeout=timeout)
        argv, prefix = self._wrap(["docker", "system", "dial-stdio"], True)
        return dockerssh.client_over(
            lambda t: dockerssh.ProcessStream(argv, prefix, t), timeout=timeout
        )


class _LocalHeld(_Held):
    def __init__(self, proc: subprocess.Popen) -> None:
        super().__init__()
        self.proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        self._fds = {proc.stdout.fileno(), proc.stderr.fileno()}

    def _pump(self, wait: float) -> None:
        if not self._fds:
            self._eof = True
            return
        ready, _, _ = select.select(list(self._fds), [], [], wait)
        for fd in ready:
            chunk = os.read(fd, 65536)
            is_out = fd == self.proc.stdout.fileno()  # type: ignore[union-attr]
            if not chunk:
                self._fds.discard(fd)
                self._eof = self._eof or is_out
            elif is_out:
                self._buf += chunk
            else:
                self.stderr += chunk

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def release(self, timeout: float) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            LocalHost._kill(self.proc)
        self._close()

    def kill(self) -> None:
        LocalHost._kill(self.proc)
        self._close()

    def _close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                f.close()  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------


def connect(
    conn: Connection,
    secrets: Secrets,
    *,
    cancel: threading.Event | None = None,
    timeout: float = 10.0,
    known_hosts: str | None = None,
) -> Host:
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    if conn.is_local:
        return LocalHost(conn, secrets, cancel=cancel, timeout=timeout)
    return SSHHost(conn, secrets, cancel=cancel, timeout=timeout, known_hosts=known_hosts)
