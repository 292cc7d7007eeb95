"""The receipt as XML, the canonical bytes that are signed, and the signer.

Structure
---------
Modelled on the tax authority's e-invoice XML (Quyết định 1450/QĐ-TCT and its successors), kept to
what a fee receipt needs. Tag names are the e-invoice abbreviations so that anyone who has read an
e-invoice recognises them::

    <HDon>                                  the document
      <DLHDon Id="DLHDon">                  data: everything below is signed
        <TTChung>                           general information
          <PBan/>                           format version of this file (thuphi-receipt-1)
          <THDon/>                          receipt type name (tên loại biên lai)
          <KHMSHDon/> <KHHDon/> <SHDon/>    form symbol, serial, 7-digit number
          <NLap/> <TGLap/>                  issue date (yyyy-mm-dd) and instant (ISO 8601, +07:00)
          <DVTTe/>                          currency, always VND
          <HTTToan/> <MHTTToan/>            payment method: label and code (cash, card, transfer, ewallet)
          <MGDich/>                         bank / POS transaction reference
          <MTCuu/>                          verification code (mã tra cứu) for the public page
        </TTChung>
        <NDHDon>                            content
          <NBan> Ten, MST, DChi </NBan>     the collector (người thu): name, tax code, address
          <NMua> Ten, MKHang, MTToan </NMua> the payer: name, payer code, bill payment reference
          <DSHHDVu><HHDVu><STT/><THHDVu/></HHDVu>…</DSHHDVu>   fee names
          <TToan> TgTTTBSo, TgTTTBChu </TToan>                 amount in figures (integer đồng) and words
        </NDHDon>
      </DLHDon>
      <DSCKS><NBan><Signature Algorithm=… KeyId=… SignedBy=…>…</Signature></NBan></DSCKS>
      <TTHThai> TThai, LDo, TGHuy </TTHThai>   current status: NOT signed, it changes when cancelled
    </HDon>

What is signed is the Canonical XML 2.0 form (``xml.etree.ElementTree.canonicalize``) of the
``DLHDon`` element, built only from the values frozen on the receipt at issue time. A verifier can
therefore take ``DLHDon`` out of a downloaded file, canonicalise it and check the signature without
our database.

Signing
-------
:class:`Signer` is the seam for the real thing. Under Decree 123/2020 an electronic receipt carries
the collector's *digital signature*: in production that is a certificate from a licensed CA kept on a
USB token (PKCS#11) or an HSM, producing a PKCS#7/CMS (or XMLDSig) signature over these same bytes.
Plug one in by pointing the ``RECEIPT_SIGNER`` setting (or environment variable) at a zero-argument
factory that returns an object with ``algorithm``, ``key_id``, ``sign(data) -> str`` and
``verify(data, signature) -> bool``.

The default, :class:`HmacSha256Signer`, is an installation-local seal: HMAC-SHA256 with
``RECEIPT_SIGNING_KEY`` (setting, else environment), else a key derived from ``SECRET_KEY``. It
proves a receipt came from this installation unaltered, to anyone who asks this installation (the
verification page); it is not a legal digital signature. Set ``RECEIPT_SIGNING_KEY`` explicitly in
production: rotating ``SECRET_KEY`` would otherwise make every earlier receipt fail verification.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import zoneinfo
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from xml.etree import ElementTree as ET

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from thuphi.receipts.models import Receipt

__all__ = [
    "FORMAT_VERSION",
    "HmacSha256Signer",
    "Signer",
    "canonical_bytes",
    "get_signer",
    "receipt_xml",
    "signature_fingerprint",
    "signature_verifies",
]

FORMAT_VERSION = "thuphi-receipt-1"
#: Receipt dates are Vietnamese dates whatever the server's TIME_ZONE: the year decides the numbering.
VN_TZ = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


@runtime_checkable
class Signer(Protocol):
    """Signs the canonical bytes of a receipt. ``algorithm`` and ``key_id`` are stored with each
    signature so that a later key or signer change can still tell which one signed what."""

    algorithm: str
    key_id: str

    def sign(self, data: bytes) -> str: ...

    def verify(self, data: bytes, signature: str) -> bool: ...


class HmacSha256Signer:
    """The default seal: HMAC-SHA256, hex encoded. See the module docstring for what it is not."""

    algorithm = "HMAC-SHA256"

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the receipt signing key must be at least 32 bytes")
        self._key = key
        # A fingerprint of the key, not the key: tells "signed with another key" from "altered".
        self.key_id = hashlib.sha256(b"thuphi-receipt-key-id:" + key).hexdigest()[:16]

    def sign(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def verify(self, data: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(data), (signature or "").strip().lower())


def _setting(name: str) -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "")
    return str(value or "").strip()


def get_signer() -> Signer:
    """The signer configured for this installation (read on each call, so tests can override it)."""
    factory_path = _setting("RECEIPT_SIGNER")
    if factory_path:
        signer = import_string(factory_path)()
        if not isinstance(signer, Signer):
            raise TypeError(f"{factory_path} did not return a receipts Signer")
        return signer
    key = _setting("RECEIPT_SIGNING_KEY")
    if key:
        return HmacSha256Signer(key.encode("utf-8"))
    # Derived, not SECRET_KEY itself: a leak of receipt keys must not give away session signing.
    return HmacSha256Signer(salted_hmac("thuphi.receipts.signature", "receipt-signing-key-v1",
                                        algorithm="sha256").digest())


# --- building -----------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


#: A node of the signed part: (tag, text) for a leaf, (tag, [children]) for a branch.
_Node = tuple


def _tree(receipt: "Receipt") -> _Node:
    """The signed part, as data: the one description both the XML file and the signed bytes are made
    from. Only fields frozen at issue time may appear here."""
    return ("DLHDon", [
        ("TTChung", [
            ("PBan", FORMAT_VERSION),
            ("THDon", receipt.receipt_name),
            ("KHMSHDon", receipt.form_symbol),
            ("KHHDon", receipt.serial),
            ("SHDon", f"{receipt.number:07d}"),
            ("NLap", receipt.issue_date.isoformat()),
            ("TGLap", timezone.localtime(receipt.issued_at, VN_TZ).isoformat(timespec="seconds")),
            ("DVTTe", "VND"),
            ("HTTToan", receipt.method_label),
            ("MHTTToan", receipt.method),
            ("MGDich", receipt.bank_reference),
            ("MTCuu", receipt.verification_code),
        ]),
        ("NDHDon", [
            ("NBan", [("Ten", receipt.institution_name), ("MST", receipt.institution_tax_code),
                      ("DChi", receipt.institution_address)]),
            ("NMua", [("Ten", receipt.payer_name), ("MKHang", receipt.payer_code),
                      ("MTToan", receipt.bill_reference)]),
            ("DSHHDVu", [("HHDVu", [("STT", i), ("THHDVu", name)])
                         for i, name in enumerate(receipt.fee_names, start=1)]),
            ("TToan", [("TgTTTBSo", receipt.amount), ("TgTTTBChu", receipt.amount_in_words)]),
        ]),
    ])


#: The root's only attribute: what the signature's Reference="#DLHDon" points at.
_ROOT_ATTRS = {"Id": "DLHDon"}


def _element(node: _Node, parent: ET.Element | None = None) -> ET.Element:
    tag, body = node
    el = ET.Element(tag, _ROOT_ATTRS) if parent is None else ET.SubElement(parent, tag)
    if isinstance(body, list):
        for child in body:
            _element(child, el)
    elif body is not None:
        el.text = str(body)
    return el


def _content(receipt: "Receipt") -> ET.Element:
    return _element(_tree(receipt))


def _canonical(element: ET.Element) -> bytes:
    return ET.canonicalize(ET.tostring(element, encoding="unicode")).encode("utf-8")


#: Characters XML 1.0 cannot carry: the reference path (a parser) rejects them, so the fast path defers to it.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _c14n_text(text: str) -> str:
    # What a parser then C14N 2.0 make of element text: line ends normalised to LF, & < > escaped.
    return (text.replace("\r\n", "\n").replace("\r", "\n")
            .replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _c14n(node: _Node, out: list[str]) -> None:
    tag, body = node
    out.append(f"<{tag}>")
    if isinstance(body, list):
        for child in body:
            _c14n(child, out)
    elif body is not None:
        out.append(_c14n_text(str(body)))
    out.append(f"</{tag}>")


def canonical_bytes(receipt: "Receipt") -> bytes:
    """What the signature covers: the C14N 2.0 form of ``DLHDon``.

    Written out directly from `_tree` (the element-tree round trip, `_canonical`, cost 60 % of issuing
    a receipt); `tests/test_xml.py` checks byte equality with `_canonical(_content(...))` on arbitrary
    text. Text XML cannot carry goes through the reference path, which rejects it as before."""
    tree = _tree(receipt)
    out: list[str] = ['<DLHDon Id="DLHDon">']
    for child in tree[1]:
        _c14n(child, out)
    out.append("</DLHDon>")
    text = "".join(out)
    if _NOT_XML.search(text):
        return _canonical(_element(tree))
    return text.encode("utf-8")


def signature_verifies(receipt: "Receipt", *, signer: Signer | None = None) -> bool:
    """True when the stored signature matches the receipt's facts as they are now in the database."""
    signer = signer or get_signer()
    if receipt.signature_algorithm != signer.algorithm or (
            receipt.signature_key_id and receipt.signature_key_id != signer.key_id):
        return False
    return signer.verify(canonical_bytes(receipt), receipt.signature)


