"""VietQR encoder/decoder tests. Pure Python: no database, no Django."""

from __future__ import annotations

import random

import pytest

from thuphi.billing import vietqr
from thuphi.billing.vietqr import (
    VietQR,
    VietQRError,
    build_payload,
    clean_purpose,
    crc16_ccitt_false,
    crc16_ccitt_false_py,
    parse_payload,
    render_png,
    render_svg,
)

STATIC_970416 = (
    "00020101021138530010A0000007270123000697041601092576788590208QRIBFTTA53037045802VN6304AE9F"
)
DYNAMIC_970416 = (
    "00020101021238530010A0000007270123000697041601092576788590208QRIBFTTA"
    "53037045405100005802VN62150811Chuyen tien630453E6"
)


def _with_crc(body_without_crc: str) -> str:
    """Append a correct CRC so that a test reaches the check it targets."""
    body = body_without_crc + "6304"
    return body + format(crc16_ccitt_false(body.encode()), "04X")


# --- CRC ---------------------------------------------------------------------


def test_crc_standard_check_value():
    # The catalogue check value of CRC-16/CCITT-FALSE.
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false_py(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF


def _crc_bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def test_crc_fast_and_table_and_bitwise_agree():
    rng = random.Random(2024)
    for n in list(range(0, 40)) + [255, 256, 1000]:
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc16_ccitt_false(data) == crc16_ccitt_false_py(data) == _crc_bitwise(data)


# --- the vectors from the brief -------------------------------------------------


def test_static_vector_parses():
    qr = parse_payload(STATIC_970416)
    assert qr.bank_bin == "970416"
    assert qr.account_number == "257678859"
    assert qr.service == "QRIBFTTA"
    assert qr.amount is None
    assert qr.purpose is None
    assert qr.currency == "704"
    assert qr.country == "VN"
    assert qr.point_of_initiation == "static"
    assert not qr.is_dynamic
    assert qr.fields["63"] == "AE9F"


def test_dynamic_vector_parses():
    qr = parse_payload(DYNAMIC_970416)
    assert (qr.bank_bin, qr.account_number, qr.amount, qr.purpose) == ("970416", "257678859", 10000, "Chuyen tien")
    assert qr.point_of_initiation == "dynamic"
    assert qr.is_dynamic


def test_build_reproduces_vectors_exactly():
    assert build_payload(bank_bin="970416", account_number="257678859") == STATIC_970416
    assert (
        build_payload(bank_bin="970416", account_number="257678859", amount=10000, purpose="Chuyen tien")
        == DYNAMIC_970416
    )


def test_wrong_crc_is_rejected():
    with pytest.raises(VietQRError) as info:
        parse_payload(DYNAMIC_970416[:-4] + "53E5")
    assert info.value.code == "crc_mismatch"
    assert isinstance(info.value, ValueError)
    assert "CRC" in info.value.message


def test_lower_case_crc_is_accepted():
    assert parse_payload(STATIC_970416[:-4] + "ae9f").bank_bin == "970416"


# --- more public vectors --------------------------------------------------------
# Payloads published by independent implementations; each was checked to agree
# with this one (same CRC, same fields) before being added.

# The NAPAS "QR Format T&C v1.5.2" examples, as used in takashato/laravel-vietqr's tests.
NAPAS_STATIC_ACCOUNT = (
    "00020101021138570010A00000072701270006970403011300110123456780208QRIBFTTA53037045802VN63049E6F"
)
NAPAS_STATIC_CARD = (
    "00020101021138600010A00000072701300006970403011697040311012345670208QRIBFTTC53037045802VN63044F52"
)
# Dynamic, with a terminal label (62/07) this module does not build but must read.
NAPAS_DYNAMIC_ACCOUNT_WITH_TERMINAL = (
    "00020101021238570010A00000072701270006970403011300110123456780208QRIBFTTA530370454061800005802VN"
    "62340107NPS68690819thanh toan don hang63042E2E"
)
# subiz/vietqr (Go) tests and README.
SUBIZ_STATIC = "00020101021138540010A00000072701240006970423011000999999990208QRIBFTTA53037045802VN6304CBB4"
SUBIZ_DYNAMIC = (
    "00020101021238570010A00000072701270006970422011300234579234420208QRIBFTTA53037045405401235802VN"
    "62200816test text string6304D9C6"
)
SUBIZ_DIACRITICS = (
    "00020101021238570010A00000072701270006970422011300234579234420208QRIBFTTA53037045405401235802VN"
    "62160812chuyen khoan6304722F"
)
SUBIZ_README_UNG_HO = (
    "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA530370454061200005802VN"
    "62170813ung ho lu lut6304C15C"
)
# A payOS checkout QR: a virtual account number with letters.
PAYOS_VIRTUAL_ACCOUNT = (
    "00020101021238570010A000000727012700069704220113VQRQAAUQA63360208QRIBFTTA530370454061000005802VN"
    "62220818Payment for course6304AC3C"
)


@pytest.mark.parametrize(
    "payload, expected",
    [
        (NAPAS_STATIC_ACCOUNT, ("970403", "0011012345678", "QRIBFTTA", None, None, "static")),
        (NAPAS_STATIC_CARD, ("970403", "9704031101234567", "QRIBFTTC", None, None, "static")),
        (
            NAPAS_DYNAMIC_ACCOUNT_WITH_TERMINAL,
            ("970403", "0011012345678", "QRIBFTTA", 180000, "thanh toan don hang", "dynamic"),
        ),
        (SUBIZ_STATIC, ("970423", "0099999999", "QRIBFTTA", None, None, "static")),
        (SUBIZ_DYNAMIC, ("970422", "0023457923442", "QRIBFTTA", 40123, "test text string", "dynamic")),
        (SUBIZ_DIACRITICS, ("970422", "0023457923442", "QRIBFTTA", 40123, "chuyen khoan", "dynamic")),
        (SUBIZ_README_UNG_HO, ("970415", "0011001932418", "QRIBFTTA", 120000, "ung ho lu lut", "dynamic")),
        (PAYOS_VIRTUAL_ACCOUNT, ("970422", "VQRQAAUQA6336", "QRIBFTTA", 100000, "Payment for course", "dynamic")),
    ],
)
def test_public_vectors_parse(payload, expected):
    qr = parse_payload(payload)
    assert (qr.bank_bin, qr.account_number, qr.service, qr.amount, qr.purpose, qr.point_of_initiation) == expected


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(bank_bin="970403", account_number="0011012345678"), NAPAS_STATIC_ACCOUNT),
        (dict(bank_bin="970403", account_number="9704031101234567", service="QRIBFTTC"), NAPAS_STATIC_CARD),
        (dict(bank_bin="970423", account_number="0099999999"), SUBIZ_STATIC),
        (
            dict(bank_bin="970422", account_number="0023457923442", amount=40123, purpose="test text string"),
            SUBIZ_DYNAMIC,
        ),
        # Diacritics are stripped exactly as the other implementation does.
        (
            dict(bank_bin="970422", account_number="0023457923442", amount=40123, purpose="chuyển khoản"),
            SUBIZ_DIACRITICS,
        ),
        (
            dict(bank_bin="970415", account_number="0011001932418", amount=120000, purpose="ủng hộ lũ lụt"),
            SUBIZ_README_UNG_HO,
        ),
        (
            dict(bank_bin="970422", account_number="VQRQAAUQA6336", amount=100000, purpose="Payment for course"),
            PAYOS_VIRTUAL_ACCOUNT,
        ),
    ],
)
def test_public_vectors_build(kwargs, expected):
    assert build_payload(**kwargs) == expected


