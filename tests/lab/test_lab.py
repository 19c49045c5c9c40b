"""The test bed itself: two real hosts on one machine, with real sshd and dockerd."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess

import pytest

from regwizard import lab as labmod

pytestmark = pytest.mark.lab


def ssh(state, node, argv, user="root", **kw):
    return subprocess.run(
        [*labmod.lab_ssh(state, node, user), shlex.join(argv)],
        capture_output=True,
        timeout=60,
        **kw,
    )


def test_ssh_by_key_to_each_node(lab):
    for name in ("node1", "node2"):
        cp = ssh(lab, lab.nodes[name], ["hostname"])
        assert cp.returncode == 0, cp.stderr
        assert cp.stdout.decode().strip() == name


def test_ssh_by_password_to_node1(lab):
    import paramiko

    node = lab.nodes["node1"]
    client = paramiko.SSHClient()
    client.load_host_keys(lab.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        node.ip,
        username=labmod.LAB_USER,
        password=lab.user_password,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    try:
        _, out, _ = client.exec_command("id -un", timeout=10)
        assert out.read().decode().strip() == labmod.LAB_USER
        # sudo asks for the password: a wrong one is refused, the right one works
        stdin, out, err = client.exec_command("sudo -k -S -p '' id -u", timeout=20)
        stdin.write("wrong-password\n")
        stdin.channel.shutdown_write()
        assert out.channel.recv_exit_status() != 0
        stdin, out, _ = client.exec_command("sudo -k -S -p '' id -u", timeout=20)
        stdin.write(lab.user_password + "\n")
        stdin.channel.shutdown_write()
        assert out.read().decode().strip() == "0"
    finally:
        client.close()


def test_each_node_has_its_own_engine(lab):
    ids = set()
    for name in ("node1", "node2"):
        cp = ssh(lab, lab.nodes[name], ["docker", "info", "--format", "{{.Name}} {{.ID}}"])
        assert cp.returncode == 0, cp.stderr
        hostname, engine_id = cp.stdout.decode().split()
        assert hostname == name
        ids.add(engine_id)
    import docker

    node0 = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=30)
    ids.add(node0.info()["ID"])
    assert len(ids) == 3


def test_registry_image_present_on_node1(lab):
    client = labmod.node_docker(lab.nodes["node1"])
    tags = {t for img in client.images.list() for t in img.tags}
    assert {"registry:2", "registry:3"} <= tags


def test_etc_is_separate_between_nodes(lab):
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]
    marker = "10.213.47.99 only-on-node1.lab.test"
    # write in place on node1 (the way regwizard edits /etc/hosts)
    cp = ssh(lab, n1, ["sh", "-c", f"echo '{marker}' >> /etc/hosts"])
    assert cp.returncode == 0
    try:
        assert marker in ssh(lab, n1, ["cat", "/etc/hosts"]).stdout.decode()
        assert marker not in ssh(lab, n2, ["cat", "/etc/hosts"]).stdout.decode()
        assert marker not in open("/etc/hosts").read()
        # a trust directory made on node0 is invisible on the nodes
        probe = "/etc/docker/certs.d/only-on-node0.lab.test"
        os.makedirs(probe, exist_ok=True)
        try:
            cp = ssh(lab, n2, ["sh", "-c", f"test -e {probe} && echo yes || echo no"])
            assert cp.stdout.decode().strip() == "no"
        finally:
            os.rmdir(probe)
    finally:
        ssh(lab, n1, ["sed", "-i", "/only-on-node1/d", "/etc/hosts"])


def test_nodes_reach_each_other_and_only_lab_addresses(lab):
    n1 = lab.nodes["node1"]
    # node2 -> node1 ssh port over the lab bridge
    cp = ssh(
        lab,
        lab.nodes["node2"],
        ["bash", "-c", f"exec 3<>/dev/tcp/{n1.ip}/22 && head -c 4 <&3"],
    )
    assert cp.stdout == b"SSH-"
    with socket.create_connection((n1.ip, 22), timeout=5) as s:
        assert s.recv(4) == b"SSH-"


def test_status_reports_up(lab):
    st = labmod.status()
    assert st["up"] is True
    # node1 and node2, plus whatever was built on demand (lab clients, lab runtimes)
    extra = set(st["nodes"]) - {"node1", "node2"}
    assert {"node1", "node2"} <= set(st["nodes"])
    from regwizard import lab_ha

    assert all(
        n.startswith(labmod.CLIENT_PREFIX) or n in labmod.RUNTIME_NODES or n == lab_ha.HA_NODE
        for n in extra
    )


def test_a_name_missing_from_etc_hosts_never_reaches_a_dns_server(lab):
    """Verification tries a lookup before it waits out dockerd's /etc/hosts cache, so a
    miss must fail inside the machine: every lab dockerd (the nodes' and this machine's,
    which CI starts through the lab) resolves through 127.0.0.1, where nothing listens.
    The name asked for is under the lab's own domain."""
    import docker
    import docker.errors

    name = "no-such-host.lab.test"
    for node in lab.nodes.values():
        cp = labmod.node_exec(node, ["cat", "/etc/resolv.conf"])
        assert cp.stdout.decode() == labmod.LAB_RESOLV_CONF
    root = labmod.node0_dockerd_root()
    assert root is not None, "no dockerd pid file on this machine"
    assert (root / "etc/resolv.conf").read_text() == labmod.LAB_RESOLV_CONF
    # and the same /etc/hosts as this machine's: regwizard's edits reach that dockerd
    with open("/etc/hosts", "rb") as fh:
        assert (root / "etc/hosts").read_bytes() == fh.read()
    local = docker.DockerClient(base_url=f"unix://{labmod.NODE0_SOCK}", timeout=30)
    with pytest.raises(docker.errors.APIError) as err:
        local.images.pull(f"{name}/x", tag="1")
    assert f"lookup {name} on 127.0.0.1:53" in str(err.value), err.value
