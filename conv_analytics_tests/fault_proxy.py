"""A small HTTP proxy on 127.0.0.1 that a test puts in front of a real server to inject faults.

The test queues faults (a status code with headers, a dropped connection, a slow answer) for the
next requests whose path contains a given text; every other request is forwarded unchanged. The
proxy records every request it saw, so a test can count requests and retries exactly.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-encoding",
    "content-length",
    "host",
    "upgrade",
    "proxy-connection",
}


@dataclass
class Fault:
    kind: str  # "status" | "drop" | "slow"
    path_contains: str = ""
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    fault: str  # "" when forwarded untouched
    at: float


class FaultProxy:
    """`with FaultProxy(upstream) as proxy:` then point the client at `proxy.url`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.forwarder = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server offers

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = proxy._take(self.path)
                with proxy.lock:
                    proxy.seen.append(Seen(self.command, self.path, fault.kind if fault else "", time.monotonic()))
                if fault and fault.kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault and fault.kind == "status":
                    payload = b'{"msg": "injected fault"}'
                    self.send_response(fault.status)
                    for name, value in fault.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault and fault.kind == "slow":
                    time.sleep(fault.delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                answer = proxy.forwarder.request(
                    self.command, proxy.upstream + self.path, headers=headers, data=body or None
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.forwarder.close()

    def add(self, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` requests whose path contains fault.path_contains."""
        with self.lock:
            self.faults.extend([fault] * times)

    def _take(self, path: str) -> Fault | None:
        with self.lock:
            for i, fault in enumerate(self.faults):
                if fault.path_contains in path:
                    return self.faults.pop(i)
        return None

    def requests_to(self, path_contains: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if path_contains in s.path]
