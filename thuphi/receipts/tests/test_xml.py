"""The signed bytes written out directly equal the C14N 2.0 round trip they replaced, for any text."""
from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thuphi.receipts.models import Receipt
from thuphi.receipts.xml import _canonical, _content, canonical_bytes

# Any text a receipt field may hold, including what XML must escape or normalise (& < > " ' CR LF TAB),
# Vietnamese letters, combining marks and characters outside the BMP.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=0x09), max_size=40)


def receipt(**texts) -> Receipt:
    base = dict(
        receipt_name="Biên lai thu tiền", form_symbol="01BLP0-001", serial="TP-26E", year=2026, number=42,
        issued_at=dt.datetime(2026, 11, 20, 2, 15, 9, tzinfo=dt.timezone.utc), issue_date=dt.date(2026, 11, 20),
        institution_name="Trường Tiểu học Kinh Bắc", institution_tax_code="2300123456",
        institution_address="Phường Kinh Bắc, Bắc Ninh", payer_name="Nguyễn Văn An", payer_code="HS001",
        bill_reference="TP7K3M9Q2XH", fee_names=["Tiền ăn bán trú", "Bảo hiểm y tế học sinh"], amount=1_250_000,
        amount_in_words="Một triệu hai trăm năm mươi nghìn đồng", method="transfer", method_label="Chuyển khoản",
        bank_reference="FT25123456789", verification_code="ABCD-EFGH-JKLM")
    base.update(texts)
    return Receipt(**base)


def test_a_plain_receipt_gives_the_reference_bytes():
    r = receipt()
    assert canonical_bytes(r) == _canonical(_content(r))
    assert canonical_bytes(r).startswith('<DLHDon Id="DLHDon"><TTChung><PBan>thuphi-receipt-1</PBan>'.encode())


@settings(max_examples=300, deadline=None)
@given(name=TEXT, payer=TEXT, address=TEXT, words=TEXT, bank_ref=TEXT, fees=st.lists(TEXT, max_size=4))
def test_direct_bytes_equal_the_element_tree_round_trip(name, payer, address, words, bank_ref, fees):
    r = receipt(institution_name=name, payer_name=payer, institution_address=address, amount_in_words=words,
                bank_reference=bank_ref, fee_names=fees)
    try:
        expected = _canonical(_content(r))
    except ET.ParseError:
        # text XML cannot carry: both paths refuse it, as the reference path always did
        with pytest.raises(ET.ParseError):
            canonical_bytes(r)
        return
    assert canonical_bytes(r) == expected


@pytest.mark.parametrize("text", ["a & b < c > d", "line\r\nbreak\rold mac", "tab\there", "quote \" '",
                                  "emoji 🎓", "Nguyễn (decomposed: Nguye\u0302\u0303n)"])
def test_characters_that_need_care(text):
    r = receipt(payer_name=text, fee_names=[text])
    assert canonical_bytes(r) == _canonical(_content(r))


def test_a_control_character_is_refused_not_signed():
    with pytest.raises(ET.ParseError):
        canonical_bytes(receipt(payer_name="bad\x01name"))
