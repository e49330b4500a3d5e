"""A small upstream for the proxy tests, over http or real TLS.

usage: upstream.py NAME DIR [CERT KEY]

Prints its port on the first line of stdout. Paths:
  /slow?ms=N  creates DIR/NAME.slow, waits N ms, then answers
  /health     answers the status written in DIR/NAME.health (200 if none)
  /ws         (an upgrade) answers 101, then echoes raw bytes until closed
  anything    answers 200: `name=NAME sni=SNI path=PATH host=HOST peer=PORT`
              (PORT: the client's, the same for requests on one connection)
SNI is the name the last TLS client sent (`-` for none); with TLS, the
server offers ALPN http/1.1 only.
"""

import os
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NAME, DIR = sys.argv[1], sys.argv[2]
SNI = {"last": "-"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-upstream", NAME)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/ws":
            self.send_response(101)
            self.send_header("upgrade", self.headers.get("upgrade", "-"))
            self.send_header("connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            while True:
                data = self.connection.recv(4096)
                if not data:
                    return
                self.connection.sendall(data)
        if url.path == "/slow":
            open(os.path.join(DIR, NAME + ".slow"), "w").close()
            time.sleep(int(parse_qs(url.query)["ms"][0]) / 1000)
        if url.path == "/health":
            try:
                with open(os.path.join(DIR, NAME + ".health")) as f:
                    status = int(f.read().strip())
            except FileNotFoundError:
                status = 200
            return self.answer(status, "health\n")
        self.answer(
            200,
            f"name={NAME} sni={SNI['last']} path={self.path} host={self.headers.get('host')} peer={self.client_address[1]}\n",
        )


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if len(sys.argv) > 4:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        context.set_alpn_protocols(["http/1.1"])

        def sni_callback(sock, name, ctx):
            SNI["last"] = name or "-"

        context.sni_callback = sni_callback
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


main()
