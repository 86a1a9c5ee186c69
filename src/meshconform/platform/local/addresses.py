"""Loopback addresses: each local pod gets its own 127.x.y.z address, like a pod IP."""

from __future__ import annotations

import random
import socket


def _bindable(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def pick_block(rng: random.Random | None = None, attempts: int = 50) -> str:
    """A free 127.A.B.0/24 for one run (chosen at random, checked on the gateway's admin port)."""
    rng = rng or random.Random()
    for _ in range(attempts):
        block = f"127.{rng.randint(10, 250)}.{rng.randint(0, 255)}"
        if all(_bindable(f"{block}.{host}", 15000) for host in (1, 2, 3)):
            return block
    raise OSError("no free loopback block found")


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])


def accepting(ip: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False
