"""``regwizard lab up|clients|down|status`` and ``regwizard demo``."""

from __future__ import annotations

import json
from pathlib import Path

from regwizard.cli.common import output_path
from regwizard.cli.parser import UsageError
from regwizard.cli.wizard import wizard
from regwizard.plan import write_private_text


def lab_cli(args) -> int:
    from regwizard import lab

    if args.lab_cmd == "up":
        # checked first: lab up builds the lab for minutes before it writes the plan
        out = None if args.output is None else str(output_path(args.output, make_parents=True))
        if getattr(args, "ha", False):
            return _lab_up_ha(out)
        state = lab.up(plan_out=out)
        print(f"lab is up: node1 {state.nodes['node1'].ip} (registry host), ", end="")
        print(f"node2 {state.nodes['node2'].ip} (client), this machine is node0")
        print(f"plan: {state.plan_file}")
        print(f"verify password: in {lab.STATE_DIR / 'verify-password'} (mode 0600)")
        print(
            f"next: regwizard apply {state.plan_file} --password-file {lab.STATE_DIR}/verify-password"
        )
        return 0
    if args.lab_cmd == "clients":
        out = None if args.output is None else output_path(args.output, overwrite=True)
        state = lab.ensure_clients(args.count)
        names = lab.client_names(state)
        for name in names:
            print(f"{name} {state.nodes[name].ip} (client)")
        print(f"the lab has {len(names)} extra client(s)")
        if out is not None and names:
            write_private_text(out, lab.lab_plan_text(state, clients=names))
            print(f"plan: {out.resolve()} (registry on node1, clients {', '.join(names)})")
        return 0
    if args.lab_cmd == "runtimes":
        out = None if args.output is None else output_path(args.output, overwrite=True)
        state = lab.ensure_runtime_clients()
        names = list(lab.RUNTIME_NODES)
        for name in names:
            n = state.nodes[name]
            print(f"{name} {n.ip} (client: {', '.join(n.runtimes)})")
        if out is not None:
            write_private_text(out, lab.lab_plan_text(state, clients=["node0", *names]))
            print(f"plan: {out.resolve()} (registry on node1, clients node0, {', '.join(names)})")
        return 0
    if args.lab_cmd == "upstream":
        out = output_path(args.output, overwrite=True)
        mirror = None if args.mirror_plan is None else output_path(args.mirror_plan, overwrite=True)
        upstream_text, mirror_text, about = lab.upstream_plans()
        write_private_text(out, upstream_text)
        print(f"upstream plan: {out.resolve()} ({about[0]})")
        if mirror is not None:
            write_private_text(mirror, mirror_text)
            print(f"mirror plan: {mirror.resolve()} ({about[1]})")
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
    raise UsageError(f"lab: unknown action {args.lab_cmd!r}", "see `regwizard lab --help`")


def _lab_up_ha(out: str | None) -> int:
    from regwizard import lab, lab_ha

    state = lab_ha.up(plan_out=out)
    n1, n3 = state.nodes["node1"], state.nodes[lab_ha.HA_NODE]
    print(f"lab is up: node1 {n1.ip} and node3 {n3.ip} (registry hosts), ", end="")
    print(f"node2 {state.nodes['node2'].ip} (client), this machine is node0")
    print(
        f"SeaweedFS: master, filer, S3 (http://{n1.ip}:{lab_ha.WeedPorts().s3}) and a volume "
        f"server on node1; a volume server on node3; bucket {lab_ha.S3_BUCKET}"
    )
    print(f"plan: {state.plan_file} (one host)")
    print(f"HA plan: {state.ha_plan_file} (node1 + replica node3, S3 storage)")
    print(f"S3 secret key of {lab_ha.S3_ACCESS_KEY}: in {lab.STATE_DIR / 's3-secret'} (0600)")
    print(f"verify password: in {lab.STATE_DIR / 'verify-password'} (mode 0600)")
    print(f"next: {lab_ha.apply_command(state.ha_plan_file)}")
    return 0


def demo() -> int:
    from regwizard import lab

    state = lab.up()
    return wizard(Path(state.plan_file), verify_password=state.verify_password)
