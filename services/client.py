"""A minimal command-line client of /cgi/upload (the same request as the manual's curl line)."""
from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from pathlib import Path


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_upload(url: str, catalogue: Path, *, event: str, token: str, mjd: float, exptime_s: float,
                match_dist_arcsec: float, force_filter: str, dry_run: bool) -> tuple[int, str]:
    fields = {"EventID": event, "hashtag": token, "MJD": repr(mjd), "expTime": repr(exptime_s),
              "matchDist": repr(match_dist_arcsec), "forceFilter": force_filter, "dryRun": "1" if dry_run else "0",
              "noPlot": "1", "outputFormat": "json"}
    body, content_type = multipart(fields, "sexCat", catalogue.name, catalogue.read_bytes())
    request = urllib.request.Request(f"{url.rstrip('/')}/cgi/upload", data=body, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def admin_call(url: str, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """A JSON call to the admin API with the token as a bearer."""
    import json

    request = urllib.request.Request(f"{url.rstrip('/')}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
