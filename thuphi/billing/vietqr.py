"""VietQR (NAPAS 247) payloads: build, parse, and render as QR images.

VietQR is an EMVCo merchant-presented QR whose merchant account information
(field 38) carries the NAPAS GUID ``A000000727``, the beneficiary bank's BIN and
the account or card number. A banking app that scans it pre-fills an instant
transfer; the purpose (field 62, sub-field 08) becomes the transfer description,
which is how a payment is later matched to its bill.

This module is pure Python (no Django, no database) so that it can be used in
bulk issuance, in tests and in offline tools alike.

Lengths: EMVCo counts the length of a value in characters. Everything this
module *builds* is ASCII, so characters and bytes coincide. When *parsing*, the
payload is handled as a ``str`` (lengths in characters) and the CRC is computed
over its UTF-8 bytes, which is what other implementations do for the rare
payload that carries non-ASCII merchant data.
"""

from __future__ import annotations

import binascii
import io
import re
import unicodedata
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping

__all__ = [
    "NAPAS_GUID",
    "PURPOSE_MAX_LEN",
    "SERVICE_ACCOUNT",
    "SERVICE_CARD",
    "VietQR",
    "VietQRError",
    "build_payload",
    "clean_purpose",
    "crc16_ccitt_false",
    "crc16_ccitt_false_py",
    "parse_payload",
    "payload_builder",
    "render_png",
    "render_svg",
]

NAPAS_GUID = "A000000727"
SERVICE_ACCOUNT = "QRIBFTTA"  # transfer to an account number
SERVICE_CARD = "QRIBFTTC"  # transfer to a card number
SERVICES = frozenset({SERVICE_ACCOUNT, SERVICE_CARD})
CURRENCY_VND = "704"  # ISO 4217 numeric
COUNTRY_VN = "VN"

# NAPAS caps the purpose of transaction (62/08) at 25 characters, and banks
# truncate longer descriptions anyway; we refuse rather than cut (see
# clean_purpose) because a cut purpose may lose the payment reference.
PURPOSE_MAX_LEN = 25
AMOUNT_MAX_DIGITS = 13  # EMVCo field 54 is at most 13 characters

_BIN_RE = re.compile(r"[0-9]{6}")
_ACCOUNT_RE = re.compile(r"[A-Za-z0-9]{1,19}")
_DIGITS_RE = re.compile(r"[0-9]+")
_HEX4_RE = re.compile(r"[0-9A-Fa-f]{4}")
_SPACES_RE = re.compile(r"\s+")
# Anything that is not printable ASCII once diacritics are gone.
_NON_PRINTABLE_ASCII_RE = re.compile(r"[^\x20-\x7e]")
# A purpose that is already clean: lets the hot path skip Unicode normalisation.
_CLEAN_PURPOSE_RE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")


class VietQRError(ValueError):
    """A VietQR payload or its inputs are invalid.

    ``code`` is a stable machine-readable token (for APIs, logs and tests);
    ``message`` is a Vietnamese sentence fit to show to a user.

    Codes raised while building: ``bad_bin``, ``bad_account``, ``bad_service``,
    ``bad_amount``, ``purpose_empty``, ``purpose_too_long``.
    Codes raised while parsing: ``not_a_string``, ``malformed_tlv``,
    ``duplicate_field``, ``crc_missing``, ``crc_mismatch``,
    ``bad_format_indicator``, ``bad_initiation``, ``not_vietqr``, ``bad_bin``,
    ``bad_account``, ``bad_service``, ``bad_currency``, ``bad_country``,
    ``bad_amount``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


# ---------------------------------------------------------------------------
# CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0.
# ---------------------------------------------------------------------------


def _make_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


def crc16_ccitt_false_py(data: bytes) -> int:
    """CRC-16/CCITT-FALSE in pure Python with a 256-entry table.

    Kept as the portable, readable definition; :func:`crc16_ccitt_false` must
    always agree with it (the tests check this on random data).
    """
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0).

    ``binascii.crc_hqx`` is the same non-reflected 0x1021 CRC, table-driven in
    C; seeding it with 0xFFFF gives the CCITT-FALSE variant. It is about ten
    times faster than the pure-Python table, which matters when issuing bills
    in bulk.
    """
    return binascii.crc_hqx(data, 0xFFFF)