# --- purpose cleaning -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("Chuyen tien", "Chuyen tien"),
        ("Đóng học phí", "Dong hoc phi"),
        ("đ Đ ă â ê ô ơ ư", "d D a a e o o u"),
        ("TIỀN ĂN BÁN TRÚ", "TIEN AN BAN TRU"),
        ("  nhiều   khoảng\ttrắng\n ", "nhieu khoang trang"),
        ("Viện phí 🙂 TP7K3M9Q2XH", "Vien phi TP7K3M9Q2XH"),
        ("ＴＰ１２３", "TP123"),  # full-width folds to ASCII
        ("học\u00a0phí", "hoc phi"),  # NBSP is whitespace
        ("a/b-c.d_e", "a/b-c.d_e"),  # printable ASCII punctuation is kept
    ],
)
def test_clean_purpose(raw, cleaned):
    assert clean_purpose(raw) == cleaned


def test_purpose_is_cleaned_in_payload():
    qr = parse_payload(build_payload(bank_bin="970436", account_number="1", amount=5, purpose="Học phí  tháng 9"))
    assert qr.purpose == "Hoc phi thang 9"


def test_purpose_max_length_is_25_after_cleaning():
    exactly = "Đ" * 25  # 25 characters once "Đ" becomes "D"
    assert parse_payload(build_payload(bank_bin="970436", account_number="1", purpose=exactly)).purpose == "D" * 25
    with pytest.raises(VietQRError) as info:
        build_payload(bank_bin="970436", account_number="1", purpose="x" * 26)
    assert info.value.code == "purpose_too_long"


