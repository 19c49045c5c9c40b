"""Run ``regwizard.cli.main`` in-process with every side effect made impossible.

Deny by default: the engine, doctor, gc, adopt, the lab, the wizard and `serve`'s web
server are fakes that record their calls; SSH (hosts.connect), sockets, name lookups and
subprocesses raise SandboxViolation; file writes and removals outside the sandbox
directory raise too. A command that gets past its input checks meets a fake, never the
machine or the network. Used by test_cli_input.py and test_cli_fuzz.py.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import regwizard
import regwizard.adopt
import regwizard.cli.adopt
import regwizard.cli.apply
import regwizard.cli.common
import regwizard.cli.doctor
import regwizard.cli.lab
import regwizard.cli.plans
import regwizard.cli.serve
import regwizard.cli.wizard
import regwizard.doctor
import regwizard.engine
import regwizard.gc
import regwizard.hosts
import regwizard.plan
import regwizard.registry_api
from regwizard.cli import main as cli_main
from regwizard.errors import RegwizardError
from regwizard.events import RunResult


class SandboxViolation(BaseException):
    """Something tried to reach the machine or the network. A BaseException, so no
    ``except Exception`` in the code under test can swallow it."""


@dataclass
class Outcome:
    rc: int | None  # main's return value, or SystemExit's code
    out: str
    err: str
    calls: list[str] = field(default_factory=list)


def _deny(what: str):  # noqa: ANN202
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise SandboxViolation(f"{what} called in the sandbox: {args!r:.200}")

    return refuse


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Sandbox:
    """``with Sandbox(root) as box: box.run(argv, stdin=b"...")``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self.calls: list[str] = []
        self.engine_result = RunResult(ok=True)
        self._mp = pytest.MonkeyPatch()

    # -- what a command may touch

    def inside(self, path: object) -> bool:
        if isinstance(path, int):  # a file descriptor: already opened, so already checked
            return True
        try:
            p = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return p == str(self.root) or p.startswith(str(self.root) + os.sep)

    def _guard_path(self, name: str, real):  # noqa: ANN001, ANN202
        def guarded(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if not self.inside(path):
                raise SandboxViolation(f"{name}({path!r}) outside the sandbox")
            return real(path, *args, **kwargs)

        return guarded

    def _guard_two(self, name: str, real):  # noqa: ANN001, ANN202
        def guarded(src, dst, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if not (self.inside(src) and self.inside(dst)):
                raise SandboxViolation(f"{name}({src!r}, {dst!r}) outside the sandbox")
            return real(src, dst, *args, **kwargs)

        return guarded

    def _guards(self, mp: pytest.MonkeyPatch) -> None:
        """Active only while main runs: pytest itself writes outside the sandbox."""
        real_open, real_os_open = io.open, os.open

        def guarded_open(file, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if any(c in mode for c in "wax+") and not self.inside(file):
                raise SandboxViolation(f"open({file!r}, {mode!r}) outside the sandbox")
            return real_open(file, mode, *args, **kwargs)

        def guarded_os_open(path, flags, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if flags & _WRITE_FLAGS and not self.inside(path):
                raise SandboxViolation(f"os.open({path!r}) for writing outside the sandbox")
            return real_os_open(path, flags, *args, **kwargs)

        mp.setattr(io, "open", guarded_open)
        mp.setattr(builtins, "open", guarded_open)
        mp.setattr(os, "open", guarded_os_open)
        for name in ("unlink", "remove", "rmdir", "mkdir", "makedirs", "chmod", "chown"):
            mp.setattr(os, name, self._guard_path(f"os.{name}", getattr(os, name)))
        for name in ("replace", "rename", "link", "symlink"):
            mp.setattr(os, name, self._guard_two(f"os.{name}", getattr(os, name)))

        # no network, no name lookups, no programs
        for name in ("connect", "connect_ex", "sendto"):
            mp.setattr(socket.socket, name, _deny(f"socket.{name}"))
        for name in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex"):
            mp.setattr(socket, name, _deny(f"socket.{name}"))
        mp.setattr(subprocess, "Popen", _deny("subprocess.Popen"))
        mp.setattr(os, "system", _deny("os.system"))
        for name in ("execv", "execve", "execvp", "fork", "posix_spawn", "posix_spawnp"):
            if hasattr(os, name):
                mp.setattr(os, name, _deny(f"os.{name}"))
        mp.setattr(regwizard.hosts, "connect", _deny("hosts.connect"))

    def _install(self) -> None:
        mp = self._mp
        calls = self.calls

        # the front ends' back ends: fakes that record the call
        def engine_run(plan, secrets, **kw):  # noqa: ANN001, ANN003, ANN202
            calls.append("engine.run")
            return RunResult(
                ok=self.engine_result.ok,
                steps=list(self.engine_result.steps),
                dry_run=bool(kw.get("dry_run")),
            )

        def diagnose(plan, secrets, *, emit=None, **kw):  # noqa: ANN001, ANN003, ANN202
            from regwizard.doctor import DoctorReport, Finding

            calls.append("doctor.diagnose")
            f = Finding("plan", "this machine", "ok", "fake check")
            if emit:
                emit(f)
            return DoctorReport(findings=[f], seconds=0.01)

        def collect(plan, secrets, **kw):  # noqa: ANN001, ANN003, ANN202
            from regwizard.events import GcResult

            calls.append("gc.collect")
            return GcResult(
                ok=True,
                dry_run=bool(kw.get("dry_run")),
                delete_untagged=bool(kw.get("delete_untagged")),
                bytes_before=3 << 20,
                bytes_after=None if kw.get("dry_run") else 1 << 20,
                blobs=2,
                marked=5,
            )

        def adopt(conn, secrets, container=None, **kw):  # noqa: ANN001, ANN003, ANN202
            from regwizard.adopt import Adoption

            calls.append("adopt.adopt")
            return Adoption(plan=loopback_plan(), notes=["fake adoption"])

        def wizard(plan_path=None, **kw):  # noqa: ANN001, ANN003, ANN202
            calls.append("wizard")
            if plan_path is not None:
                regwizard.plan.load_plan(plan_path)  # what the real one does first
            return 0

        def open_api(plan, secrets, cancel=None, **kw):  # noqa: ANN001, ANN003, ANN202
            from regwizard.registry_api import RegistryApi

            calls.append("registry_api.open_api")
            digest = "sha256:" + "ab" * 32

            def send(method, path, headers, limit):  # noqa: ANN001, ANN202
                calls.append(f"{method} {path}")
                if path.startswith("/v2/_catalog"):
                    return 200, {}, b'{"repositories": ["app"]}'
                if "/tags/list" in path:
                    return 200, {}, b'{"name": "app", "tags": ["1"]}'
                if method == "DELETE":
                    return 202, {}, b""
                body = b'{"mediaType": "%s", "config": {"size": 5}, "layers": [{"size": 7}]}' % (
                    regwizard.registry_api.DOCKER_MANIFEST.encode()
                )
                return 200, {"docker-content-digest": digest}, body

            return RegistryApi(send, "reg.example.test", plan.verify_user)

        def run_server(command, host, port, public_url, ready):  # noqa: ANN001, ANN202
            calls.append(f"serve {host} {port} {public_url} {command}")
            ready()
            return 0

        mp.setattr(regwizard.registry_api, "open_api", open_api)
        mp.setattr(regwizard.cli.serve, "run_server", run_server)
        mp.setattr(regwizard.engine, "run", engine_run)
        mp.setattr(regwizard.doctor, "diagnose", diagnose)
        mp.setattr(regwizard.gc, "collect", collect)
        mp.setattr(regwizard.adopt, "adopt", adopt)
        mp.setattr(regwizard.cli.wizard, "wizard", wizard)
        mp.setattr(regwizard.cli.lab, "wizard", wizard)
        lab = fake_lab(self.root / "lab-state", calls)
        mp.setitem(sys.modules, "regwizard.lab", lab)
        mp.setattr(regwizard, "lab", lab, raising=False)
        lab_ha = fake_lab_ha(lab, calls)
        mp.setitem(sys.modules, "regwizard.lab_ha", lab_ha)
        mp.setattr(regwizard, "lab_ha", lab_ha, raising=False)

        # who is asking: no terminal, no secrets from the environment, home in the sandbox
        def getpass(prompt: str = "", stream=None) -> str:  # noqa: ANN001
            calls.append("getpass")
            return "a-long-password"

        mp.setattr("getpass.getpass", getpass)
        for var in list(os.environ):
            if var.startswith("REGWIZARD_"):
                mp.delenv(var)
        mp.setenv("HOME", str(self.root / "home"))
        mp.chdir(self.root)

    def __enter__(self) -> Sandbox:
        (self.root / "home").mkdir(exist_ok=True)
        self._install()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mp.undo()

    # -- one run

    def run(self, argv: list[str], stdin: bytes = b"", tty: bool = False) -> Outcome:
        """main(argv) with ``stdin`` as its standard input; stdout strict UTF-8 and stderr
        backslashreplace, as Python sets them up on a UTF-8 terminal."""
        self.calls.clear()
        out_b, err_b = io.BytesIO(), io.BytesIO()
        out = io.TextIOWrapper(out_b, encoding="utf-8", errors="strict", write_through=True)
        err = io.TextIOWrapper(
            err_b, encoding="utf-8", errors="backslashreplace", write_through=True
        )
        inp = _Stdin(io.BytesIO(stdin), tty)
        with contextlib.ExitStack() as stack:
            mp = stack.enter_context(pytest.MonkeyPatch.context())
            mp.setattr(sys, "stdin", inp)
            mp.setattr(sys, "stdout", out)
            mp.setattr(sys, "stderr", err)
            self._guards(mp)
            try:
                rc: int | None = cli_main(list(argv))
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) or e.code is None else 1
        return Outcome(
            rc,
            out_b.getvalue().decode("utf-8", "replace"),
            err_b.getvalue().decode("utf-8", "replace"),
            list(self.calls),
        )


class _Stdin(io.TextIOWrapper):
    def __init__(self, raw: io.BytesIO, tty: bool) -> None:
        super().__init__(raw, encoding="utf-8", errors="strict")
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def loopback_plan(
    bcrypt: str = "$2b$04$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0",
):  # noqa: ANN201
    """A valid plan that touches only this machine ("local"): safe even if run."""
    from regwizard.plan import Connection, Plan, RegistrySpec, User

    return Plan(
        registry=RegistrySpec(domain="reg.example.test", ip="127.0.0.1"),
        host=Connection(),
        clients=[Connection()],
        users=[User("alice", bcrypt)],
    )


def fake_lab(state_dir: Path, calls: list[str]) -> types.ModuleType:
    """regwizard.lab with every public function a recording fake; anything else raises."""

    class LabError(RegwizardError):
        pass

    def node(name: str, ip: str, runtimes=("docker",)) -> types.SimpleNamespace:  # noqa: ANN001
        return types.SimpleNamespace(name=name, ip=ip, runtimes=list(runtimes))

    runtime_nodes = {"podman1": ("10.213.47.21", ["docker", "podman"]),
                     "k8s1": ("10.213.47.22", ["containerd"])}  # fmt: skip

    def state(n: int = 0) -> types.SimpleNamespace:
        nodes = {"node1": node("node1", "10.213.47.2"), "node2": node("node2", "10.213.47.3")}
        nodes.update(
            {f"client{i}": node(f"client{i}", f"10.213.47.{10 + i}") for i in range(1, n + 1)}
        )
        return types.SimpleNamespace(
            nodes=nodes, plan_file=str(state_dir / "lab-plan.toml"), verify_password="pw"
        )

    def up(*, plan_out=None, install=True):  # noqa: ANN001, ANN202
        """As the real one ends: the lab plan written to plan_out (or the state dir)."""
        from regwizard.plan import dump_plan

        calls.append("lab.up")
        st = state()
        plan_path = Path(plan_out) if plan_out else state_dir / "lab-plan.toml"
        plan_path.parent.mkdir(parents=True, exist_ok=True)
        plan_path.write_text(dump_plan(loopback_plan()))
        st.plan_file = str(plan_path.resolve())
        return st

    def down(*, quiet=False):  # noqa: ANN001, ANN202
        calls.append("lab.down")

    def ensure_clients(count):  # noqa: ANN001, ANN202
        calls.append("lab.ensure_clients")
        if not 0 <= count <= 32:
            raise LabError(f"{count} extra clients asked for", "choose 0..32")
        return state(count)

    def ensure_runtime_clients():  # noqa: ANN202
        calls.append("lab.ensure_runtime_clients")
        st = state()
        st.nodes.update({n: node(n, ip, rt) for n, (ip, rt) in runtime_nodes.items()})
        return st

    def status():  # noqa: ANN202
        calls.append("lab.status")
        return {"up": False, "nodes": {}}

    def require_linux_root():  # noqa: ANN202
        calls.append("lab.require_linux_root")

    def client_names(st) -> list[str]:  # noqa: ANN001
        return sorted((n for n in st.nodes if n.startswith("client")), key=lambda n: int(n[6:]))

    def lab_plan_text(st, clients=None, *, mirror=False) -> str:  # noqa: ANN001
        from regwizard.plan import dump_plan

        return dump_plan(loopback_plan())

    def upstream_plans():  # noqa: ANN202
        from regwizard.plan import dump_plan

        calls.append("lab.upstream_plans")
        text = dump_plan(loopback_plan())
        return text, text, ["upstream", "mirror"]

    class Lab(types.ModuleType):
        def __getattr__(self, name: str):  # noqa: ANN204
            if name.startswith("_"):  # module scanners (inspect, warnings) probe dunders
                raise AttributeError(name)
            raise SandboxViolation(f"regwizard.lab.{name} is not faked in the sandbox")

    mod = Lab("regwizard.lab")
    for fn in (up, down, ensure_clients, ensure_runtime_clients, status, require_linux_root,
               client_names, lab_plan_text, upstream_plans):  # fmt: skip
        setattr(mod, fn.__name__, fn)
    mod.RUNTIME_NODES = runtime_nodes
    mod.LabError = LabError
    mod.STATE_DIR = state_dir
    mod.MAX_CLIENTS = 32
    return mod


def fake_lab_ha(lab: types.ModuleType, calls: list[str]) -> types.ModuleType:
    """regwizard.lab_ha: ``up`` records its call and returns the fake lab's state with
    node3 and an HA plan; anything else raises."""

    def up(*, plan_out=None, ha_plan_out=None):  # noqa: ANN001, ANN202
        calls.append("lab_ha.up")
        st = lab.up(plan_out=plan_out)
        calls.remove("lab.up")
        st.nodes["node3"] = types.SimpleNamespace(name="node3", ip="10.213.47.4")
        st.ha_plan_file = str(Path(st.plan_file).with_name("ha-plan.toml"))
        return st

    def apply_command(plan_file: str) -> str:
        return f"regwizard apply {plan_file} --s3-secret-file X --password-file Y"

    class LabHA(types.ModuleType):
        def __getattr__(self, name: str):  # noqa: ANN204
            if name.startswith("_"):
                raise AttributeError(name)
            raise SandboxViolation(f"regwizard.lab_ha.{name} is not faked in the sandbox")

    mod = LabHA("regwizard.lab_ha")
    mod.up = up
    mod.apply_command = apply_command
    mod.HA_NODE = "node3"
    mod.S3_BUCKET = "registry"
    mod.S3_ACCESS_KEY = "regwizard"
    mod.WeedPorts = lambda: types.SimpleNamespace(s3=8333)
    return mod


@contextlib.contextmanager
def sandbox(root: Path) -> Iterator[Sandbox]:
    with Sandbox(root) as box:
        yield box