def signature_fingerprint(signature: str) -> str:
    """16 hex digits in groups of 4 ("1A2B 3C4D 5E6F 7A8B"): short enough to print and to compare
    by eye with the verification page, for any signer (a PKCS#7 blob is kilobytes long)."""
    digest = hashlib.sha256((signature or "").encode("ascii", "replace")).hexdigest()[:16].upper()
    return " ".join(digest[i:i + 4] for i in range(0, 16, 4))


def receipt_xml(*, receipt: "Receipt") -> bytes:
    """The receipt as a UTF-8 XML document (declaration included)."""
    root = ET.Element("HDon")
    root.append(_content(receipt))
    signatures = _sub(_sub(root, "DSCKS"), "NBan")
    sig = _sub(signatures, "Signature", receipt.signature)
    sig.set("Algorithm", receipt.signature_algorithm)
    sig.set("KeyId", receipt.signature_key_id)
    sig.set("SignedBy", receipt.signed_by)
    sig.set("Reference", "#DLHDon")
    state = _sub(root, "TTHThai")
    _sub(state, "TThai", receipt.status)
    if receipt.cancelled_at is not None:
        _sub(state, "LDo", receipt.cancel_reason)
        _sub(state, "TGHuy", timezone.localtime(receipt.cancelled_at, VN_TZ).isoformat(timespec="seconds"))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
