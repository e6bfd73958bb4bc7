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


class ServerUnreachable(ConnectionError):
    """The server did not answer; the message says where and why, in one line."""


def upload_fields(*, event: str, token: str, mjd: float | None, exptime_s: float | None,
                  match_dist_arcsec: float | None, force_filter: str, dry_run: bool,
                  declared_filter: str | None = None, comment: str = "") -> dict[str, str]:
    """The CPCS form fields of an upload. What is None is left out, so the server takes it from the
    file's header (MJD, exposure, filter) or chooses it (the automatic matching radius)."""
    fields = {"EventID": event, "hashtag": token, "forceFilter": force_filter, "dryRun": "1" if dry_run else "0",
              "noPlot": "1", "outputFormat": "json"}
    optional = {"MJD": mjd, "expTime": exptime_s, "matchDist": match_dist_arcsec}
    fields.update({name: repr(float(value)) for name, value in optional.items() if value is not None})
    if declared_filter:
        fields["filter"] = declared_filter
    if comment:
        fields["comment"] = comment
    return fields


def post_upload(url: str, catalogue: Path, *, event: str, token: str, mjd: float | None = None,
                exptime_s: float | None = None, match_dist_arcsec: float | None = None, force_filter: str = "no",
                dry_run: bool = True, declared_filter: str | None = None, comment: str = "",
                timeout_s: float = 120) -> tuple[int, str]:
    """POST the file to /cgi/upload like the manual's curl line: (HTTP status, body)."""
    fields = upload_fields(event=event, token=token, mjd=mjd, exptime_s=exptime_s,
                           match_dist_arcsec=match_dist_arcsec, force_filter=force_filter, dry_run=dry_run,
                           declared_filter=declared_filter, comment=comment)
    body, content_type = multipart(fields, "sexCat", catalogue.name, catalogue.read_bytes())
    request = urllib.request.Request(f"{url.rstrip('/')}/cgi/upload", data=body, method="POST",
                                     headers={"Content-Type": content_type})
    return _send(request, url, timeout_s)


def _send(request: urllib.request.Request, url: str, timeout_s: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerUnreachable(f"the server at {url} is not answering ({reason})") from None


def summary(status: int, text: str) -> str:
    """One line for people about an upload's answer: what was measured, and whether it was stored."""
    import json

    try:
        answer = json.loads(text)
    except ValueError:
        return f"refused ({status}): {text.strip()}"
    if not isinstance(answer, dict):
        return f"answer ({status}): {text.strip()}"
    if status >= 400 or "error" in answer:
        return f"refused ({status}): {answer.get('error', text.strip())}"
    if answer.get("status") == "processing":
        return f"accepted, still calibrating: {answer.get('message', '')} {answer.get('status_url') or ''}".strip()
    band = f"{answer.get('survey')}/{answer.get('filter')}"
    if answer.get("is_limit"):
        value = f"limit > {answer['mag']:.3f} ({answer.get('limit_sigma') or 5:g} sigma)"
    else:
        value = f"mag {answer['mag']:.3f} +/- {answer.get('total_err') or answer.get('mag_err'):.3f}"
    zp = answer.get("zeropoint")
    where = f"ZP {zp:.3f}, {answer.get('npoints')} stars" if zp is not None else f"{answer.get('npoints')} stars"
    radius = answer.get("match_radius_arcsec")
    radius_text = f", radius {radius:.2f}\" ({answer.get('match_radius_method') or 'given'})" if radius else ""
    stored = ("dry run: NOT stored (add --store to keep it)" if answer.get("dry_run")
              else f"stored as point {answer.get('followup_id')}")
    return f"{band} {value} ({where}{radius_text}): {stored}"


def admin_call(url: str, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """A JSON call to the admin API with the token as a bearer."""
    import json

    request = urllib.request.Request(f"{url.rstrip('/')}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    status, text = _send(request, url, 60)
    try:
        return status, json.loads(text or "{}")
    except ValueError:
        return status, {"error": text.strip()}
