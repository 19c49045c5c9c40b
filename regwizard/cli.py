"""Command line: the wizard, the headless engine, and the lab.

    regwizard                      open the wizard (Welcome)
    regwizard PLAN.toml            open the wizard on Review, pre-filled
    regwizard apply PLAN.toml      run the plan headless and verify it
    regwizard adopt USER@HOST      read an existing registry, write the plan of its repair
    regwizard doctor PLAN.toml     check a setup read-only; name each problem and its fix
    regwizard plan new [-o FILE]   write a commented example plan
    regwizard user hash NAME       print a bcrypt line for the plan
    regwizard lab up|down|status   the sandbox lab on this machine (Linux, root)
    regwizard lab clients N        N extra client nodes, built on demand (fan-out)
    regwizard demo                 lab up, then the wizard pre-filled for the lab

Textual is imported only when a screen is opened: the engine never needs it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from regwizard.errors import RegwizardError


def _err(msg: str) -> None:
    print(f"regwizard: {msg}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or (argv[0].endswith(".toml") and len(argv) == 1):
            return _wizard(Path(argv[0]) if argv else None)
        args = _parser().parse_args(argv)
        if args.cmd == "apply":
            return _apply(args)
        if args.cmd == "adopt":
            from regwizard.adopt import adopt_cli

            return adopt_cli(args)
        if args.cmd == "doctor":
            from regwizard.doctor import doctor_cli

            return doctor_cli(args)
        if args.cmd == "plan" and args.plan_cmd == "new":
            return _plan_new(args)
        if args.cmd == "user" and args.user_cmd == "hash":
            return _user_hash(args)
        if args.cmd == "lab":
            return _lab(args)
        if args.cmd == "demo":
            return _demo()
        _parser().print_help(sys.stderr)
        return 2
    except RegwizardError as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


# ---------------------------------------------------------------- wizard


def _wizard(plan_path: Path | None, *, verify_password: str = "") -> int:
    from regwizard.plan import Plan, Secrets, load_plan

    plan: Plan | None = load_plan(plan_path) if plan_path else None
    from regwizard.app import RegwizardApp
    from regwizard.engine import EngineBackend

    app = RegwizardApp(
        backend=EngineBackend(),
        plan=plan,
        plan_path=plan_path,
        start_at="review" if plan else "welcome",
        secrets=Secrets(verify_password=verify_password),
    )
    rc = app.run()
    return rc if isinstance(rc, int) else (app.return_code or 0)


# ---------------------------------------------------------------- lab


def _lab(args) -> int:
    from regwizard import lab

    if args.lab_cmd == "up":
        state = lab.up(plan_out=args.output)
        print(f"lab is up: node1 {state.nodes['node1'].ip} (registry host), ", end="")
        print(f"node2 {state.nodes['node2'].ip} (client), this machine is node0")
        print(f"plan: {state.plan_file}")
        print(f"verify password: in {lab.STATE_DIR / 'verify-password'} (mode 0600)")
        print(
            f"next: regwizard apply {state.plan_file} --password-file {lab.STATE_DIR}/verify-password"
        )
        return 0
    if args.lab_cmd == "clients":
        state = lab.ensure_clients(args.count)
        names = lab.client_names(state)
        for name in names:
            print(f"{name} {state.nodes[name].ip} (client)")
        print(f"the lab has {len(names)} extra client(s)")
        if args.output and names:
            out = Path(args.output)
            out.write_text(lab.lab_plan_text(state, clients=names))
            os.chmod(out, 0o600)
            print(f"plan: {out.resolve()} (registry on node1, clients {', '.join(names)})")
        return 0
    if args.lab_cmd == "down":
        lab.down()
        return 0
    if args.lab_cmd == "status":
        lab.require_linux_root()
        st = lab.status()
        if args.json:
            print(json.dumps(st, indent=2))
        else:
            print("lab is " + ("up" if st["up"] else "down"))
            for name, info in st["nodes"].items():
                parts = " ".join(f"{k}={'ok' if v is True else v}" for k, v in info.items())
                print(f"  {name}: {parts}")
            if st.get("plan_file"):
                print(f"  plan: {st['plan_file']}")
        return 0 if st["up"] else 1
    _parser().parse_args(["lab", "--help"])
    return 2


def _demo() -> int:
    from regwizard import lab

    state = lab.up()
    return _wizard(Path(state.plan_file), verify_password=state.verify_password)


# ---------------------------------------------------------------- plan / user


def _plan_new(args) -> int:
    from regwizard.plan import EXAMPLE_PLAN

    if args.output:
        path = Path(args.output)
        if path.exists():
            raise RegwizardError(f"{path} already exists", "choose another -o path or remove it")
        path.write_text(EXAMPLE_PLAN)
        os.chmod(path, 0o600)
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(EXAMPLE_PLAN)
    return 0


def _user_hash(args) -> int:
    from regwizard import htpasswd
    from regwizard.plan import check_username

    msg = check_username(args.name)
    if msg:
        raise RegwizardError(f"user name {args.name!r}: {msg}")
    if sys.stdin.isatty():
        pw = getpass.getpass(f"password for {args.name}: ")
        if pw != getpass.getpass("again: "):
            raise RegwizardError("the passwords differ", "type the same password twice")
    else:
        pw = sys.stdin.readline().rstrip("\n")
    if not pw:
        raise RegwizardError("empty password", "choose a password of at least 8 characters")
    print("[[users]]")
    print(f'name = "{args.name}"')
    print(f'bcrypt = "{htpasswd.hash_password(pw, args.cost)}"')
    return 0


# ---------------------------------------------------------------- apply


def read_connection_secrets(plan, secrets) -> None:
    """SSH and sudo passwords for headless runs: environment, else a prompt on a TTY.

    REGWIZARD_SSH_PASSWORD and REGWIZARD_SUDO_PASSWORD serve every host that needs
    one; a sudo password defaults to the same user's SSH password.
    """
    conns = [plan.host, *plan.clients]
    for c in conns:
        if c.is_local:
            continue
        who = f"{c.user}@{c.address}"
        if c.auth == "password" and c.address not in secrets.ssh_passwords:
            pw = os.environ.get("REGWIZARD_SSH_PASSWORD") or _ask(
                f"SSH password for {who}: ", "REGWIZARD_SSH_PASSWORD", who
            )
            secrets.ssh_passwords[c.address] = pw
        if c.sudo and c.user != "root" and c.address not in secrets.sudo_passwords:
            pw = (
                os.environ.get("REGWIZARD_SUDO_PASSWORD")
                or secrets.ssh_passwords.get(c.address)
                or _ask(f"sudo password for {who}: ", "REGWIZARD_SUDO_PASSWORD", who)
            )
            secrets.sudo_passwords[c.address] = pw


def _ask(prompt: str, env: str, who: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    raise RegwizardError(
        f"no password for {who}",
        f"set {env}, or run on a terminal to be asked",
    )


def read_verify_password(password_file: str | None, user: str) -> str:
    if password_file:
        try:
            return Path(password_file).read_text().splitlines()[0]
        except (OSError, IndexError) as e:
            raise RegwizardError(
                f"cannot read the password file {password_file}: {e}",
                "give a readable file whose first line is the password",
            ) from e
    env = os.environ.get("REGWIZARD_PASSWORD")
    if env:
        return env
    if sys.stdin.isatty():
        return getpass.getpass(f"password of registry user {user} (for verification): ")
    raise RegwizardError(
        f"no password for the verify user {user}",
        "pass --password-file FILE, set REGWIZARD_PASSWORD, or run on a terminal",
    )


def _apply(args) -> int:
    from regwizard.engine import apply_cli

    return apply_cli(args)
