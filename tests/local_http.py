"""A file server on 127.0.0.1 for the download tests (they never reach the internet)."""

from __future__ import annotations

import functools
import http.server
import threading
from contextlib import contextmanager
from pathlib import Path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``headers_for`` (file name -> extra response headers) lets a test play a hub's ETag."""

    headers_for: dict = {}

    def end_headers(self):
        for key, value in self.headers_for.get(self.path.rsplit("/", 1)[-1], {}).items():
            self.send_header(key, value)
        super().end_headers()

    def log_message(self, *args):  # keep the test output clean
        pass


@contextmanager
def serve(root: Path, headers: dict | None = None):
    """Serve ``root`` on 127.0.0.1 at a free port; yields the base URL (ending in /)."""
    handler = type("Handler", (QuietHandler,), {"headers_for": headers or {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