@pytest.mark.parametrize("purpose", ["", "   ", "🙂🙂", "漢字"])
def test_purpose_empty_after_cleaning_is_refused(purpose):
    with pytest.raises(VietQRError) as info:
        build_payload(bank_bin="970436", account_number="1", purpose=purpose)
    assert info.value.code == "purpose_empty"


# --- build validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, code",
    [
        (dict(bank_bin="97041"), "bad_bin"),
        (dict(bank_bin="9704166"), "bad_bin"),
        (dict(bank_bin="97041A"), "bad_bin"),
        (dict(bank_bin="９７０４１６"), "bad_bin"),  # non-ASCII digits
        (dict(account_number=""), "bad_account"),
        (dict(account_number="1" * 20), "bad_account"),
        (dict(account_number="0123-456"), "bad_account"),
        (dict(account_number="0123 456"), "bad_account"),
        (dict(account_number="số123"), "bad_account"),
        (dict(service="QRIBFTTX"), "bad_service"),
        (dict(amount=0), "bad_amount"),
        (dict(amount=-1000), "bad_amount"),
        (dict(amount=10**13), "bad_amount"),
        (dict(amount=1000.0), "bad_amount"),
        (dict(amount=True), "bad_amount"),
        (dict(amount="1000"), "bad_amount"),
    ],
)
def test_build_rejects_bad_input(kwargs, code):
    args = dict(bank_bin="970436", account_number="0123456789") | kwargs
    with pytest.raises(VietQRError) as info:
        build_payload(**args)
    assert info.value.code == code
    assert info.value.message  # a Vietnamese sentence for the user


def test_build_accepts_limits():
    qr = parse_payload(build_payload(bank_bin="970436", account_number="A" * 19, amount=10**13 - 1))
    assert qr.account_number == "A" * 19
    assert qr.amount == 9_999_999_999_999
    assert parse_payload(build_payload(bank_bin="970436", account_number="1", amount=1)).amount == 1


def test_keyword_only():
    with pytest.raises(TypeError):
        build_payload("970436", "0123456789")  # type: ignore[misc]


# --- parse validation --------------------------------------------------------------

def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def _merchant(bank_bin="970436", account="0123456789", service="QRIBFTTA", guid="A000000727") -> str:
    return _tlv("38", _tlv("00", guid) + _tlv("01", _tlv("00", bank_bin) + _tlv("01", account)) + _tlv("02", service))


