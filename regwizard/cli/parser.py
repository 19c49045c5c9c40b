"""The command line's grammar: every command, argument and help text."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="regwizard",
        description="Set up a private Docker registry (TLS + htpasswd) over SSH, and prove it works.",
    )
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    a = sub.add_parser("apply", help="run a plan headless: converge every step, then verify")
    a.add_argument("plan", help="plan file (TOML)")
    a.add_argument("--dry-run", action="store_true", help="change nothing; show what would change")
    a.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    a.add_argument("--password-file", help="file holding the verify user's password")
    a.add_argument(
        "--lock-wait",
        type=float,
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
    ad.add_argument("target", metavar="HOST", help="[user@]host[:port], e.g. root@10.0.0.2")
    ad.add_argument("--container", help="the registry container (default: found by image)")
    ad.add_argument("-o", "--output", help="write the plan here instead of stdout")
    ad.add_argument("--force", action="store_true", help="overwrite the -o file")
    ad.add_argument("--port", type=int, help="SSH port (default 22, or the one in HOST)")
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
    dr.add_argument(
        "--accept-host-key", action="append", default=[], metavar="SHA256:...",
        help="accept this unknown SSH host key fingerprint (repeatable)",
    )  # fmt: skip

    pl = sub.add_parser("plan", help="plan files")
    plsub = pl.add_subparsers(dest="plan_cmd", metavar="ACTION")
    pn = plsub.add_parser("new", help="write a commented example plan")
    pn.add_argument("-o", "--output", help="write here instead of stdout")

    us = sub.add_parser("user", help="registry users")
    ussub = us.add_subparsers(dest="user_cmd", metavar="ACTION")
    uh = ussub.add_parser("hash", help="prompt for a password and print the bcrypt plan entry")
    uh.add_argument("name")
    uh.add_argument(
        "--cost",
        type=int,
        default=10,
        choices=range(5, 15),
        metavar="5..14",
        help="bcrypt cost (default 10). The registry checks the hash on every request: "
        "each step up doubles its CPU per request (10: ~60 ms; 5, as htpasswd -B: ~2 ms)",
    )

    lab = sub.add_parser("lab", help="the sandbox lab on this machine (Linux, root)")
    labsub = lab.add_subparsers(dest="lab_cmd", metavar="ACTION")
    lu = labsub.add_parser("up", help="build node1 (registry host) and node2 (client)")
    lu.add_argument("-o", "--output", help="where to write the lab plan file")
    lc = labsub.add_parser(
        "clients", help="give the running lab exactly N extra clients (client1..clientN)"
    )
    lc.add_argument("count", type=int, metavar="N")
    lc.add_argument("-o", "--output", help="write a plan whose clients are these N nodes")
    labsub.add_parser("down", help="tear the lab down")
    ls = labsub.add_parser("status", help="show the lab's state")
    ls.add_argument("--json", action="store_true")

    sub.add_parser("demo", help="lab up, then the wizard pre-filled for the lab")
    return p