def _crc_hex(text_before_crc_value: str) -> str:
    return format(crc16_ccitt_false(text_before_crc_value.encode("utf-8")), "04X")


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


def clean_purpose(text: str) -> str:
    """Make ``text`` safe for the VietQR purpose field (62/08).

    Many banking apps reject or garble non-ASCII descriptions, so the purpose
    is reduced to printable ASCII: Vietnamese diacritics are stripped
    (``đ``->``d``, ``Đ``->``D``, ``ế``->``e``), compatibility forms are folded
    (full-width letters become ASCII), any remaining character outside
    printable ASCII (emoji, CJK, control characters) is dropped, and runs of
    whitespace collapse to one space with the ends trimmed. Case is kept.

    This function only cleans; it does not enforce the length. The result may
    be empty or longer than :data:`PURPOSE_MAX_LEN`; :func:`build_payload`
    refuses both instead of truncating, because a truncated purpose can lose
    the payment reference that reconciliation depends on.
    """
    if _CLEAN_PURPOSE_RE.fullmatch(text):
        return text
    text = text.replace("đ", "d").replace("Đ", "D").replace("Ð", "D")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # Collapse whitespace (tabs, newlines, NBSP) before dropping non-ASCII so
    # that a non-ASCII space still separates words.
    stripped = _SPACES_RE.sub(" ", stripped)
    ascii_only = _NON_PRINTABLE_ASCII_RE.sub("", stripped)
    return _SPACES_RE.sub(" ", ascii_only).strip()


def _checked_fixed_part(*, bank_bin: str, account_number: str, amount: int | None, service: str) -> str:
    """Everything before field 62: validated, then laid out. Shared by both builders below."""
    if not isinstance(bank_bin, str) or not _BIN_RE.fullmatch(bank_bin):
        raise VietQRError("bad_bin", "Mã BIN ngân hàng phải gồm đúng 6 chữ số.")
    if not isinstance(account_number, str) or not _ACCOUNT_RE.fullmatch(account_number):
        raise VietQRError("bad_account", "Số tài khoản/số thẻ phải gồm 1–19 chữ cái hoặc chữ số, không dấu cách.")
    if service not in SERVICES:
        raise VietQRError("bad_service", "Loại dịch vụ phải là QRIBFTTA (tài khoản) hoặc QRIBFTTC (thẻ).")

    if amount is None:
        initiation = "11"
        amount_field = ""
    else:
        # bool is an int subclass; True would silently become "1" VND.
        if type(amount) is not int or amount <= 0 or amount >= 10**AMOUNT_MAX_DIGITS:
            raise VietQRError(
                "bad_amount", "Số tiền phải là số nguyên đồng, lớn hơn 0 và không quá 13 chữ số."
            )
        initiation = "12"
        digits = str(amount)
        amount_field = f"54{len(digits):02d}{digits}"

    # The nested TLVs are written out in one f-string rather than through a
    # helper per field. Validated inputs keep every length <= 99.
    # Layout: 38 { 00 GUID, 01 { 00 BIN, 01 account }, 02 service }.
    account_len = len(account_number)
    beneficiary_len = 10 + 4 + account_len  # "0006"+BIN, then "01"+LL+account
    merchant_len = 14 + 4 + beneficiary_len + 12  # GUID TLV, 01 header+value, service TLV
    return (
        f"000201"
        f"0102{initiation}"
        f"38{merchant_len:02d}0010{NAPAS_GUID}01{beneficiary_len:02d}0006{bank_bin}01{account_len:02d}{account_number}"
        f"0208{service}"
        f"5303{CURRENCY_VND}"
        f"{amount_field}"
        f"5802{COUNTRY_VN}"
    )


