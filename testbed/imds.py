"""A stand-in for the EC2 instance metadata service (IMDSv2), run inside a NAT's namespace on
169.254.169.254:80 (standalone: no package imports).

    imds.py INSTANCE_ID ZONE     serves the token, instance-id and availability zone;
                                 everything else is 404 (no instance profile: the test bed
                                 gives the agent its keys in the environment)
"""

from __future__ import annotations

import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def handler(instance_id: str, zone: str) -> type[BaseHTTPRequestHandler]:
    token = secrets.token_hex(16)
    answers = {"/latest/meta-data/instance-id": instance_id,
               "/latest/meta-data/placement/availability-zone": zone}

    class Metadata(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            if self.path == "/latest/api/token" and \
                    self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                self._answer(200, token)
            else:
                self._answer(400, "")

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") != token:
                self._answer(401, "")  # IMDSv2 required, as on the NATs
            elif self.path in answers:
                self._answer(200, answers[self.path])
            else:
                self._answer(404, "")

        def _answer(self, code: int, body: str) -> None:
            self.send_response(code)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_: object) -> None:
            pass

    return Metadata


def main(argv: list[str]) -> int:
    server = ThreadingHTTPServer(("169.254.169.254", 80), handler(argv[0], argv[1]))
    print("listening", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
