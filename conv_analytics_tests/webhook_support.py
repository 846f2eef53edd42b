"""A chat webhook on loopback for the alert tests: a real HTTP server on a free port, in a thread."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A webhook on 127.0.0.1 that records each JSON body and answers from a script of statuses."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.accepted: list[dict] = []
        self.script: list[int] = []  # statuses to answer first; then 200
        self.retry_after = "0"  # sent with 429 and 503
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.bodies.append(body)
                status = receiver.script.pop(0) if receiver.script else 200
                if status == 200:
                    receiver.accepted.append(json.loads(body))
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("Retry-After", receiver.retry_after)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/hook-secret-5b1f"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