def _purpose_field(purpose: str | None) -> str:
    """Field 62 with the purpose as sub-field 08 ("" without a purpose); refuses what build_payload refuses."""
    if purpose is None:
        return ""
    if not isinstance(purpose, str):
        raise VietQRError("purpose_empty", "Nội dung chuyển khoản phải là chuỗi ký tự.")
    cleaned = clean_purpose(purpose)
    if not cleaned:
        raise VietQRError("purpose_empty", "Nội dung chuyển khoản trống sau khi bỏ dấu và ký tự đặc biệt.")
    if len(cleaned) > PURPOSE_MAX_LEN:
        raise VietQRError(
            "purpose_too_long",
            f"Nội dung chuyển khoản dài quá {PURPOSE_MAX_LEN} ký tự (sau khi bỏ dấu): “{cleaned}”.",
        )
    return f"62{len(cleaned) + 4:02d}08{len(cleaned):02d}{cleaned}"


def build_payload(
    *,
    bank_bin: str,
    account_number: str,
    amount: int | None = None,
    purpose: str | None = None,
    service: str = SERVICE_ACCOUNT,
) -> str:
    """Build a VietQR payload string.

    - ``bank_bin``: the beneficiary bank's 6-digit NAPAS BIN (e.g. ``970416``).
    - ``account_number``: 1-19 ASCII letters or digits (virtual accounts may
      contain letters); a card number when ``service`` is ``QRIBFTTC``.
    - ``amount``: whole VND, ``> 0`` and at most 13 digits. Given: the QR is
      *dynamic* (point of initiation ``12``) and carries field 54. ``None``:
      the QR is *static* (``11``) and the payer types the amount.
    - ``purpose``: the transfer description, cleaned by :func:`clean_purpose`;
      after cleaning it must be non-empty and at most 25 characters.
    - ``service``: ``QRIBFTTA`` (to an account) or ``QRIBFTTC`` (to a card).

    Raises :class:`VietQRError` on invalid input. The result ends in field 63,
    the CRC-16/CCITT-FALSE over everything before it plus ``"6304"``.
    Many payloads for one account and amount: :func:`payload_builder`.
    """
    body = (
        _checked_fixed_part(bank_bin=bank_bin, account_number=account_number, amount=amount, service=service)
        + _purpose_field(purpose)
        + "6304"
    )
    return body + format(binascii.crc_hqx(body.encode("ascii"), 0xFFFF), "04X")


def payload_builder(
    *,
    bank_bin: str,
    account_number: str,
    amount: int | None = None,
    service: str = SERVICE_ACCOUNT,
) -> Callable[[str | None], str]:
    """``purpose -> payload`` for one account and amount: what :func:`build_payload` gives, faster.

    For bulk issuance, where thousands of payloads differ only in their purpose: the fields before
    62 are validated and laid out once, and the CRC register after them is kept, so each call only
    lays out field 62 and runs the CRC over its ~20 characters. Arguments and errors are those of
    :func:`build_payload` (bad account or amount: raised here; bad purpose: raised by the call).
    """
    fixed = _checked_fixed_part(bank_bin=bank_bin, account_number=account_number, amount=amount, service=service)
    fixed_crc = binascii.crc_hqx(fixed.encode("ascii"), 0xFFFF)
    crc_hqx = binascii.crc_hqx
    clean_re = _CLEAN_PURPOSE_RE

    def build(purpose: str | None) -> str:
        if type(purpose) is str and len(purpose) <= PURPOSE_MAX_LEN and clean_re.fullmatch(purpose):
            # The usual case, a payment reference: already clean, so no Unicode work.
            n = len(purpose)
            tail = f"62{n + 4:02d}08{n:02d}{purpose}6304"
        else:
            tail = _purpose_field(purpose) + "6304"
        return f"{fixed}{tail}{crc_hqx(tail.encode('ascii'), fixed_crc):04X}"

    return build


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VietQR:
    """A parsed, validated VietQR payload.

    ``fields`` holds every top-level field by its two-digit id (read-only),
    including ones this class does not interpret (merchant name 59, city 60,
    terminal label inside 62, ...).
    """

    bank_bin: str
    account_number: str
    service: str
    amount: int | None
    purpose: str | None
    currency: str
    country: str
    point_of_initiation: str  # "static" (11) or "dynamic" (12)
    fields: Mapping[str, str] = field(repr=False, hash=False)

    @property
    def is_dynamic(self) -> bool:
        return self.point_of_initiation == "dynamic"