MERCHANT_970436 = _merchant()
HEAD = "000201" + "010211"
HEAD_DYN = "000201" + "010212"


@pytest.mark.parametrize(
    "payload, code",
    [
        ("", "crc_missing"),
        (STATIC_970416[:-1], "malformed_tlv"),  # last field overruns
        (STATIC_970416 + "0", "malformed_tlv"),  # trailing garbage
        (STATIC_970416 + "\n", "malformed_tlv"),  # nothing is stripped
        (STATIC_970416 + "0100", "crc_missing"),  # CRC not last
        ("0002010102113X", "malformed_tlv"),  # truncated header
        ("00020101021138ZZ", "malformed_tlv"),  # non-digit length
        ("000201X10211", "malformed_tlv"),  # non-digit id
        ("00020101021138990010", "malformed_tlv"),  # declared length beyond the end
        (STATIC_970416[:-8] + "6303AE9", "crc_missing"),  # CRC of the wrong size
        (STATIC_970416[:-4] + "AE9G", "crc_missing"),  # CRC not hex
        (STATIC_970416[:-4] + "0000", "crc_mismatch"),
        (_with_crc("000202" + "010211" + MERCHANT_970436 + "5303704" + "5802VN"), "bad_format_indicator"),
        (_with_crc("010211" + "000201" + MERCHANT_970436 + "5303704" + "5802VN"), "bad_format_indicator"),
        (_with_crc("000201" + "010213" + MERCHANT_970436 + "5303704" + "5802VN"), "bad_initiation"),
        (_with_crc("000201" + MERCHANT_970436 + "5303704" + "5802VN"), "bad_initiation"),
        (_with_crc(HEAD + "5303704" + "5802VN"), "not_vietqr"),
        (_with_crc(HEAD + _merchant(guid="A000000775") + "5303704" + "5802VN"), "not_vietqr"),
        (_with_crc(HEAD + _tlv("38", _tlv("00", "A000000727")) + "5303704" + "5802VN"), "not_vietqr"),
        (_with_crc(HEAD + _merchant(bank_bin="970X36") + "5303704" + "5802VN"), "bad_bin"),
        (_with_crc(HEAD + _merchant(bank_bin="97043") + "5303704" + "5802VN"), "bad_bin"),
        (_with_crc(HEAD + _merchant(account="01234-6789") + "5303704" + "5802VN"), "bad_account"),
        (_with_crc(HEAD + _merchant(account="") + "5303704" + "5802VN"), "bad_account"),
        (_with_crc(HEAD + _merchant(service="QRPUSHXX") + "5303704" + "5802VN"), "bad_service"),
        # 38/01 whose inner TLV has one stray character at its end.
        (_with_crc(HEAD + _tlv("38", _tlv("00", "A000000727") + _tlv("01", "0006970436" + "010201" + "9")
                                 + _tlv("02", "QRIBFTTA")) + "5303704" + "5802VN"), "malformed_tlv"),
        (_with_crc(HEAD + MERCHANT_970436 + "5303840" + "5802VN"), "bad_currency"),
        (_with_crc(HEAD + MERCHANT_970436 + "5802VN"), "bad_currency"),
        (_with_crc(HEAD + MERCHANT_970436 + "5303704" + "5802TH"), "bad_country"),
        (_with_crc(HEAD + MERCHANT_970436 + "5303704"), "bad_country"),
        (_with_crc(HEAD_DYN + MERCHANT_970436 + "5303704" + "540810000.00" + "5802VN"), "bad_amount"),
        (_with_crc(HEAD_DYN + MERCHANT_970436 + "5303704" + "54010" + "5802VN"), "bad_amount"),
        (_with_crc(HEAD_DYN + MERCHANT_970436 + "5303704" + "5404-100" + "5802VN"), "bad_amount"),
        (_with_crc(HEAD + "010211" + MERCHANT_970436 + "5303704" + "5802VN"), "duplicate_field"),
        (_with_crc(HEAD_DYN + MERCHANT_970436 + "5303704" + "5802VN" + "6204081X"), "malformed_tlv"),
    ],
)
def test_parse_rejects(payload, code):
    with pytest.raises(VietQRError) as info:
        parse_payload(payload)
    assert info.value.code == code, info.value


