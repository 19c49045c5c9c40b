"""What every command's front end shares: reading secrets, printing events."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from regwizard.errors import RegwizardError

if TYPE_CHECKING:
    from regwizard.events import Event, StepProgress


def read_connection_secrets(plan, secrets) -> None:
    """SSH and sudo passwords for headless runs: environment, else a prompt on a TTY.

    REGWIZARD_SSH_PASSWORD and REGWIZARD_SUDO_PASSWORD serve every host that needs
    one; a sudo password defaults to the same user's SSH password.
    """
    from regwizard import sshconfig

    for c in planned_hosts(plan):
        if c.is_local:
            continue
        user = sshconfig.resolve(c).user  # ~/.ssh/config may name the login user
        who = f"{user}@{c.address}"
        if c.auth == "password" and c.address not in secrets.ssh_passwords:
            pw = os.environ.get("REGWIZARD_SSH_PASSWORD") or _ask(
                f"SSH password for {who}: ", "REGWIZARD_SSH_PASSWORD", who
            )
            secrets.ssh_passwords[c.address] = pw
        if c.sudo and user != "root" and c.address not in secrets.sudo_passwords:
            pw = (
                os.environ.get("REGWIZARD_SUDO_PASSWORD")
                or secrets.ssh_passwords.get(c.address)
                or _ask(f"sudo password for {who}: ", "REGWIZARD_SUDO_PASSWORD", who)
            )
            secrets.sudo_passwords[c.address] = pw


def planned_hosts(plan) -> list:  # noqa: ANN001
    """Every connection a run makes: the registry host, each replica, each client."""
    return [plan.host, *plan.replicas, *plan.clients]


def ha_lines(plan) -> list[str]:  # noqa: ANN001
    """With ``[[replicas]]``: the registry hosts and the storage they share (no secret);
    nothing for a one-host plan, whose output stays as it was."""
    if not plan.replicas:
        return []
    from regwizard.plan import registry_hosts_summary, storage_summary

    return [
        f"registry hosts: {registry_hosts_summary(plan)}",
        f"storage: {storage_summary(plan)}",
    ]


def ssh_routes(plan) -> list[str]:  # noqa: ANN001
    """``alias (→ user@hostname:port via ~/.ssh/config)`` for each planned host (replicas
    too) that the SSH config changes (once each); RegwizardError for a malformed config."""
    from regwizard import sshconfig

    out: list[str] = []
    for c in planned_hosts(plan):
        if not c.is_local:
            route = sshconfig.resolve(c)
            if route.from_config and route.describe() not in out:
                out.append(route.describe())
    return out


def _ask(prompt: str, env: str, who: str) -> str:
    if stdin_is_tty():
        return ask_password(prompt)
    raise RegwizardError(
        f"no password for {who}",
        f"set {env}, or run on a terminal to be asked",
    )


def stdin_is_tty() -> bool:
    """False also when there is no usable stdin (closed, or not a real file)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):
        return False


def ask_password(prompt: str) -> str:
    """getpass, with end of input (Ctrl-D) a clear error instead of an EOFError."""
    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise RegwizardError(
            "no password given (end of input)", "type the password, then Enter"
        ) from None


def read_stdin_line(what: str) -> str:
    """The first line of a non-interactive stdin, decoded as UTF-8 (without its newline)."""
    fix = f"pipe the {what} in as one line of UTF-8 text, or run on a terminal to be asked"
    stdin = sys.stdin
    try:
        if stdin is None:
            raise OSError("stdin is closed")
        buf = getattr(stdin, "buffer", None)
        if buf is not None:
            raw = buf.readline(MAX_SECRET_BYTES + 2)
        else:  # a text stream without bytes under it (tests use io.StringIO)
            raw = stdin.readline(MAX_SECRET_BYTES + 2).encode("utf-8", "surrogateescape")
    except (OSError, ValueError, UnicodeError) as e:
        raise RegwizardError(f"cannot read the {what} from stdin: {e}", fix) from None
    return _first_line(raw, f"the {what} on stdin", fix)


MAX_SECRET_BYTES = 4096  # a password is a line of text; bcrypt reads 72 bytes of it


def _first_line(data: bytes, where: str, fix: str) -> str:
    line = data.split(b"\n", 1)[0].removesuffix(b"\r")
    if len(line) > MAX_SECRET_BYTES:
        raise RegwizardError(f"the first line of {where} is over {MAX_SECRET_BYTES} bytes", fix)
    try:
        text = line.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise RegwizardError(
            f"{where} is not UTF-8 text (byte 0x{line[e.start]:02x} at position {e.start})",
            fix,
        ) from None
    if "\0" in text:
        raise RegwizardError(f"{where} holds a NUL character, never part of a password", fix)
    return text


