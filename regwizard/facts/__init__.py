"""Facts: what a host or a registry is like, read in one place and interpreted once.

Modules here are pure interpretation (``registry``, ``hostfile``, ``certsd``) plus the
one place that reads them through a host (``read``). adopt, doctor and the steps all
use these; none of them parses inspect data, /etc/hosts or certs.d on its own.
"""
