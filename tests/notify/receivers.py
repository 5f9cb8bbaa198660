"""Real receivers for the notification tests, on 127.0.0.1: an SMTP server (aiosmtpd from
PyPI, with AUTH LOGIN/PLAIN checked against one user) and an HTTP server that accepts any
POST (a webhook, Slack or Mattermost receiver). Prints one JSON line with their ports, then
one JSON line per message received:

  {"kind": "smtp", "from": ..., "to": [...], "data": RAW MESSAGE, "auth": USER}
  {"kind": "http", "path": ..., "headers": {lowercase name: value}, "body": TEXT}

Runs until stdin closes. An HTTP path starting with /fail answers 500 (delivery retries).
"""

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = b"retentiond", b"s3cret-smtp"
lock = threading.Lock()


def emit(record):
    with lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


class Mail:
    async def handle_DATA(self, server, session, envelope):
        emit(
            {
                "kind": "smtp",
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
                "auth": session.auth_data.login.decode() if session.auth_data else None,
            }
        )
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER,
        PASSWORD,
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        emit(
            {
                "kind": "http",
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        failing = self.path.startswith("/fail")
        self.send_response(500 if failing else 200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    smtp_port = free_port()
    controller = Controller(
        Mail(),
        hostname="127.0.0.1",
        port=smtp_port,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=False,
    )
    controller.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    emit({"smtp": smtp_port, "http": http.server_address[1]})
    for _ in sys.stdin:
        pass
    controller.stop()
    http.shutdown()


main()