def read_verify_password(password_file: str | None, user: str) -> str:
    """The verify user's password: the first line of ``password_file`` (UTF-8), else
    REGWIZARD_PASSWORD, else a prompt on a terminal. Bad files are RegwizardErrors."""
    if password_file:
        return read_password_file(password_file, env="REGWIZARD_PASSWORD")
    env = os.environ.get("REGWIZARD_PASSWORD")
    if env:
        return env
    if stdin_is_tty():
        return ask_password(f"password of registry user {user} (for verification): ")
    raise RegwizardError(
        f"no password for the verify user {user}",
        "pass --password-file FILE, set REGWIZARD_PASSWORD, or run on a terminal",
    )


def read_password_file(name: str, whose: str = "the verify user's", env: str = "") -> str:
    path = Path(os.path.expanduser(name))
    fix = (
        f"give --password-file a readable UTF-8 text file whose first line is {whose} password"
        + (f" (or set {env})" if env else "")
    )
    try:
        with path.open("rb") as fh:  # a pipe works too: --password-file <(pass show reg)
            data = fh.read(MAX_SECRET_BYTES + 2)
    except FileNotFoundError:
        raise RegwizardError(f"the password file {name} does not exist", fix) from None
    except IsADirectoryError:
        raise RegwizardError(f"the password file {name} is a directory", fix) from None
    except PermissionError:
        raise RegwizardError(
            f"the password file {name} is not readable (permission denied)",
            f"make it readable by this user (e.g. chmod 600 and chown to this user), or set {env}",
        ) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the name
        reason = getattr(e, "strerror", None) or str(e)
        raise RegwizardError(f"cannot read the password file {name}: {reason}", fix) from None
    pw = _first_line(data, f"the password file {name}", fix)
    if not pw:
        raise RegwizardError(
            f"the password file {name} is empty (its first line holds no password)", fix
        )
    return pw


UPSTREAM_FILE_FIX = (
    'give --upstream-credentials-file a readable UTF-8 file whose first line is "user:password" '
    '(or "none" for an anonymous upstream), or set REGWIZARD_UPSTREAM_USER and '
    "REGWIZARD_UPSTREAM_PASSWORD"
)


def read_upstream_credentials(plan, secrets, credentials_file: str | None, *, ask: bool = True):  # noqa: ANN001, ANN201
    """A mirror's login on its upstream, into ``secrets`` (never into the plan).

    From ``--upstream-credentials-file`` (first line ``user:password``, or ``none``), else
    REGWIZARD_UPSTREAM_USER + REGWIZARD_UPSTREAM_PASSWORD (user ``none`` = anonymous),
    else a prompt on a terminal (Enter keeps the login the registry host already has,
    ``none`` = anonymous). Nothing given: the stored login is kept. RegwizardError for
    bad input, and for credentials given to a plan that is not a mirror."""
    url = plan.registry.proxy_remote_url
    if credentials_file and not url:
        raise RegwizardError(
            "--upstream-credentials-file was given, but the plan is not a mirror "
            "(registry.proxy_remote_url is empty)",
            "set registry.proxy_remote_url in the plan, or leave the option out",
        )
    if not url:
        return
    if credentials_file:
        line = _read_secret_line(credentials_file, "upstream credentials file", UPSTREAM_FILE_FIX)
        if line.strip().lower() == "none":
            _set_upstream(secrets, "", "", anonymous=True)
            return
        user, sep, pw = line.partition(":")
        if not sep:
            raise RegwizardError(
                f'the upstream credentials file {credentials_file} holds no "user:password" line',
                UPSTREAM_FILE_FIX,
            )
        _set_upstream(secrets, user, pw, where=f"the file {credentials_file}")
        return
    env_user = os.environ.get("REGWIZARD_UPSTREAM_USER", "")
    env_pw = os.environ.get("REGWIZARD_UPSTREAM_PASSWORD", "")
    if env_user.strip().lower() == "none":
        _set_upstream(secrets, "", "", anonymous=True)
        return
    if env_user or env_pw:
        if not (env_user and env_pw):
            missing = "REGWIZARD_UPSTREAM_PASSWORD" if env_user else "REGWIZARD_UPSTREAM_USER"
            raise RegwizardError(
                f"{missing} is not set, but the other half of the upstream login is",
                "set both REGWIZARD_UPSTREAM_USER and REGWIZARD_UPSTREAM_PASSWORD (user none "
                "for an anonymous upstream)",
            )
        _set_upstream(secrets, env_user, env_pw, where="REGWIZARD_UPSTREAM_USER")
        return
    if ask and stdin_is_tty():
        try:
            user = input(
                f"upstream user for {url} (Enter: keep the login the registry host has; "
                "none: anonymous): "
            ).strip()
        except EOFError:
            user = ""
        if user.lower() == "none":
            _set_upstream(secrets, "", "", anonymous=True)
        elif user:
            _set_upstream(secrets, user, ask_password(f"upstream password of {user}: "))


