"""A real HTTP server for the download tests: serves a directory on 127.0.0.1, optionally slowly, optionally as a
hostile mirror would.

Run as its own process (`python http_server.py ROOT --delay S --misbehave /PATH=MODE ...`); it prints its port on
the first line. The delay per request lets a test kill a download part-way through. A path given with --misbehave
is answered in one of these ways instead of with its file:
  endless          200 without a length, listing-like lines forever, as fast as the client takes them
  trickle          200 with the file's true length, then one byte every --trickle-s seconds
  trickle-headers  the status line and headers themselves, one byte every --trickle-s seconds
  gzip             a gzip bomb: 200 with Content-Encoding gzip, a small body that inflates to 256 MiB of zeros
  huge-length      200 declaring a Content-Length of 10^12 bytes, then the file's true bytes
"""

import argparse
import contextlib
import functools
import gzip
import io
import sys
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

LINE = b"0" * 64 + b"  records100/00000/00001_lr.dat\n"


def _bomb() -> bytes:
    """256 MiB of zeros, gzipped (~250 kB), built in pieces so the server never holds the inflated bytes."""
    buf = io.BytesIO()
    zeros = bytes(1 << 20)
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6) as f:
        for _ in range(256):
            f.write(zeros)
    return buf.getvalue()


class Handler(SimpleHTTPRequestHandler):
    delay = 0.0
    trickle_s = 0.5
    misbehave: dict = {}  # noqa: RUF012 (set once, before serving)
    bomb = b""

    def do_GET(self):
        time.sleep(self.delay)
        mode = self.misbehave.get(self.path)
        if mode is None:
            super().do_GET()
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            getattr(self, "_" + mode.replace("-", "_"))()

    def _file(self) -> bytes:
        with open(self.translate_path(self.path), "rb") as f:
            return f.read()

    def _endless(self):
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        block = LINE * 2048
        while True:
            self.wfile.write(block)

    def _trickle(self):
        data = self._file()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            time.sleep(self.trickle_s)

    def _trickle_headers(self):
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"s" * 10_000 + b"\r\n\r\n"
        for i in range(len(head)):
            self.wfile.write(head[i : i + 1])
            self.wfile.flush()
            time.sleep(self.trickle_s)

    def _gzip(self):
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(self.bomb)))
        self.end_headers()
        self.wfile.write(self.bomb)

    def _huge_length(self):
        data = self._file()
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--trickle-s", type=float, default=0.5)
    parser.add_argument("--misbehave", action="append", default=[], help="/PATH=MODE (see the module doc)")
    args = parser.parse_args()
    Handler.delay, Handler.trickle_s = args.delay, args.trickle_s
    Handler.misbehave = dict(item.split("=", 1) for item in args.misbehave)
    if "gzip" in Handler.misbehave.values():
        Handler.bomb = _bomb()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=args.root))
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
