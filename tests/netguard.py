"""Block every socket connection that is not to loopback (imported by subprocess tests).

Use: ``python -c "import netguard; ..."`` with tests/ on PYTHONPATH. Any attempt to
reach another address raises ``NetworkBlocked`` and is recorded in
``$NETGUARD_LOG`` so the parent test can assert nothing tried.
"""

from __future__ import annotations

import ipaddress
import os
import socket

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkBlocked(OSError):
    pass


def _record(what: str) -> None:
    path = os.environ.get("NETGUARD_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(what + "\n")


def _loopback(host: str) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address) -> None:
    if sock.family == socket.AF_UNIX:
        return
    host = address[0] if isinstance(address, tuple) else str(address)
    if not _loopback(host):
        _record(f"connect {address}")
        raise NetworkBlocked(f"network access blocked: {address}")


def _connect(self, address):
    _check(self, address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    _check(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):
    if host is not None and not _loopback(str(host)):
        _record(f"resolve {host}")
        raise socket.gaierror(f"name resolution blocked: {host}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.getaddrinfo = _getaddrinfo
