"""An HTTP proxy in front of moto_server, on the internet host: what the NATs' agents call as
"AWS". While the file named by its second argument exists, it answers every call with
HTTP 200 and a body cut off after 30 bytes (a proxy or a connection reset mid-answer);
otherwise it passes calls through unchanged. With JOURNAL, it appends the parameters of
each AssociateAddress that succeeded there, one JSON line each (moto keeps an Elastic IP on
the interface's primary address whatever PrivateIpAddress said: the test bed reads the
address AWS would use from here).

    python apiproxy.py PORT FAULT_FILE UPSTREAM_URL [JOURNAL]
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request


def main() -> int:
    port, fault_file, upstream = int(sys.argv[1]), sys.argv[2], sys.argv[3].rstrip("/")
    journal = sys.argv[4] if len(sys.argv) > 4 else ""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # S3 objects (the agent, with keepConnections)
            self.do_POST(method="GET")

        def do_POST(self, method: str = "POST") -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = urllib.request.Request(upstream + self.path,
                                             data=body if method == "POST" else None,
                                             method=method,
                                             headers={k: v for k, v in self.headers.items()
                                                      if k.lower() != "host"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, answer = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, answer = error.code, error.read()
            if journal and status == 200 and b"Action=AssociateAddress" in body:
                with open(journal, "a") as handle:  # what moto forgets: the private address
                    handle.write(json.dumps(dict(urllib.parse.parse_qsl(body.decode()))) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer[:30] if os.path.exists(fault_file) else answer)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print("listening", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
