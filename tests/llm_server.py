"""A local HTTP server that speaks the chat-completions API (POST /v1/chat/completions).

The only stand-in the agent's tests use: no language model is reachable from this
machine or from CI. It answers with whatever the test sets (``reply``), or misbehaves on
purpose (``mode``): ``garbage`` (a body that is not a completion), ``oversized`` (a reply
longer than the proposer accepts), ``slow`` (answers after ``delay`` seconds), ``error``
(HTTP 500). Every request body is kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    def __init__(self):
        self.reply = "HYPOTHESIS: nothing.\n"
        self.mode = "ok"
        self.delay = 2.0
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, "body": body})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if server.mode == "error":
                    return self._send(500, {"error": {"message": "the model fell over"}})
                if server.mode == "slow":
                    time.sleep(server.delay)
                if server.mode == "garbage":
                    return self._send(200, b"<html>not json</html>")
                content = "x" * (300 * 1024) if server.mode == "oversized" else server.reply
                self._send(200, {"id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                                 "model": body.get("model", "m"),
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": content}}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def _send(self, status, payload):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