def _malformed(where: str, detail: str) -> VietQRError:
    return VietQRError("malformed_tlv", f"Mã QR sai cấu trúc ({where}): {detail}.")


def _split_tlv(data: str, where: str) -> list[tuple[str, str, int]]:
    """Split ``data`` into (id, value, offset) triples, strictly.

    Every element needs a two-digit id and a two-digit length, and the last
    value must end exactly at the end of ``data``: no overrun, no trailing
    bytes.
    """
    out: list[tuple[str, str, int]] = []
    pos = 0
    end = len(data)
    while pos < end:
        if pos + 4 > end:
            raise _malformed(where, f"thừa {end - pos} ký tự ở vị trí {pos}")
        tag = data[pos : pos + 2]
        length = data[pos + 2 : pos + 4]
        # isdigit() accepts non-ASCII digits; the regex does not.
        if not (_DIGITS_RE.fullmatch(tag) and _DIGITS_RE.fullmatch(length)):
            raise _malformed(where, f"mã trường hoặc độ dài không phải 2 chữ số ở vị trí {pos}")
        size = int(length)
        start = pos + 4
        if start + size > end:
            raise _malformed(where, f"trường {tag} khai báo {size} ký tự nhưng chỉ còn {end - start}")
        out.append((tag, data[start : start + size], pos))
        pos = start + size
    return out


