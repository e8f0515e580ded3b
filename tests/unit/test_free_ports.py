"""Ports for the local processes the tests and the dev cluster start: never the same one twice in a process (a port
chosen but not yet bound is still free to the kernel)."""

from __future__ import annotations

from modelops.devcluster.cluster import free_port, free_ports


def test_no_port_is_handed_out_twice_even_once_its_socket_is_closed() -> None:
    # 500 draws from the ephemeral range repeat a port with a probability near 1, unless repeats are kept out.
    ports = [free_port() for _ in range(250)] + free_ports(250)
    assert len(set(ports)) == len(ports) == 500
