"""Reading a VOEvent or Transport document safely: encoding, entities, namespaces, Params."""
from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")


class PacketError(ValueError):
    """The bytes are not a VOEvent packet we can read; ``str()`` is the reason for the sender."""


@dataclass(frozen=True)
class Param:
    name: str | None
    value: str | None  # None when absent or empty
    ucd: str
    unit: str
    group: str | None


def _parser() -> etree.XMLParser:
    # no DTDs, no entity expansion, no network: a packet is data from outside
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_comments=True, remove_pis=True)


def parse_xml(data: bytes) -> tuple[etree._Element, list[str]]:
    """The root element with namespaces removed, and notes on what had to be repaired."""
    notes: list[str] = []
    data = data.lstrip()  # feeds sometimes send a newline before the XML declaration
    if not data:
        raise PacketError("the packet is empty")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        if _valid_utf8(data):
            raise PacketError(f"the packet is not well-formed XML: {exc}") from exc
        root = _parse_as_windows_1252(data, exc)
        notes.append("the packet is not valid UTF-8 as declared; it was read as Windows-1252")
    if root.getroottree().docinfo.doctype:
        raise PacketError("the packet has a DOCTYPE declaration, which VOEvents never need: refused")
    _strip_namespaces(root)
    return root, notes


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_as_windows_1252(data: bytes, original: Exception) -> etree._Element:
    body = _DECLARATION.sub(b"", data, count=1)
    try:
        text = body.decode("cp1252")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    try:
        return etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc:
        raise PacketError(f"the packet is not well-formed XML: {original}") from exc


def _strip_namespaces(root: etree._Element) -> None:
    """VOEvent 2.0 (prefixed or not), 1.1 and STC-namespaced children all read alike afterwards."""
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = etree.QName(element).localname
    etree.cleanup_namespaces(root)


def text(element: etree._Element | None, path: str) -> str | None:
    """Stripped text at ``path`` below ``element``; None when absent or blank."""
    if element is None:
        return None
    found = element.find(path)
    if found is None or found.text is None:
        return None
    value = repair_mojibake(found.text.strip())
    return value or None


def params(root: etree._Element) -> list[Param]:
    """Every Param of What (top level first, then inside Groups), unnamed and empty ones included."""
    what = root.find("What")
    if what is None:
        return []
    found = []
    for element in what.iter("Param"):
        parent = element.getparent()
        group = parent.get("name") if parent is not None and parent.tag == "Group" else None
        raw = element.get("value")
        if raw is None:
            raw = text(element, "Value")
        value = repair_mojibake(raw.strip()) if raw is not None else None
        found.append(Param(name=(element.get("name") or "").strip() or None, value=value or None,
                           ucd=(element.get("ucd") or "").strip(), unit=(element.get("unit") or "").strip(),
                           group=group))
    return sorted(found, key=lambda p: p.group is not None)  # stable: top level first


def repair_mojibake(value: str) -> str:
    """Undo UTF-8 text that was decoded as Windows-1252 once (``+17Â°50'`` becomes ``+17°50'``)."""
    if not any(marker in value for marker in ("Ã", "Â")):
        return value
    try:
        return value.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
