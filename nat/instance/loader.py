#!/usr/bin/env python3
"""nat-agent loader: fetches the agent from the stack's S3 object, checks it, runs it.

Where the agent does not fit EC2's 16 KB of user data beside the bootstrap script (with
keepConnections), user data installs this loader as /usr/local/sbin/nat-agent instead, with
/etc/nat-instance/agent-source.json naming the object (bucket, key, region) and the agent's
SHA-256. The loader downloads the object once (SigV4, the instance profile's keys), refuses
it unless its SHA-256 is the one user data carries (the launch template fingerprints it), keeps
it in /var/lib/nat-instance and runs it with the same arguments. A failure exits 1: systemd
starts the loader again (Restart=always), as it would the agent. Python standard library only.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import sys
import urllib.parse
import urllib.request

SOURCE = os.environ.get("NAT_AGENT_SOURCE", "/etc/nat-instance/agent-source.json")
STATE_DIR = os.environ.get("NAT_STATE_DIR", "/var/lib/nat-instance")
IMDS = "http://169.254.169.254/latest"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def metadata(path: str, token: str) -> str:
    request = urllib.request.Request(f"{IMDS}/{path}",
                                     headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(request, timeout=2) as response:
        return str(response.read().decode())


def credentials() -> tuple[str, str, str]:
    """From the environment, else the instance profile (IMDSv2)."""
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return (os.environ["AWS_ACCESS_KEY_ID"], os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                os.environ.get("AWS_SESSION_TOKEN", ""))
    request = urllib.request.Request(f"{IMDS}/api/token", method="PUT", headers={
        "X-aws-ec2-metadata-token-ttl-seconds": "60"})
    with urllib.request.urlopen(request, timeout=2) as response:
        token = response.read().decode()
    role = metadata("meta-data/iam/security-credentials/", token).split()[0]
    keys = json.loads(metadata(f"meta-data/iam/security-credentials/{role}", token))
    return keys["AccessKeyId"], keys["SecretAccessKey"], keys.get("Token", "")


def object_url(bucket: str, key: str, region: str) -> str:
    override = os.environ.get("AWS_ENDPOINT_URL", "").rstrip("/")
    path = urllib.parse.quote(key, safe="/~")
    if override:  # an S3-compatible endpoint: path-style
        return f"{override}/{bucket}/{path}"
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}/{path}"


def signed_headers(url: str, region: str, keys: tuple[str, str, str],
                   now: datetime.datetime) -> dict[str, str]:
    """Signature Version 4 headers of an S3 GET (its payload: empty)."""
    access_key, secret_key, token = keys
    parsed = urllib.parse.urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": parsed.netloc, "x-amz-content-sha256": EMPTY_SHA256,
               "x-amz-date": amz_date}
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    canonical = "\n".join(["GET", parsed.path, parsed.query,
                           "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names),
                           EMPTY_SHA256])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers


def fetch(source: dict[str, str]) -> bytes:
    url = object_url(source["bucket"], source["key"], source["region"])
    headers = signed_headers(url, source["region"], credentials(),
                             datetime.datetime.now(datetime.timezone.utc))
    headers.pop("host")
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                timeout=10) as response:
        return bytes(response.read())


def main(argv: list[str]) -> int:
    with open(SOURCE) as handle:
        source = json.load(handle)
    path = os.path.join(STATE_DIR, f"nat-agent-{source['sha256'][:16]}.py")
    try:
        with open(path, "rb") as handle:
            kept = handle.read()
    except OSError:
        kept = b""
    if hashlib.sha256(kept).hexdigest() != source["sha256"]:
        try:
            kept = fetch(source)
        except OSError as error:  # URLError and HTTPError are OSErrors
            print(f"nat-agent: FAILED to fetch the agent from s3://{source['bucket']}/"
                  f"{source['key']}: {error}", flush=True)
            return 1
        if hashlib.sha256(kept).hexdigest() != source["sha256"]:
            print(f"nat-agent: FAILED: s3://{source['bucket']}/{source['key']} is not the agent "
                  "this launch template names (its SHA-256 differs): not run", flush=True)
            return 1
        os.makedirs(STATE_DIR, exist_ok=True)
        with open(path + ".new", "wb") as handle:
            handle.write(kept)
        os.replace(path + ".new", path)
    os.execv(sys.executable, [sys.executable, path, *argv])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
