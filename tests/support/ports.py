"""free_port(): a TCP port on 127.0.0.1 that was free a moment ago (bound to port 0,
then released), for the servers the Python tests start."""
import socket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
