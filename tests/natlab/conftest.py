"""Fixtures of the NAT lab tests: they fail (never skip) when the machine cannot build the lab,
and the session checks that no lab namespace of ours is left behind."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from tests.natlab.lab import NatLab, delete_namespace, our_namespaces, remove_stale_namespaces, requirements_problem

log = logging.getLogger("natlab")


def require_lab() -> None:
    """Fail the test with the reason when the lab cannot be built here."""
    problem = requirements_problem()
    if problem:
        pytest.fail(f"NAT lab unavailable: {problem}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def natlab_namespaces_cleaned() -> Iterator[None]:
    """Before: remove namespaces left by dead runs.  After: none of this run's may remain (any
    that did are removed, and the session fails)."""
    if os.geteuid() == 0 and requirements_problem() is None:
        removed = remove_stale_namespaces()
        if removed:
            log.warning("natlab: removed stale namespaces %s", removed)
    yield
    if os.geteuid() == 0 and requirements_problem() is None:
        left = our_namespaces(os.getpid())
        for name in left:
            delete_namespace(name)
        assert not left, f"the NAT lab left namespaces behind (now removed): {left}"


@pytest.fixture(scope="module")
def node_lab() -> Iterator[NatLab]:
    """A lab with a public DHT of 10 Node nodes and one open host (o1); cells set the routers'
    NAT themselves."""
    require_lab()
    with NatLab(dht="node", dht_size=10, open_hosts=1, timeout=900) as lab:
        yield lab
