"""A real HTTP server for URL-task tests that records every request it receives."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """Serves on 127.0.0.1 and keeps what arrived, by path."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def requests_to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def handle_any(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Received(self.command, parts.path, parts.query, dict(self.headers.items()), body)
            with recorder.lock:
                recorder.received.append(seen)
                count = recorder.counts[parts.path] = recorder.counts.get(parts.path, 0) + 1
            status, payload, ctype = 200, b"", "application/json"
            if parts.path.startswith("/slow"):
                time.sleep(float(parse_qs(parts.query).get("delay", ["5"])[0]))
            if parts.path.startswith("/flaky") and count == 1:
                status = 503
            if parts.path == "/missing":
                status, payload, ctype = 404, b"no such thing", "text/plain"
            if parts.path == "/binary":
                payload, ctype = bytes(range(256)), "application/octet-stream"
            if not payload and status == 200:
                payload = json.dumps(
                    {"method": self.command, "query": parts.query, "body": body.decode("latin-1")}
                ).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_HEAD = handle_any

    return Handler


def start_recorder() -> Recorder:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    recorder = Recorder(server)
    server.RequestHandlerClass = make_handler(recorder)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return recorder