def _as_dict(items: list[tuple[str, str, int]], where: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for tag, value, _ in items:
        if tag in result:
            raise VietQRError("duplicate_field", f"Mã QR có trường {tag} lặp lại ({where}).")
        result[tag] = value
    return result


def parse_payload(payload: str) -> VietQR:
    """Parse and validate a VietQR payload; raise :class:`VietQRError` if it is not one.

    Checked, in this order: TLV structure (strict), CRC present as the last
    field and correct (hex compared case-insensitively), payload format
    indicator ``01``, point of initiation ``11``/``12``, field 38 with the NAPAS
    GUID, a 6-digit BIN, an account/card number and a known service, currency
    ``704``, country ``VN``, and a digits-only positive amount (VND has no
    minor unit, so ``"10000.00"`` is refused). Nothing is stripped: a trailing
    newline from a scanner is trailing garbage and is reported as such.
    """
    if not isinstance(payload, str):
        raise VietQRError("not_a_string", "Dữ liệu mã QR phải là chuỗi ký tự.")
    items = _split_tlv(payload, "gốc")
    if not items or items[-1][0] != "63":
        raise VietQRError("crc_missing", "Mã QR không kết thúc bằng trường kiểm tra CRC (63).")
    crc_tag, crc_value, crc_pos = items[-1]
    if len(crc_value) != 4 or not _HEX4_RE.fullmatch(crc_value):
        raise VietQRError("crc_missing", "Trường CRC (63) phải gồm đúng 4 ký tự thập lục phân.")
    expected = _crc_hex(payload[: crc_pos + 4])
    if crc_value.upper() != expected:
        raise VietQRError(
            "crc_mismatch",
            f"Mã kiểm tra CRC không khớp (ghi {crc_value.upper()}, tính được {expected}): mã QR bị sai hoặc bị sửa.",
        )
    fields = _as_dict(items, "gốc")

    if items[0][0] != "00" or fields["00"] != "01":
        raise VietQRError("bad_format_indicator", "Trường 00 phải đứng đầu và có giá trị 01.")
    initiation = fields.get("01")
    if initiation not in ("11", "12"):
        raise VietQRError("bad_initiation", "Trường 01 (phương thức khởi tạo) phải là 11 hoặc 12.")

    if "38" not in fields:
        raise VietQRError("not_vietqr", "Không có thông tin tài khoản NAPAS (trường 38): không phải mã VietQR.")
    merchant = _as_dict(_split_tlv(fields["38"], "trường 38"), "trường 38")
    if merchant.get("00") != NAPAS_GUID:
        raise VietQRError("not_vietqr", f"Trường 38 không mang mã định danh NAPAS {NAPAS_GUID}: không phải mã VietQR.")
    if "01" not in merchant:
        raise VietQRError("not_vietqr", "Trường 38 thiếu thông tin ngân hàng thụ hưởng (38/01).")
    beneficiary = _as_dict(_split_tlv(merchant["01"], "trường 38/01"), "trường 38/01")
    bank_bin = beneficiary.get("00", "")
    if not _BIN_RE.fullmatch(bank_bin):
        raise VietQRError("bad_bin", "Mã BIN ngân hàng (38/01/00) phải gồm đúng 6 chữ số.")
    account = beneficiary.get("01", "")
    if not _ACCOUNT_RE.fullmatch(account):
        raise VietQRError("bad_account", "Số tài khoản/số thẻ (38/01/01) phải gồm 1–19 chữ cái hoặc chữ số.")
    service = merchant.get("02", "")
    if service not in SERVICES:
        raise VietQRError("bad_service", "Loại dịch vụ (38/02) phải là QRIBFTTA hoặc QRIBFTTC.")

    currency = fields.get("53")
    if currency != CURRENCY_VND:
        raise VietQRError("bad_currency", "Tiền tệ (trường 53) phải là 704 (VND).")
    country = fields.get("58")
    if country != COUNTRY_VN:
        raise VietQRError("bad_country", "Mã quốc gia (trường 58) phải là VN.")

    amount: int | None = None
    if "54" in fields:
        raw_amount = fields["54"]
        if not _DIGITS_RE.fullmatch(raw_amount) or int(raw_amount) <= 0:
            raise VietQRError("bad_amount", "Số tiền (trường 54) phải là số nguyên đồng dương, chỉ gồm chữ số.")
        amount = int(raw_amount)

    purpose: str | None = None
    if "62" in fields:
        additional = _as_dict(_split_tlv(fields["62"], "trường 62"), "trường 62")
        purpose = additional.get("08")

    return VietQR(
        bank_bin=bank_bin,
        account_number=account,
        service=service,
        amount=amount,
        purpose=purpose,
        currency=currency,
        country=country,
        point_of_initiation="dynamic" if initiation == "12" else "static",
        fields=MappingProxyType(fields),
    )


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

_BORDER = 4  # the quiet zone the QR standard asks for; scanners struggle with less


def _make_qr(payload: str, *, scale: int, validate: bool):
    import segno  # imported lazily: only rendering needs it

    if type(scale) is not int or not 1 <= scale <= 64:
        raise ValueError("scale must be an integer between 1 and 64")
    if validate:
        # Printing a QR whose CRC is wrong sends payers to a failing scan; fail here instead.
        parse_payload(payload)
    # Error correction M exactly (no boost): predictable module size for a given
    # payload, which keeps printed notices uniform.
    return segno.make(payload, error="m", boost_error=False, micro=False)


def render_svg(payload: str, *, scale: int = 4, validate: bool = True) -> str:
    """The QR for ``payload`` as an inline ``<svg>`` element (no XML declaration).

    Error correction M, 4-module quiet zone, ``scale`` pixels per module. The
    element carries a ``viewBox`` plus explicit width/height so that CSS can
    resize it without blurring. With ``validate`` (the default) the payload
    must parse as VietQR, else :class:`VietQRError`.
    """
    qr = _make_qr(payload, scale=scale, validate=validate)
    size = qr.symbol_size(scale=scale, border=_BORDER)[0]
    svg = qr.svg_inline(scale=scale, border=_BORDER, omitsize=True, title="VietQR", svgclass="vietqr")
    # segno emits either a viewBox or width/height; an embeddable image wants both.
    return svg.replace("<svg ", f'<svg width="{size}" height="{size}" ', 1)


def render_png(payload: str, *, scale: int = 6, validate: bool = True) -> bytes:
    """The QR for ``payload`` as PNG bytes (error correction M, 4-module quiet zone)."""
    qr = _make_qr(payload, scale=scale, validate=validate)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=_BORDER)
    return buffer.getvalue()