def test_parse_rejects_non_string():
    with pytest.raises(VietQRError) as info:
        parse_payload(STATIC_970416.encode())  # type: ignore[arg-type]
    assert info.value.code == "not_a_string"


def test_parse_keeps_unknown_fields():
    payload = _with_crc(
        "000201" + "010211" + MERCHANT_970436 + "5303704" + "5802VN" + "5910TRUONG THU" + "6006HA NOI"
    )
    qr = parse_payload(payload)
    assert qr.fields["59"] == "TRUONG THU"
    assert qr.fields["60"] == "HA NOI"
    with pytest.raises(TypeError):
        qr.fields["59"] = "X"  # type: ignore[index]


def test_parsed_value_is_frozen():
    qr = parse_payload(STATIC_970416)
    with pytest.raises(AttributeError):
        qr.amount = 5  # type: ignore[misc]
    assert isinstance(qr, VietQR)


# --- round trip ----------------------------------------------------------------------

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test extra
    given = None

_ACCOUNT_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _check_round_trip(bank_bin, account, amount, purpose, service):
    payload = build_payload(
        bank_bin=bank_bin, account_number=account, amount=amount, purpose=purpose, service=service
    )
    qr = parse_payload(payload)
    assert qr.bank_bin == bank_bin
    assert qr.account_number == account
    assert qr.service == service
    assert qr.amount == amount
    assert qr.purpose == (None if purpose is None else clean_purpose(purpose))
    assert qr.point_of_initiation == ("static" if amount is None else "dynamic")
    assert payload.isascii()
    # The per-account builder of bulk issuance gives the very same string.
    assert vietqr.payload_builder(bank_bin=bank_bin, account_number=account, amount=amount,
                                  service=service)(purpose) == payload
    # Building is deterministic, so rebuilding from the parsed value gives the same string.
    assert build_payload(
        bank_bin=qr.bank_bin, account_number=qr.account_number, amount=qr.amount,
        purpose=qr.purpose, service=qr.service,
    ) == payload


if given is not None:

    _purposes = st.text(
        alphabet=st.sampled_from("abcxyzABCXYZ0189 .-/đĐăâêôơưáàảãạếềểễệ\t"), min_size=0, max_size=30
    ).filter(lambda p: 0 < len(clean_purpose(p)) <= vietqr.PURPOSE_MAX_LEN)

    @settings(max_examples=300, deadline=None)
    @given(
        bank_bin=st.text(alphabet="0123456789", min_size=6, max_size=6),
        account=st.text(alphabet=_ACCOUNT_CHARS, min_size=1, max_size=19),
        amount=st.none() | st.integers(min_value=1, max_value=10**13 - 1),
        purpose=st.none() | _purposes,
        service=st.sampled_from(["QRIBFTTA", "QRIBFTTC"]),
    )
    def test_round_trip(bank_bin, account, amount, purpose, service):
        _check_round_trip(bank_bin, account, amount, purpose, service)

else:  # pragma: no cover

    @pytest.mark.parametrize(
        "bank_bin, account, amount, purpose, service",
        [
            ("970436", "1", None, None, "QRIBFTTA"),
            ("970416", "257678859", 10000, "Chuyen tien", "QRIBFTTA"),
            ("970403", "9704031101234567", 180000, "thanh toán đơn hàng", "QRIBFTTC"),
            ("000000", "Z" * 19, 10**13 - 1, "x" * 25, "QRIBFTTA"),
            ("970422", "VQRQAAUQA6336", 1, "TP7K3M9Q2XH", "QRIBFTTA"),
        ],
    )
    def test_round_trip(bank_bin, account, amount, purpose, service):
        _check_round_trip(bank_bin, account, amount, purpose, service)


