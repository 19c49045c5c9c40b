"""Fixtures for the offline engine unit tests."""

from __future__ import annotations

import pytest

from regwizard.htpasswd import hash_password
from regwizard.plan import CertificateSpec, Connection, Plan, RegistrySpec, User

PASSWORD = "correct-horse-42"


@pytest.fixture(scope="session")
def fast_hash() -> str:
    """A real bcrypt hash of PASSWORD, at the cheapest cost (fast tests)."""
    return hash_password(PASSWORD, rounds=4)


@pytest.fixture
def valid_plan(fast_hash: str) -> Plan:
    return Plan(
        registry=RegistrySpec(domain="reg.example.test", ip="10.0.0.2"),
        host=Connection(address="10.0.0.2", label="node1"),
        clients=[Connection(), Connection(address="10.0.0.3", user="admin", sudo=True)],
        certificate=CertificateSpec(key="ecdsa-p256", extra_sans=["registry.lan", "10.0.0.20"]),
        users=[User("alice", fast_hash), User("bob", fast_hash)],
        remove_users=["mallory"],
    )