S3_FILE_FIX = (
    "give --s3-secret-file a readable UTF-8 file whose first line is the S3 secret key of the "
    "plan's [storage] access_key (or set REGWIZARD_S3_SECRET_KEY)"
)


def read_s3_secret(plan, secrets, secret_file: str | None, *, ask: bool = True) -> None:  # noqa: ANN001
    """The S3 secret key of ``[storage] driver = "s3"``, into ``secrets`` (never the plan).

    From ``--s3-secret-file`` (first line), else REGWIZARD_S3_SECRET_KEY, else a prompt on a
    terminal when ``ask`` (Enter keeps the key the registry host's config.yml holds).
    Nothing given: the stored key is kept, and the config step refuses, with the ways to
    give it, when there is none. RegwizardError for a bad file, and for a file given to a
    plan whose storage is not s3."""
    if secret_file and not plan.storage.is_s3:
        raise RegwizardError(
            f"--s3-secret-file was given, but the plan's [storage] driver is "
            f"{plan.storage.driver!r}, not s3",
            'set [storage] driver = "s3" (with endpoint, bucket and access_key), or leave the '
            "option out",
        )
    if not plan.storage.is_s3:
        return
    if secret_file:
        key = _read_secret_line(secret_file, "S3 secret file", S3_FILE_FIX)
        where = f"the S3 secret file {secret_file}"
    elif os.environ.get("REGWIZARD_S3_SECRET_KEY"):
        key, where = os.environ["REGWIZARD_S3_SECRET_KEY"], "REGWIZARD_S3_SECRET_KEY"
    elif ask and stdin_is_tty():
        key = ask_password(
            f"S3 secret key of access key {plan.storage.access_key} (Enter: keep the one the "
            "registry host has): "
        )
        where = "the prompt"
        if not key:
            return
    else:
        return
    if key != key.strip() or any(not c.isprintable() for c in key):
        raise RegwizardError(
            f"the S3 secret key from {where} has spaces at its ends or a control character",
            S3_FILE_FIX,
        )
    secrets.s3_secret_key = key


def _set_upstream(secrets, user: str, pw: str, *, anonymous: bool = False, where: str = "") -> None:  # noqa: ANN001
    fix = "give the upstream's user name and password (user:password), or none"
    if not anonymous:
        if not user or ":" in user or any(not c.isprintable() for c in user):
            raise RegwizardError(
                f"the upstream user name from {where or 'the prompt'} is empty or holds a "
                "colon or a control character",
                fix,
            )
        if not pw:
            raise RegwizardError(
                f"the upstream password from {where or 'the prompt'} is empty", fix
            )
    secrets.upstream_user, secrets.upstream_password = user, pw
    secrets.upstream_anonymous = anonymous


def _read_secret_line(name: str, what: str, fix: str) -> str:
    """The first line of a small secret file (a pipe works too); RegwizardError else."""
    path = Path(os.path.expanduser(name))
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SECRET_BYTES + 2)
    except FileNotFoundError:
        raise RegwizardError(f"the {what} {name} does not exist", fix) from None
    except IsADirectoryError:
        raise RegwizardError(f"the {what} {name} is a directory", fix) from None
    except PermissionError:
        raise RegwizardError(
            f"the {what} {name} is not readable (permission denied)", fix
        ) from None
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise RegwizardError(f"cannot read the {what} {name}: {reason}", fix) from None
    line = _first_line(data, f"the {what} {name}", fix)
    if not line:
        raise RegwizardError(f"the {what} {name} is empty", fix)
    return line


