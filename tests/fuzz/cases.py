"""Malformed inputs, generated from one seed (``random.Random(seed)``) so a failure is reproduced by its seed
and case number: catalogues, the CPCS forms, broken multipart bodies, JSON, VOEvents, AMQP messages."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

from services.demo import DEMO_MJD


@dataclass
class HttpCase:
    kind: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class AmqpCase:
    kind: str
    routing_key: str
    body: bytes
    headers: dict = field(default_factory=dict)
    content_type: str | None = None
    expects_reply: bool = False  # upload.submitted.v1 answers reply_to


@dataclass
class Context:
    """What the generators need of the running stack."""

    event: str
    token: str
    admin_token: str
    catalogue: bytes


WEIRD_NUMBERS = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "-1e400",
    "9" * 30,
    "-" + "9" * 30,
    "1" + "0" * 400,
    "0x10",
    "1_000",
    "",
    " ",
    "\x00",
    "1e-400",
    "-0",
    "2400000.5",
    "99999999999",
    "1,5",
    "½",
    "١٢",
    "12abc",
    "--1",
    "1e",
    ".",
    "+",
    "null",
    "[]",
    "{}",
    "true",
]
WEIRD_TEXT = [
    "",
    " ",
    "\x00",
    "\x00" * 50,
    "ivo://",
    "ivo://" + "x" * 5000,
    "é" * 300,
    "\ud7ff",
    "😀" * 50,
    "<script>alert(1)</script>",
    "'; DROP TABLE x; --",
    "$where",
    '{"$gt": ""}',
    "../../etc/passwd",
    "%00",
    "\r\n\r\nX-Injected: 1",
    "a" * 70000,
    "SURVEY/band",
    "APASS/V",
    "any/any",
    "no",
    "NO",
    "/",
    "\u202e",
    "\ufeff",
    "ivo://CPCSDemo26a\x00",
    "CPCSDemo26a",
]


def _junk(rng: random.Random, n: int | None = None) -> bytes:
    return rng.randbytes(n if n is not None else rng.randint(0, 4096))


def _number_text(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.6:
        return rng.choice(WEIRD_NUMBERS)
    if choice < 0.8:
        return repr(rng.uniform(-1e300, 1e300))
    return str(rng.randint(-(2**80), 2**80))


# ---- catalogues -------------------------------------------------------------------------------------------


def catalogue(rng: random.Random, good: bytes) -> tuple[str, bytes]:
    """A (sub-kind, bytes) catalogue that a reader should refuse or read, never crash on."""
    lines = good.splitlines(keepends=True)
    header = [x for x in lines if x.startswith(b"#")]
    rows = [x for x in lines if not x.startswith(b"#")]
    kind = rng.choice(
        [
            "truncated",
            "binary",
            "huge numbers",
            "nan inf",
            "wrong columns",
            "gzip junk",
            "gzip truncated",
            "zip junk",
            "bzip2 junk",
            "fits junk",
            "empty",
            "header only",
            "long line",
            "mixed",
        ]
    )
    if kind == "truncated":
        data = good[: rng.randint(0, len(good))]
    elif kind == "binary":
        data = _junk(rng)
    elif kind == "huge numbers":
        data = b"".join(header) + b"".join(
            b" ".join(rng.choice([b"1" + b"0" * rng.randint(20, 400), b"-1e999", b"9" * 40, w]) for w in r.split())
            + b"\n"
            for r in rng.sample(rows, min(len(rows), 30))
        )
    elif kind == "nan inf":
        data = b"".join(header) + b"".join(
            b" ".join(rng.choice([b"nan", b"inf", b"-inf", b"NaN", w, w]) for w in r.split()) + b"\n"
            for r in rows[:200]
        )
    elif kind == "wrong columns":
        broken = [
            b"#   %d %s  junk column\n" % (i + 1, rng.choice([b"X", b"NUMBER", b"", b"ALPHA_J2000", b"\xff"]))
            for i in range(rng.randint(0, 12))
        ]
        data = b"".join(broken) + b"".join(rows[: rng.randint(0, 50)])
    elif kind == "gzip junk":
        data = b"\x1f\x8b\x08\x00" + _junk(rng, rng.randint(0, 2000))
    elif kind == "gzip truncated":
        packed = gzip.compress(good)
        data = packed[: rng.randint(10, max(11, len(packed) - 1))]
    elif kind == "zip junk":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("a.cat", good[: rng.randint(0, 2000)])
        raw = buffer.getvalue()
        data = raw[: rng.randint(4, len(raw))] if rng.random() < 0.5 else b"PK\x03\x04" + _junk(rng, 500)
    elif kind == "bzip2 junk":
        data = bz2.compress(good)[: rng.randint(10, 400)] if rng.random() < 0.5 else b"BZh9" + _junk(rng, 600)
    elif kind == "fits junk":
        cards = [
            b"SIMPLE  =                    T",
            b"BITPIX  = " + rng.choice([b"8", b"-32", b"99", b"x"]),
            b"NAXIS   = " + rng.choice([b"0", b"2", b"999", b"-1"]),
            b"NAXIS1  = " + str(rng.randint(-5, 2**40)).encode(),
            b"XTENSION= 'BINTABLE'",
            b"TFIELDS =  " + str(rng.randint(-1, 5000)).encode(),
            b"END",
        ]
        rng.shuffle(cards)
        data = b"".join(c.ljust(80) for c in cards).ljust(2880) + _junk(rng, rng.randint(0, 5000))
    elif kind == "empty":
        data = b""
    elif kind == "header only":
        data = b"".join(header)
    elif kind == "long line":
        data = b"".join(header) + b"1 " * rng.randint(1000, 100_000) + b"\n"
    else:
        data = b"".join(rng.choice(lines) if rng.random() < 0.8 else _junk(rng, 40) for _ in range(200))
    return kind, data


# ---- multipart --------------------------------------------------------------------------------------------


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]], boundary: str = "fuzzb0undary") -> bytes:
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode("utf-8", "surrogatepass")
        )
        out.write(value.encode("utf-8", "surrogatepass") + b"\r\n")
    for name, (filename, data) in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode("utf-8", "surrogatepass")
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


def upload_fields(ctx: Context, **overrides: str) -> dict[str, str]:
    fields = {
        "matchDist": "2",
        "EventID": ctx.event,
        "hashtag": ctx.token,
        "MJD": str(DEMO_MJD),
        "expTime": "1",
        "noPlot": "1",
        "forceFilter": "no",
        "dryRun": "1",
        "outputFormat": "json",
    }
    fields.update(overrides)
    return fields


MP = "multipart/form-data; boundary=fuzzb0undary"


def broken_multipart(rng: random.Random, ctx: Context) -> tuple[str, bytes, str]:
    """(sub-kind, body, content type) of a multipart body broken somewhere."""
    body = multipart(upload_fields(ctx), {"sexCat": ("test.cat", ctx.catalogue[:3000])})
    kind = rng.choice(
        [
            "nul in header",
            "no disposition",
            "bad header line",
            "long header",
            "unterminated",
            "no boundary param",
            "wrong boundary",
            "truncated",
            "junk",
            "bad charset",
            "bad encoding",
            "header without colon",
            "duplicate parts",
            "empty",
            "quoted junk",
        ]
    )
    content_type = MP
    if kind == "nul in header":
        body = body.replace(b"Content-Disposition: form-data", b"Content-Disposition\x00: form-data", 1)
    elif kind == "no disposition":
        body = body.replace(b"Content-Disposition: form-data; ", b"", rng.randint(1, 3))
    elif kind == "bad header line":
        body = body.replace(b"\r\n\r\n", b"\r\n\x01\x02\x03 junk\r\n\r\n", 1)
    elif kind == "long header":
        body = body.replace(b"\r\n\r\n", b"\r\nX-Long: " + b"a" * rng.randint(8000, 200_000) + b"\r\n\r\n", 1)
    elif kind == "unterminated":
        body = body[: body.rfind(b"--fuzzb0undary--")]
    elif kind == "no boundary param":
        content_type = "multipart/form-data"
    elif kind == "wrong boundary":
        content_type = "multipart/form-data; boundary=" + rng.choice(["x", "", '"', "a" * 100, "fuzz"])
    elif kind == "truncated":
        body = body[: rng.randint(0, len(body))]
    elif kind == "junk":
        body = _junk(rng)
    elif kind == "bad charset":
        content_type = MP + "; charset=" + rng.choice(["klingon", "utf-7", "", "utf-16"])
    elif kind == "bad encoding":
        body = body.replace(
            b"Content-Type: application/octet-stream",
            b"Content-Transfer-Encoding: " + rng.choice([b"base64", b"quoted-printable", b"x-junk"]),
            1,
        )
    elif kind == "header without colon":
        body = body.replace(b"Content-Disposition: ", b"Content-Disposition ", 1)
    elif kind == "duplicate parts":
        body = body.replace(b"--fuzzb0undary--", body[: body.find(b"--fuzzb0undary", 10)] + b"--fuzzb0undary--")
    elif kind == "empty":
        body = b""
    else:
        body = body.replace(b'name="EventID"', b"name=\"Event\xffID\"; filename*=junk''%ff%fe", 1)
    return kind, body, content_type


# ---- JSON -------------------------------------------------------------------------------------------------


def deep_json(rng: random.Random) -> bytes:
    depth = rng.choice([100, 1000, 5000, 20000])
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def bad_json(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(
        [
            "deep",
            "huge int",
            "nan",
            "wrong types",
            "not object",
            "truncated",
            "binary",
            "duplicate keys",
            "bad utf8",
            "big float",
        ]
    )
    base = {
        "ivorn": f"ivo://Fuzz{rng.randint(0, 10**6)}",
        "ra": rng.uniform(0, 360),
        "dec": rng.uniform(-90, 90),
        "url": "",
    }
    if kind == "deep":
        return kind, deep_json(rng)
    if kind == "huge int":
        key = rng.choice(["ra", "dec", "url", "ivorn"])
        return kind, json.dumps(base).replace(
            json.dumps(base[key]), str(rng.choice([2**64, 2**63, -(2**70), 10**400])), 1
        ).encode()
    if kind == "nan":
        return kind, json.dumps(base | {rng.choice(["ra", "dec"]): float(rng.choice(["nan", "inf", "-inf"]))}).encode()
    if kind == "wrong types":
        key = rng.choice(list(base))
        value = rng.choice([None, [], {}, True, "x", -1, {"$gt": ""}, [1, 2], "1e400"])
        return kind, json.dumps(base | {key: value}).encode()
    if kind == "not object":
        return kind, rng.choice([b"[]", b"1", b"null", b'"x"', b"true", b""])
    if kind == "truncated":
        text = json.dumps(base).encode()
        return kind, text[: rng.randint(0, len(text) - 1)]
    if kind == "binary":
        return kind, _junk(rng, 300)
    if kind == "duplicate keys":
        return kind, b'{"ivorn": "ivo://a", "ivorn": 5, "ra": 1, "dec": 1, "ra": "x"}'
    if kind == "bad utf8":
        return kind, b'{"ivorn": "ivo://\xff\xfe", "ra": 1, "dec": 1}'
    return kind, json.dumps(base).replace(json.dumps(base["ra"]), "1" + "0" * 400 + ".5", 1).encode()


# ---- VOEvents ---------------------------------------------------------------------------------------------

VOEVENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" '
    b'ivorn="ivo://fuzz/test#%d" role="observation" version="2.0"><Who><Date>2026-01-01T00:00:00</Date></Who>'
    b'<WhereWhen><ObsDataLocation><ObservationLocation><AstroCoords coord_system_id="UTC-FK5-GEO">'
    b"<Time><TimeInstant><ISOTime>2026-01-01T00:00:00</ISOTime></TimeInstant></Time>"
    b"<Position2D><Value2><C1>%s</C1><C2>%s</C2></Value2><Error2Radius>%s</Error2Radius></Position2D>"
    b"</AstroCoords></ObservationLocation></ObsDataLocation></WhereWhen>"
    b'<What><Param name="mag" value="%s"/></What></voe:VOEvent>'
)


def voevent(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(
        [
            "bad xml",
            "xxe",
            "billion laughs",
            "deep nesting",
            "binary",
            "truncated",
            "weird values",
            "empty",
            "not voevent",
            "bad encoding",
        ]
    )
    number = rng.randint(0, 10**9)

    def good(c1: bytes = b"10.5", c2: bytes = b"-20.1", err: bytes = b"0.001", mag: bytes = b"17.2") -> bytes:
        return VOEVENT % (number, c1, c2, err, mag)

    if kind == "bad xml":
        text = good()
        cut = rng.randint(0, len(text))
        return kind, text[:cut] + rng.choice([b"<", b"&", b"</x>", b"<a b='>", b"\x00"]) + text[cut:]
    if kind == "xxe":
        return kind, (
            b'<?xml version="1.0"?><!DOCTYPE VOEvent [<!ENTITY xxe SYSTEM "'
            + rng.choice([b"file:///etc/passwd", b"http://127.0.0.1:9/", b"file:///dev/random"])
            + b'">]>'
            + good(c1=b"&xxe;").split(b"?>", 1)[1]
        )
    if kind == "billion laughs":
        entities = b"".join(
            b'<!ENTITY l%d "&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;">' % ((i,) + (i - 1,) * 10)
            for i in range(1, 10)
        )
        return kind, b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">' + entities + b"]><r>&l9;</r>"
    if kind == "deep nesting":
        depth = rng.choice([300, 3000, 30000])
        return kind, good().replace(b"</What>", b"<Group>" * depth + b"</Group>" * depth + b"</What>")
    if kind == "binary":
        return kind, _junk(rng)
    if kind == "truncated":
        text = good()
        return kind, text[: rng.randint(0, len(text) - 1)]
    if kind == "weird values":
        pick = [
            rng.choice([b"nan", b"inf", b"1e400", b"9" * 40, b"", b"x", b"-1e308", b"400", b"-91"]) for _ in range(4)
        ]
        return kind, good(*pick)
    if kind == "empty":
        return kind, rng.choice([b"", b"   ", b"\n\n"])
    if kind == "not voevent":
        return kind, rng.choice([b"<html/>", b"<Transport role='ack'/>", b"<a>" * 10 + b"</a>" * 10, b"<?xml?>"])
    return kind, good().replace(b"UTF-8", rng.choice([b"klingon", b"UTF-16", b"EBCDIC"]), 1)


# ---- HTTP cases -------------------------------------------------------------------------------------------


def _upload_case(rng: random.Random, ctx: Context) -> HttpCase:
    sub, data = catalogue(rng, ctx.catalogue)
    path = rng.choice(["/cgi/upload", "/cgi/upload", "/api/v1/uploads"])
    body = multipart(upload_fields(ctx), {"sexCat": (rng.choice(["test.cat", "a.fits", "b.gz", "c.zip", ""]), data)})
    return HttpCase(f"catalogue:{sub}", "POST", path, body, {"Content-Type": MP})


def _field_case(rng: random.Random, ctx: Context) -> HttpCase:
    field_name = rng.choice(
        [
            "MJD",
            "expTime",
            "matchDist",
            "EventID",
            "forceFilter",
            "dryRun",
            "hashtag",
            "filter",
            "comment",
            "outputFormat",
            "noPlot",
        ]
    )
    value = _number_text(rng) if rng.random() < 0.5 else rng.choice(WEIRD_TEXT)
    fields = upload_fields(ctx, **{field_name: value})
    if rng.random() < 0.2:
        fields.pop(rng.choice(list(fields)))
    body = multipart(fields, {"sexCat": ("test.cat", ctx.catalogue)} if rng.random() < 0.7 else {})
    return HttpCase(
        f"upload field:{field_name}", "POST", rng.choice(["/cgi/upload", "/api/v1/uploads"]), body, {"Content-Type": MP}
    )


def _form_case(rng: random.Random, ctx: Context) -> HttpCase:
    from urllib.parse import urlencode

    path = rng.choice(["/cgi/newevent", "/cgi/newuser", "/cgi/delpoint"])
    token = rng.choice([ctx.token, ctx.admin_token, "", "junk", "\x00"])
    if path == "/cgi/newevent":
        fields = {
            "EventID": rng.choice(WEIRD_TEXT + [f"ivo://Fuzz{rng.randint(0, 10**9)}"]),
            "ra": _number_text(rng),
            "dec": _number_text(rng),
            "url": rng.choice(WEIRD_TEXT),
        }
    elif path == "/cgi/newuser":
        fields = {
            "obsName": rng.choice(WEIRD_TEXT + ["Fuzz obs"]),
            "lon": _number_text(rng),
            "lat": _number_text(rng),
            "prefix": rng.choice(WEIRD_TEXT),
            "allow_upload": rng.choice(WEIRD_TEXT),
        }
    else:
        fields = {"followupid": _number_text(rng)}
    fields["hashtag"] = token
    fields["outputFormat"] = rng.choice(["json", "html", "HTML", "", "\x00"])
    if rng.random() < 0.5:
        body = urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()
        return HttpCase(f"form:{path}", "POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
    return HttpCase(f"form:{path}", "POST", path, multipart(fields, {}), {"Content-Type": MP})


def _multipart_case(rng: random.Random, ctx: Context) -> HttpCase:
    sub, body, content_type = broken_multipart(rng, ctx)
    path = rng.choice(
        ["/cgi/upload", "/api/v1/uploads", "/cgi/newevent", "/cgi/delpoint", "/cgi/newuser", "/api/v1/voevents"]
    )
    return HttpCase(
        f"multipart:{sub}",
        "POST",
        path,
        body,
        {"Content-Type": content_type, "Authorization": f"Bearer {ctx.admin_token}"},
    )


def _json_case(rng: random.Random, ctx: Context) -> HttpCase:
    sub, body = bad_json(rng)
    content_type = rng.choice(
        ["application/json", "application/json", "text/plain", "application/json; charset=klingon"]
    )
    return HttpCase(
        f"json:{sub}",
        "POST",
        "/api/v1/events",
        body,
        {"Content-Type": content_type, "Authorization": f"Bearer {rng.choice([ctx.token, ctx.admin_token])}"},
    )


def _voevent_case(rng: random.Random, ctx: Context) -> HttpCase:
    sub, body = voevent(rng)
    content_type = rng.choice(
        ["application/xml", "text/xml", "application/octet-stream", "application/x-www-form-urlencoded"]
    )
    return HttpCase(
        f"voevent:{sub}",
        "POST",
        "/api/v1/voevents",
        body,
        {"Content-Type": content_type, "Authorization": f"Bearer {ctx.admin_token}"},
    )


def _read_case(rng: random.Random, ctx: Context) -> HttpCase:
    junk = rng.choice(WEIRD_NUMBERS + WEIRD_TEXT[:20])
    choices = [
        ("/get_alert_lc_data", {"alert_id": junk}),
        ("/get_alert_lc_data", {"alert_name": junk}),
        ("/get_alert_lc", {"alert_id": junk}),
        ("/list_of_alerts", {"page": junk}),
        ("/list_of_followups", {"alert_id": junk}),
        ("/api/v1/events", {"offset": junk, "limit": junk}),
        ("/api/v1/events/%s/lightcurve", {"format": junk, "download": junk, "order": junk, "offset": junk}),
        ("/api/v1/observations/%s", {}),
        ("/plots/%s.png", {}),
        ("/api/v1/lists/alerts", {"page": junk, "q": junk}),
        ("/api/v1/lists/followups", {"sort": junk}),
        ("/api/v1/observatories/%s/points", {"band": junk}),
        ("/api/v1/observatories/%s/zeropoints", {}),
        ("/event/%s", {}),
        ("/observatories/%s", {}),
        ("/list_of_alerts", {"sort": junk, "q": junk}),
        ("/api/v1/admin/recalibrations/%s", {}),
    ]
    path, params = rng.choice(choices)
    if "%s" in path:
        from urllib.parse import quote

        path = path % quote(junk.encode("utf-8", "surrogatepass"), safe="") if junk.strip("\x00 ") else path % "x"
    params = {k: v for k, v in params.items()}
    return HttpCase(
        f"read:{path.split('/')[1] if path.count('/') > 1 else path}",
        "GET",
        path,
        headers={"Authorization": f"Bearer {ctx.token}"},
        params={k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in params.items()},
    )


def _encoding_case(rng: random.Random, ctx: Context) -> HttpCase:
    """A body that says it is compressed (``Content-Encoding``) and is not, or a header that is wrong."""
    path = rng.choice(["/cgi/upload", "/api/v1/events", "/api/v1/voevents", "/cgi/newevent"])
    headers = {
        "Content-Type": rng.choice([MP, "application/json", "application/xml"]),
        "Authorization": f"Bearer {ctx.admin_token}",
    }
    kind = rng.choice(["content-encoding", "content-length", "content-type"])
    if kind == "content-encoding":
        headers["Content-Encoding"] = rng.choice(["gzip", "deflate", "br", "x-junk", "gzip, gzip"])
    elif kind == "content-type":
        headers["Content-Type"] = rng.choice(["", "multipart/", "/", 'application/json; charset="', "a" * 5000])
    else:
        headers["Content-Type"] = MP
    return HttpCase(f"header:{kind}", "POST", path, _junk(rng, rng.randint(0, 500)), headers)


HTTP_GENERATORS: dict[str, tuple[float, Callable[[random.Random, Context], HttpCase]]] = {
    "catalogue": (0.22, _upload_case),
    "field": (0.16, _field_case),
    "form": (0.14, _form_case),
    "multipart": (0.14, _multipart_case),
    "json": (0.12, _json_case),
    "voevent": (0.1, _voevent_case),
    "read": (0.08, _read_case),
    "encoding": (0.04, _encoding_case),
}


def http_cases(seed: int, n: int, ctx: Context) -> list[HttpCase]:
    rng = random.Random(seed)
    names = list(HTTP_GENERATORS)
    weights = [HTTP_GENERATORS[k][0] for k in names]
    cases = []
    for _ in range(n):
        cases.append(HTTP_GENERATORS[rng.choices(names, weights)[0]][1](rng, ctx))
    return cases


# ---- AMQP cases -------------------------------------------------------------------------------------------

#: Contract keys consumed by a service, with a body that is nearly right (so a wrong type or a huge number is
#: what the consumer meets).
CONTRACT_BODIES = {
    "event.created.v1": {"event": {"ivorn": "ivo://FuzzEvent", "alert_id": 1, "ra_deg": 10.0, "dec_deg": -20.0}},
    "upload.received.v1": {"observation_id": "x", "followup_id": 1, "correlation_id": "c", "file_id": "f"},
    "observation.calibrated.v1": {"observation_id": "x", "followup_id": 1},
    "observation.failed.v1": {"observation_id": "x", "followup_id": 1, "reason": "r", "stage": "calibration"},
    "image.received.v1": {"observation_id": "x", "file_id": "f"},
    "lightcurve.updated.v1": {"event_ivorn": "ivo://x"},
    "alert.photometry.received.v1": {
        "event_ivorn": "ivo://x",
        "packet_ivorn": "ivo://p",
        "survey": "Gaia",
        "points": [{"mjd": 60000.0, "mag": 17.0, "mag_err": 0.1, "band": "G"}],
    },
}


def _mutate(rng: random.Random, value):
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        return {**value, key: _mutate(rng, value[key])}
    if isinstance(value, list) and value:
        return [_mutate(rng, value[0])] + value[1:]
    return rng.choice([2**64, -(2**63) - 1, 10**30, None, [], {}, "x", True, 1e308, "\x00", {"$gt": ""}])


def amqp_cases(seed: int, n: int, ctx: Context) -> list[AmqpCase]:
    rng = random.Random(seed + 1)
    cases = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.4:  # an upload published by an observatory: fields in headers, the catalogue in the body
            fields = upload_fields(ctx)
            fields.pop("outputFormat")
            field_name = rng.choice(list(fields) + ["filename", "catalogue_url"])
            value = rng.choice(
                [
                    _number_text(rng),
                    rng.choice(WEIRD_TEXT)[:1000],
                    2**70,
                    -(2**64),
                    3.0e38,
                    None,
                    b"\xff\xfe",
                    ["a"],
                    {"x": 1},
                ]
            )
            fields[field_name] = value
            if field_name == "catalogue_url":
                body = b""
            else:
                sub, body = catalogue(rng, ctx.catalogue)
            cases.append(
                AmqpCase(
                    f"amqp upload:{field_name}",
                    "upload.submitted.v1",
                    body,
                    {k: v for k, v in fields.items() if v is not None},
                    expects_reply=True,
                )
            )
        elif roll < 0.65:
            sub, body = voevent(rng)
            cases.append(AmqpCase(f"amqp voevent:{sub}", "voevent.received.v1", body, content_type="application/xml"))
        else:
            key = rng.choice(list(CONTRACT_BODIES))
            sub = rng.choice(["bad json", "wrong types", "deep", "huge int", "binary"])
            if sub == "bad json":
                body = json.dumps(CONTRACT_BODIES[key]).encode()[: rng.randint(0, 30)]
            elif sub == "wrong types" or sub == "huge int":
                body = json.dumps(_mutate(rng, CONTRACT_BODIES[key])).encode()
            elif sub == "deep":
                body = deep_json(rng)
            else:
                body = _junk(rng, 200)
            cases.append(AmqpCase(f"amqp {key}:{sub}", key, body, content_type="application/json"))
    return cases
