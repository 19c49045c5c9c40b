"""Fixtures for tests/hosts live in hostlab.py (a uniquely named module, importable by tests)."""

from hostlab import (  # noqa: F401 - fixtures
    isolated_home,
    known_hosts,
    root_conn,
    root_host,
    sshlab,
    test_user,
    user_host,
)
from seaweedlab import seaweed  # noqa: E402, F401 - fixture
