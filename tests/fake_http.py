"""A tiny stdlib HTTP server whose handler a test writes, for teachers that misbehave."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server:
    """A tiny stdlib HTTP server whose POST handler is ``handle(handler)``; records requests."""

    def __init__(self, handle):
        self.requests = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile_body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(dict(self.headers))
                handle(self)

            do_GET = do_POST

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/v1/models/x"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def _reply(h, code, body=b"", headers=()):
    h.send_response(code)
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)