def output_path(name: str, *, overwrite: bool = False, make_parents: bool = False) -> Path:
    """Where ``-o NAME`` will write, checked before any work is done (adopt connects and
    reads a host first; lab up builds the lab for minutes): not a directory, not an
    existing file unless ``overwrite``, in a directory that exists (or, with
    ``make_parents``, under one) and is writable. Raises RegwizardError."""
    path = Path(os.path.expanduser(name))
    fix = "choose another -o path: a file in an existing directory you can write to"
    try:
        if not name:
            raise RegwizardError("the -o path is empty", fix)
        if path.is_dir():
            raise RegwizardError(f"{name} is a directory", fix)
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise RegwizardError(
                f"{name} already exists", "choose another -o path, or remove that file first"
            )
        parent = path.parent
        while not parent.exists() and make_parents and parent != parent.parent:
            parent = parent.parent
        if not parent.exists():
            raise RegwizardError(f"the directory {path.parent} does not exist", fix)
        if not parent.is_dir():
            raise RegwizardError(f"{parent} is not a directory", fix)
        if not os.access(parent, os.W_OK):
            raise RegwizardError(f"cannot write in {parent} (permission denied)", fix)
    except OSError as e:  # a name too long, a loop of symlinks...
        raise RegwizardError(
            f"cannot use {name!r} as the -o path: {e.strerror or e}", fix
        ) from None
    return path


VERBOSITY = 0  # -1 --quiet, 0 default, 1 -v, 2 -vv; set once by main from the arguments


def set_verbosity(args) -> None:  # noqa: ANN001
    global VERBOSITY
    VERBOSITY = -1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0) or 0


class StderrPrinter:
    """emit(event) for headless runs: one line per finished step, the failure in full;
    --quiet keeps only failures (and what the command prints last), -v adds every log line.

    On a terminal (stderr is a TTY), a live ``StepProgress`` is one line at the bottom,
    rewritten in place with ``\r``; other lines print above it, and it is cleared when
    its step finishes (or fails, or the run ends). Piped, nothing extra is printed."""

    def __init__(self, stream=None) -> None:  # noqa: ANN001
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _isatty(self.stream)
        self._progress: StepProgress | None = None
        self._shown = 0  # characters of the progress line now on the terminal

    def __call__(self, ev: Event) -> None:
        # Imported here: `--version`, `--help`, `plan check` and the rest that print no
        # events never load the event classes.
        from regwizard.events import (
            GcFinished,
            LogLine,
            Notice,
            RunFinished,
            StepFailed,
            StepFinished,
            StepProgress,
        )

        if VERBOSITY < 0 and not isinstance(ev, StepFailed):
            return
        if isinstance(ev, StepProgress):
            if self.tty:
                self._progress = ev
                self._draw()
            return
        if isinstance(ev, (StepFinished, StepFailed)) and self._progress is not None:
            if (ev.step, ev.host) == (self._progress.step, self._progress.host):
                self._progress = None
        elif isinstance(ev, (RunFinished, GcFinished)):
            self._progress = None
        if isinstance(ev, StepFinished):
            mark = {"changed": "~", "unchanged": "=", "would-change": "?", "skipped": "-"}.get(
                ev.status, "*"
            )
            self.line(
                f"{mark} {ev.step:<12} {ev.host:<16} {ev.status:<12} {ev.seconds:5.1f}s  {ev.detail}"
            )
            if VERBOSITY > 1:  # -vv: the shell equivalent of what the step did or would do
                for c in ev.commands:
                    self.line(f"    $ {c}")
        elif isinstance(ev, Notice):
            self.line(f"! {ev.step:<12} {ev.host:<16} {ev.text}")
        elif isinstance(ev, LogLine) and VERBOSITY > 0:
            self.line(f"  {ev.step:<12} {ev.host:<16} {ev.text}")
        elif isinstance(ev, StepFailed):
            self.line(f"x {ev.step:<12} {ev.host:<16} failed")
            self.line(f"  cause: {ev.cause}")
            if ev.fix:
                self.line(f"  fix:   {ev.fix}")
            if ev.evidence and ev.evidence != ev.cause:
                self.line(f"  evidence: {ev.evidence.splitlines()[-1][:300]}")
        elif isinstance(ev, (RunFinished, GcFinished)):
            self._clear()  # the command's own report follows

    def line(self, text: str) -> None:
        """One line of text, above the progress line (which is drawn again below it)."""
        self._clear()
        print(text, file=self.stream, flush=True)
        if self._progress is not None:
            self._draw()

    def _draw(self) -> None:
        from regwizard.progress import text as progress_text

        ev = self._progress
        if ev is None:
            return
        width = max(20, _columns(self.stream) - 1)  # a wrapped line cannot be rewritten
        text = f"  {ev.step:<12} {ev.host:<16} {progress_text(ev)}"[:width]
        self.stream.write("\r" + text.ljust(self._shown))
        self.stream.flush()
        self._shown = len(text)

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0


def _isatty(stream) -> bool:  # noqa: ANN001
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _columns(stream) -> int:  # noqa: ANN001
    try:
        cols = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 80
    return cols if cols > 0 else 80  # a terminal that does not say its size (0)


def stderr_printer() -> StderrPrinter:
    """The printer every command's events go through (see StderrPrinter)."""
    return StderrPrinter()
