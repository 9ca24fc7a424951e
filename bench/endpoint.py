"""A local HTTP endpoint for URL-task benchmarks, run as a child process.

``python -m bench.endpoint recorder`` serves ``tests.recorder.start_recorder()`` (a
ThreadingHTTPServer that records every request); ``python -m bench.endpoint minimal`` serves
a bare asyncio responder that answers every request with ``200 {"ok": true}``. Either binds
127.0.0.1 on a free port, prints its base URL on stdout and runs until stdin is closed or it
gets SIGTERM. Running it in its own process keeps it from competing with the benchmark's
client threads for the GIL.

:class:`Endpoint` starts and stops one from a benchmark, by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # python bench/endpoint.py: make ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KINDS = ("recorder", "minimal")
REPLY = b'{"ok": true}'


async def _minimal_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                key = key.strip().lower()
                if key == b"content-length":
                    length = int(value.strip() or 0)
                elif key == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await reader.readexactly(length)
            body = b"" if head.startswith(b"HEAD ") else REPLY
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(REPLY), body)
            )
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        writer.close()


async def _serve_minimal(ready: threading.Event, url: list[str], stop: asyncio.Event) -> None:
    server = await asyncio.start_server(_minimal_client, "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    url.append(f"http://127.0.0.1:{port}")
    ready.set()
    async with server:
        await stop.wait()


def serve(kind: str) -> None:
    """Run the endpoint in this process until stdin closes (or SIGTERM)."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if kind == "recorder":
        from tests.recorder import start_recorder

        recorder = start_recorder()
        print(recorder.url, flush=True)
        sys.stdin.read()
        recorder.close()
        return
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    url: list[str] = []
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(_serve_minimal(ready, url, stop),))
    thread.start()
    ready.wait(10)
    print(url[0], flush=True)
    sys.stdin.read()
    loop.call_soon_threadsafe(stop.set)
    thread.join(5)


class Endpoint:
    """The endpoint as a child process in its own session; stopped by PID."""

    def __init__(self, kind: str, logfile: Path) -> None:
        if kind not in KINDS:
            raise ValueError(f"endpoint must be one of {KINDS}")
        self.kind = kind
        self.logfile = logfile
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 20) -> Endpoint:
        root = Path(__file__).resolve().parents[1]
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.endpoint", self.kind],
                cwd=root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line and time.monotonic() < deadline and self.proc.poll() is None:
            line = self.proc.stdout.readline()
        self.url = line.decode().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"endpoint {self.kind} did not start; see {self.logfile}")
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: python -m bench.endpoint {{{','.join(KINDS)}}}")
    serve(sys.argv[1])
