"""``regwizard images PLAN`` lists what the registry stores; ``regwizard images rm PLAN
REPO:TAG`` deletes a tag's manifest. Both talk to the registry's API as the plan's verify
user, over a connection verified against the plan's trust anchor."""

from __future__ import annotations

import json
import sys

from regwizard.cli.common import read_connection_secrets, read_verify_password, stdin_is_tty
from regwizard.errors import RegwizardError


def _open(args, plan):  # noqa: ANN001, ANN202
    from regwizard import registry_api
    from regwizard.plan import Secrets

    secrets = Secrets(accepted_host_keys=set(args.accept_host_key))
    if plan.certificate.mode != "provided":  # the anchor is read on the registry host
        read_connection_secrets(_registry_only(plan), secrets)
    secrets.verify_password = read_verify_password(args.password_file, plan.verify_user)
    return registry_api.open_api(plan, secrets)


def _registry_only(plan):  # noqa: ANN001, ANN202
    """The plan with no clients: only the registry host is connected to."""
    import copy

    p = copy.copy(plan)
    p.clients = []
    return p


def images_cli(args) -> int:  # noqa: ANN001
    from regwizard.plan import load_plan
    from regwizard.registry_api import REPO_RE, human_size, short_digest

    plan = load_plan(args.plan)
    if args.repo is not None and not REPO_RE.fullmatch(args.repo):
        raise RegwizardError(
            f"--repo {args.repo[:120]!r} is not a repository name",
            "give a name as `regwizard images PLAN` lists it, e.g. team/app",
        )
    api = _open(args, plan)
    repos = [args.repo] if args.repo else api.all_repositories()
    rows = []
    for repo in repos:
        for tag in api.all_tags(repo):
            info = api.tag_info(repo, tag)
            if args.json:
                rows.append(info.to_json())
                continue
            if not rows:
                print(f"{'REPOSITORY':<40} {'TAG':<20} {'DIGEST':<12}  SIZE", flush=True)
            rows.append(info)
            size = human_size(info.size) if not info.error else "?"
            extra = f"  ({len(info.platforms)} platforms)" if info.platforms else ""
            err = f"  ! {info.error}" if info.error else ""
            print(
                f"{repo:<40} {tag:<20} {short_digest(info.digest):<12}  {size}{extra}{err}",
                flush=True,
            )
    if args.json:
        print(json.dumps({"registry": api.address, "images": rows}, indent=2))
    else:
        print(f"images: {len(rows)} tag(s) on {api.address}", file=sys.stderr)
    return 0


def images_rm_cli(args) -> int:  # noqa: ANN001
    from regwizard.plan import load_plan
    from regwizard.registry_api import parse_ref

    plan = load_plan(args.plan)
    repo, ref = parse_ref(args.ref, plan.registry.address)
    if not args.yes and not stdin_is_tty():
        raise RegwizardError(
            f"deleting {args.ref} needs a confirmation, and stdin is not a terminal",
            "pass --yes to delete without asking",
        )
    api = _open(args, plan)
    digest = api.resolve(repo, ref)
    what = f"{repo}:{ref}" if ref != digest else f"{repo}@{digest}"
    if not args.yes:
        print(
            f"delete {what} ({digest}) from {api.address}?\n"
            f"every tag of {repo} that points at this digest goes too; the disk space comes "
            "back only after garbage collection",
            file=sys.stderr,
        )
        try:
            answer = input("type yes to delete: ")
        except EOFError:
            answer = ""
        if answer.strip().lower() != "yes":
            print("images rm: nothing deleted", file=sys.stderr)
            return 1
    try:
        api.delete(repo, digest)
    except RegwizardError as e:  # the registry refused (405: delete not enabled): exit 1
        print(f"regwizard: {e}", file=sys.stderr)
        return 1
    print(f"deleted {what} ({digest})", file=sys.stderr)
    print(digest)
    return 0