def test_round_trip_fixed_cases():
    # Runs even when hypothesis is installed, so the obvious cases are always covered.
    for case in [
        ("970436", "1", None, None, "QRIBFTTA"),
        ("970403", "9704031101234567", 180000, "thanh toán đơn hàng", "QRIBFTTC"),
        ("000000", "Z" * 19, 10**13 - 1, "x" * 25, "QRIBFTTA"),
        ("970422", "VQRQAAUQA6336", 1, "TP7K3M9Q2XH", "QRIBFTTA"),
    ]:
        _check_round_trip(*case)


def test_payload_builder_matches_build_payload_for_many_references():
    from thuphi.billing import reference as refcode

    rng = random.Random(7)
    for amount in (None, 1, 450_000, 1_334_520, 10**13 - 1):
        build = vietqr.payload_builder(bank_bin="970436", account_number="0991000123456", amount=amount)
        for _ in range(200):
            ref = refcode.generate(rng)
            assert build(ref) == build_payload(bank_bin="970436", account_number="0991000123456", amount=amount,
                                               purpose=ref)


def test_payload_builder_refuses_what_build_payload_refuses():
    # account, bank and amount when the builder is made
    for kwargs, code in [({"bank_bin": "97043"}, "bad_bin"), ({"account_number": "12 34"}, "bad_account"),
                         ({"amount": 0}, "bad_amount"), ({"amount": True}, "bad_amount"),
                         ({"service": "QRPUSH"}, "bad_service")]:
        with pytest.raises(VietQRError) as exc:
            vietqr.payload_builder(**{"bank_bin": "970436", "account_number": "123", **kwargs})
        assert exc.value.code == code
    # the purpose when it is called
    build = vietqr.payload_builder(bank_bin="970436", account_number="123", amount=1000)
    for purpose, code in [("", "purpose_empty"), ("🙂", "purpose_empty"), ("x" * 26, "purpose_too_long"),
                          (123, "purpose_empty")]:
        with pytest.raises(VietQRError) as exc:
            build(purpose)
        assert exc.value.code == code
    # and a purpose that needs cleaning is cleaned the same way
    assert build("Học phí tháng 9") == build_payload(bank_bin="970436", account_number="123", amount=1000,
                                                     purpose="Học phí tháng 9")
    assert build(None) == build_payload(bank_bin="970436", account_number="123", amount=1000)


# --- rendering ---------------------------------------------------------------------


def test_render_svg_is_inline_embeddable():
    svg = render_svg(DYNAMIC_970416)
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg
    assert "viewBox=" in svg and 'width="' in svg and 'height="' in svg
    assert svg.rstrip().endswith("</svg>")


def test_render_svg_scale_changes_size():
    small, big = render_svg(STATIC_970416, scale=2), render_svg(STATIC_970416, scale=8)
    width = lambda s: int(s.split('width="', 1)[1].split('"', 1)[0])  # noqa: E731
    assert width(big) == 4 * width(small)


def test_render_png_signature():
    png = render_png(DYNAMIC_970416)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_render_uses_error_correction_m():
    import segno

    qr = vietqr._make_qr(DYNAMIC_970416, scale=4, validate=True)
    assert isinstance(qr, segno.QRCode)
    assert qr.error == "M"


def test_render_refuses_invalid_payload_unless_told_not_to_validate():
    bad = DYNAMIC_970416[:-4] + "53E5"
    with pytest.raises(VietQRError):
        render_svg(bad)
    with pytest.raises(VietQRError):
        render_png(bad)
    assert render_svg(bad, validate=False).startswith("<svg ")


@pytest.mark.parametrize("scale", [0, -1, 1.5, 65])
def test_render_rejects_bad_scale(scale):
    with pytest.raises(ValueError):
        render_svg(STATIC_970416, scale=scale)
