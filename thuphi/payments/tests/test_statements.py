"""Bank statement import: every format read from a realistic sample, each bank transaction booked
once (repeated files, overlapping files, a webhook first), bad rows reported by number, and the bulk
booking path writing exactly what `credit_book` writes."""
from __future__ import annotations

import datetime as dt
import io
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from thuphi.billing import reference as refcode
from thuphi.billing.models import Bill, BillStatus, FeeKind
from thuphi.billing.services import LineInput, bill_cancel, bill_create
from thuphi.payments import ledger
from thuphi.payments.models import (
    Account,
    Allocation,
    Credit,
    CreditStatus,
    EventStatus,
    InboundEvent,
    LedgerEntry,
    LedgerTransaction,
    StatementImport,
    StatementLineRecord,
    VirtualAccount,
)
from thuphi.payments.statements import booking
from thuphi.payments.statements.parsers import (
    PRESETS,
    VIETNAM_TZ,
    AmountError,
    ColumnMapping,
    detect_format,
    parse_amount,
    parse_camt,
    parse_csv,
    parse_mt940,
    parse_statement,
    parse_xlsx,
)
from thuphi.payments.statements.service import statement_import
from thuphi.registry.models import BankAccount, Payer

SAMPLES = Path(__file__).parent / "samples"
REF_A = "TPJ4H6BCFNK"  # bill A, 1,334,520 đ due
REF_B = "TPVKTBXABKE"  # bill B, 1,334,520 đ due
REF_UNKNOWN = "TPJWYEPFZX0"  # valid check character, no such bill
ACCOUNT = "1023456701"  # the default account of the first institution made in a test (conftest)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def hcm(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VIETNAM_TZ)


# ----------------------------------------------------------------------------- amounts and formats

@pytest.mark.parametrize("raw, expected", [
    ("1.234.567", 1_234_567), ("1,234,567", 1_234_567), ("1.234.567,00", 1_234_567), ("1,234,567.00", 1_234_567),
    ("1234567", 1_234_567), ("1234567,", 1_234_567), ("500.000 VND", 500_000), ("500.000 đ", 500_000),
    ("(150,000)", -150_000), ("-2.000.000", -2_000_000), ("2.000.000-", -2_000_000), ("+100", 100),
    ("0", 0), (",00", 0), (1334520, 1_334_520), (1334520.0, 1_334_520),
])
def test_amounts_in_every_notation_read_as_whole_dong(raw, expected):
    assert parse_amount(raw) == expected


@pytest.mark.parametrize("raw", [",50", "1.5", "1.234.567,50", "1500.5", 1500.5, "12.34.567", "abc", "", None,
                                 "1.2.3", "100.000.000.001", "--5"])
def test_fractions_and_garbage_are_refused(raw):
    with pytest.raises(AmountError):
        parse_amount(raw)


def test_explicit_decimal_mark_is_obeyed():
    assert parse_amount("1.234", decimal=",") == 1234
    with pytest.raises(AmountError):
        parse_amount("1,234", decimal=",")  # 1,234 đ with a decimal comma is a fraction
    assert parse_amount("1,234", decimal=".") == 1234


@pytest.mark.parametrize("name, fmt", [("vcb.csv", "csv"), ("mb.csv", "csv"), ("vietinbank.xlsx", "xlsx"),
                                       ("camt053.xml", "camt053"), ("camt054.xml", "camt054"),
                                       ("mt940.sta", "mt940")])
def test_format_is_detected_from_content(name, fmt):
    assert detect_format(sample(name), "") == fmt
    assert detect_format(sample(name), "upload.bin") == fmt


# ----------------------------------------------------------------------------- each format

def test_vcb_csv_with_preamble_totals_and_quoted_thousands():
    result = parse_csv(sample("vcb.csv"), PRESETS["vcb"])
    assert result.errors == [] and result.account_number == ACCOUNT
    first, out, split, no_ref = result.lines
    assert (first.line_no, first.amount, first.direction, first.bank_reference) == (9, 1_334_520, "in", "5243.65937")
    assert first.booked_at == hcm(2026, 11, 18) and first.booked_at.utcoffset() == dt.timedelta(hours=7)
    assert REF_A in first.description
    assert (out.amount, out.direction) == (2_000_000, "out")
    assert split.description.startswith("IBFT TPVKT BXABKE") and split.amount == 500_000
    assert (no_ref.line_no, no_ref.amount) == (12, 250_000)
    # the same file, auto-detected, reads the same
    assert parse_statement(sample("vcb.csv"), filename="vcb.csv").lines == result.lines


def test_mb_csv_semicolons_dot_thousands_times_and_bilingual_headers():
    result = parse_csv(sample("mb.csv"), PRESETS["mb"])
    assert result.errors == [] and result.account_number == ACCOUNT
    assert [(ln.line_no, ln.amount, ln.direction, ln.bank_reference) for ln in result.lines] == [
        (6, 1_334_520, "in", "FT26322000111"), (7, 2_000_000, "out", "FT26323000222"),
        (8, 500_000, "in", "FT26324000333")]
    assert result.lines[0].booked_at == hcm(2026, 11, 18, 9, 15, 46)


def test_vietinbank_xlsx_fills_down_dates_and_reports_a_fractional_row():
    result = parse_xlsx(sample("vietinbank.xlsx"), PRESETS["vietinbank"])
    assert result.account_number == ACCOUNT
    assert [(ln.line_no, ln.amount, ln.direction) for ln in result.lines] == [
        (7, 1_334_520, "in"), (8, 2_000_000, "out"), (9, 500_000, "in")]
    assert result.lines[1].booked_at == hcm(2026, 11, 18, 9, 15, 46)  # the blank date of row 8, filled down
    assert result.lines[0].counterparty_name == "NGUYEN THI LAN"
    assert [no for no, _m in result.errors] == [10] and "phần lẻ" in result.errors[0][1]
    # without the preset the blank date is an error that names the row and the way out
    auto = parse_xlsx(sample("vietinbank.xlsx"))
    assert auto.errors[0][0] == 8 and "--preset vietinbank" in auto.errors[0][1]


def test_camt053_any_version_entries_parties_and_pending_entries():
    result = parse_camt(sample("camt053.xml"))
    assert result.fmt == "camt053" and result.account_number == ACCOUNT
    credit, debit, split = result.lines
    assert (credit.line_no, credit.amount, credit.direction, credit.bank_reference) == (22, 1_334_520, "in",
                                                                                      "FT26322000111")
    assert credit.description == f"MBVCB.4525077405.174242.{REF_A} NOP TIEN AN T11"
    assert credit.counterparty_name == "NGUYEN THI LAN" and credit.booked_at == hcm(2026, 11, 18, 9, 15, 46)
    assert debit.direction == "out" and split.amount == 500_000
    assert [no for no, _m in result.errors] == [68] and "PDNG" in result.errors[0][1]
    # another version of the schema reads the same
    older = sample("camt053.xml").replace(b"camt.053.001.08", b"camt.053.001.02")
    assert parse_camt(older).lines == result.lines


def test_camt054_notification_with_utc_time_and_virtual_account():
    (line,) = parse_camt(sample("camt054.xml")).lines
    assert line.booked_at == hcm(2026, 11, 18, 9, 15, 46)  # 02:15:46Z
    assert (line.amount, line.bank_reference, line.virtual_account) == (1_334_520, "FT26322000111",
                                                                        "9601023456701001")


def test_camt_fractional_amount_foreign_currency_and_dtd_are_refused():
    body = sample("camt054.xml")
    assert "phần lẻ" in parse_camt(body.replace(b">1334520<", b">1334520.50<")).errors[0][1]
    assert "USD" in parse_camt(body.replace(b'Ccy="VND">1334520', b'Ccy="USD">1334520')).errors[0][1]
    evil = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><Document>&a;</Document>'
    result = parse_camt(evil)
    assert result.lines == [] and "DTD" in result.errors[0][1]


def test_mt940_tags_multiline_86_and_balance_check():
    result = parse_mt940(sample("mt940.sta"))
    assert result.errors == [] and result.account_number == ACCOUNT
    first, out, third = result.lines
    assert (first.line_no, first.amount, first.bank_reference) == (6, 1_334_520, "FT26322000111")
    assert first.description.endswith("GD 174242-181126 09:15:46")
    assert (out.direction, out.amount) == ("out", 2_000_000) and third.booked_at == hcm(2026, 11, 20)


def test_mt940_bad_line_and_truncated_file_are_reported():
    text = sample("mt940.sta").decode()
    bad = text.replace(":61:2611191119D2000000,", ":61:2611191119D2000000,50")
    result = parse_mt940(bad)
    assert [no for no, _m in result.errors] == [9] and len(result.lines) == 2
    truncated = text.replace(":61:2611201120C500000,NTRFNONREF//FT26324000333\r\n:86:IBFT TPVKTBXABKE HOC PHI\r\n", "")
    result = parse_mt940(truncated)
    assert len(result.lines) == 2 and result.errors and result.errors[0][0] == 11  # the :62F: line
    assert "Số dư cuối kỳ" in result.errors[0][1]


def test_custom_mapping_signed_amount_and_direction_column():
    data = ("Thoi gian|So tien|Loai|Noi dung\n"
            "2026-11-18 09:15:46|1334520|C|" + REF_A + "\n"
            "2026-11-18 10:00:00|2000000|D|chi\n").encode()
    mapping = ColumnMapping(date="Thoi gian", amount="So tien", direction="Loai", description="Noi dung",
                            decimal=",", delimiter="|")
    result = parse_csv(data, mapping)
    assert [(ln.amount, ln.direction) for ln in result.lines] == [(1_334_520, "in"), (2_000_000, "out")]


# ----------------------------------------------------------------------------- importing

def make_bill(institution, payer, reference, items, due_in=15):
    bill = bill_create(actor=None, institution=institution, payer=payer, items=items,
                       due_date=dt.date.today() + dt.timedelta(days=due_in))
    Bill.objects.filter(pk=bill.pk).update(reference=reference)
    bill.refresh_from_db()
    return bill


@pytest.fixture
def world(institution):
    account = BankAccount.objects.get(institution=institution, is_default=True)
    assert account.account_number == ACCOUNT
    lan = Payer.objects.create(institution=institution, kind="student", code="HS001", name="Nguyễn Thị Lan")
    binh = Payer.objects.create(institution=institution, kind="student", code="HS002", name="Trần Văn Bình")
    items = [LineInput(name="Tiền ăn bán trú tháng 11", amount=450_000),
             LineInput(name="Bảo hiểm y tế học sinh", amount=884_520, kind=FeeKind.STUDENT_INSURANCE)]
    return SimpleNamespace(institution=institution, account=account, bill_a=make_bill(institution, lan, REF_A, items),
                           bill_b=make_bill(institution, binh, REF_B, items))


def do_import(world, name, **kw):
    report = statement_import(actor=None, bank_account=world.account, file_bytes=sample(name), filename=name, **kw)
    assert ledger.ledger_check().ok, ledger.ledger_check().problems
    return report


def paid(bill) -> int:
    return Bill.objects.get(pk=bill.pk).amount_paid


@pytest.mark.django_db
def test_a_statement_line_carrying_a_reference_pays_the_bill(world):
    report = do_import(world, "vcb.csv")
    assert (report.lines_read, report.new_credits, report.matched, report.unmatched) == (4, 3, 2, 1)
    assert (report.skipped_outgoing, report.duplicates, report.errors) == (1, 0, [])
    assert report.amount_new == 1_334_520 + 500_000 + 250_000
    a = Bill.objects.get(pk=world.bill_a.pk)
    assert (a.status, a.amount_paid) == (BillStatus.PAID, 1_334_520)
    b = Bill.objects.get(pk=world.bill_b.pk)
    assert (b.status, b.amount_paid) == (BillStatus.PARTIALLY_PAID, 500_000)  # "TPVKT BXABKE", split by the bank
    credit = Credit.objects.get(bank_reference="5243.65937")
    assert (credit.source, credit.method, credit.status) == ("statement", "transfer", CreditStatus.MATCHED)
    assert REF_A in credit.match_reason and credit.occurred_at == hcm(2026, 11, 18)
    suspense = LedgerEntry.objects.filter(account=Account.SUSPENSE)
    assert [e.credit for e in suspense] == [250_000]  # the memo without a reference waits for staff
    record = StatementImport.objects.get(pk=report.import_id)
    assert (record.finished, record.new_credits, record.fmt) == (True, 3, "csv")
    assert StatementLineRecord.objects.filter(statement_import=record).count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize("name, preset", [("vcb.csv", None), ("mb.csv", "mb"), ("vietinbank.xlsx", "vietinbank"),
                                          ("camt053.xml", None), ("camt054.xml", None), ("mt940.sta", None)])
def test_the_same_file_twice_adds_nothing_the_second_time(world, name, preset):
    mapping = PRESETS[preset] if preset else None
    first = do_import(world, name, mapping=mapping)
    assert first.new_credits >= 1 and paid(world.bill_a) == 1_334_520
    counts = (Credit.objects.count(), LedgerTransaction.objects.count(), Allocation.objects.count())
    second = do_import(world, name, mapping=mapping)
    assert second.new_credits == 0 and second.duplicates == first.new_credits
    assert (Credit.objects.count(), LedgerTransaction.objects.count(), Allocation.objects.count()) == counts
    assert paid(world.bill_a) == 1_334_520


@pytest.mark.django_db
def test_overlapping_files_book_each_transaction_once(world):
    a = do_import(world, "vcb_overlap_a.csv")
    # two identical transfers without a bank reference on one day are two payments
    assert (a.new_credits, a.duplicates) == (4, 0)
    b = do_import(world, "vcb_overlap_b.csv")
    # B repeats both of them (plus a third), and the referenced line: only the new ones are booked
    assert (b.new_credits, b.duplicates) == (2, 3)
    assert Credit.objects.filter(amount=100_000).count() == 3
    assert Credit.objects.count() == 6
    assert paid(world.bill_b) == 500_000 + 250_000 and paid(world.bill_a) == 1_334_520
    assert do_import(world, "vcb_overlap_b.csv").new_credits == 0
    assert do_import(world, "vcb_overlap_a.csv").new_credits == 0


def _webhook(world, *, event_id="EVT-1", reference="FT26322000111"):
    from thuphi.payments.providers.base import NormalizedCredit
    from thuphi.payments.services import event_apply, event_receive

    credit = NormalizedCredit(provider="generic", event_id=event_id, account_number=ACCOUNT, virtual_account="",
                              amount=1_334_520, direction="in", description=f"{REF_A} NOP TIEN AN",
                              occurred_at=hcm(2026, 11, 18, 9, 15, 46), bank_reference=reference, is_test=False,
                              payer_name="NGUYEN THI LAN")
    with transaction.atomic():
        event_receive(provider="generic", bank_account=world.account, credit=credit, raw_body=b"{}")
    event = InboundEvent.objects.get(provider="generic", event_id=event_id)
    return event_apply(event_id=event.pk)


@pytest.mark.django_db
def test_a_webhook_then_a_statement_line_with_the_same_reference_is_one_credit(world):
    assert _webhook(world) == EventStatus.APPLIED
    report = do_import(world, "mb.csv")
    assert (report.new_credits, report.duplicates) == (1, 1)
    assert Credit.objects.filter(bank_reference="FT26322000111").count() == 1
    assert paid(world.bill_a) == 1_334_520


@pytest.mark.django_db
def test_a_statement_line_then_the_webhook_is_one_credit(world):
    do_import(world, "camt053.xml")
    assert _webhook(world) == EventStatus.IGNORED
    assert Credit.objects.filter(bank_reference="FT26322000111").count() == 1
    assert paid(world.bill_a) == 1_334_520 and ledger.ledger_check().ok


@pytest.mark.django_db
def test_bad_rows_are_reported_by_number_and_write_nothing(world):
    report = do_import(world, "bad_rows.csv")
    assert [no for no, _m in report.errors] == [3, 4, 5, 6, 9]
    assert "phần lẻ" in report.errors[0][1] and "31/02/2026" in report.errors[1][1]
    assert (report.lines_read, report.new_credits, report.skipped_outgoing, report.skipped_zero) == (3, 1, 1, 1)
    assert list(Credit.objects.values_list("bank_reference", flat=True)) == ["FT1"]
    assert StatementLineRecord.objects.count() == 1 and paid(world.bill_a) == 1_334_520
    text = report.as_text()
    assert "Dòng 3: Số tiền “,50” có phần lẻ" in text and "Dòng không đọc được: 5" in text


@pytest.mark.django_db
def test_a_statement_of_another_account_books_nothing(world):
    other = sample("mt940.sta").replace(b"BFTVVNVX/1023456701", b"BFTVVNVX/9999999999")
    report = statement_import(actor=None, bank_account=world.account, file_bytes=other, filename="x.sta")
    assert report.nothing_read and report.errors[0][0] == 0 and "9999999999" in report.errors[0][1]
    assert Credit.objects.count() == 0


@pytest.mark.django_db
def test_a_failing_chunk_leaves_nothing_of_itself(world, monkeypatch):
    real_flush = booking.RowWriter.flush

    def flush(self):
        if self.model is StatementLineRecord:
            raise RuntimeError("disk full")
        return real_flush(self)

    monkeypatch.setattr(booking.RowWriter, "flush", flush)
    with pytest.raises(RuntimeError):
        statement_import(actor=None, bank_account=world.account, file_bytes=sample("vcb.csv"), filename="vcb.csv")
    assert Credit.objects.count() == 0 and LedgerEntry.objects.count() == 0 and paid(world.bill_a) == 0
    assert StatementImport.objects.get().finished is False
    monkeypatch.undo()
    assert do_import(world, "vcb.csv").new_credits == 3  # the re-import completes the job


@pytest.mark.django_db
def test_only_staff_of_the_institution_may_import(world, make_user, make_institution):
    from thuphi.core.errors import Forbidden

    monitor = make_user("gs", "provincial_monitor", province_id="24")
    stranger = make_user("kt2", "accountant", institution=make_institution(code="OTHER"))
    for actor in (monitor, stranger):
        with pytest.raises(Forbidden):
            statement_import(actor=actor, bank_account=world.account, file_bytes=sample("vcb.csv"), filename="v.csv")
    accountant = make_user("kt", "accountant", institution=world.institution)
    assert statement_import(actor=accountant, bank_account=world.account, file_bytes=sample("vcb.csv"),
                            filename="v.csv").new_credits == 3
    assert Credit.objects.filter(created_by=accountant).count() == 3


@pytest.mark.django_db
def test_import_statement_command_prints_the_report_and_fails_when_nothing_is_read(world, tmp_path):
    out = io.StringIO()
    call_command("import_statement", str(SAMPLES / "vcb.csv"), "--account", ACCOUNT, "--preset", "vcb", stdout=out)
    text = out.getvalue()
    assert "Khoản tiền mới ghi sổ: 3 (tổng 2.084.520 đ)" in text and "đã gạch nợ phiếu thu: 2" in text
    assert paid(world.bill_a) == 1_334_520
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError):
        call_command("import_statement", str(junk), "--account", ACCOUNT, stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("import_statement", str(SAMPLES / "vcb.csv"), "--account", "000", stdout=io.StringIO())
    assert ledger.ledger_check().ok


# ----------------------------------------------------------------------------- bulk = one by one

def test_fast_reference_extraction_equals_the_reference_implementation():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    refs = [refcode.generate(random.Random(k)) for k in range(6)]
    mangled = refs + [r[:5] + " " + r[5:] for r in refs] + [r[:3] + ". " + r[3:] for r in refs] + \
        [r.lower() for r in refs] + [r.replace("1", "I").replace("0", "O") for r in refs] + ["T.P" + refs[0][2:]]
    piece = st.one_of(st.sampled_from(mangled), st.text(alphabet="ABCDEFGHJKMNPQRSTVWXYZ0123456789TPIOLđĐáẠ",
                                                         max_size=14))
    sep = st.sampled_from(["", " ", ".", "-", " - ", "    ", "\n", "_"])

    @settings(max_examples=600, deadline=None)
    @given(st.lists(st.tuples(piece, sep), max_size=8))
    def check(parts):
        text = "".join(p + s for p, s in parts)
        assert booking.extract_with_reason(text) == refcode.extract_with_reason(text)

    check()
    for text in ["MBVCB.2427229823.174242." + refs[1][:5] + "." + refs[1][5:] + " NOP TIEN GD 174242",
                 "THANHTOAN" + refs[2] + "HOCPHI", "Nộp tiền " + refs[3].lower(), ""]:
        assert booking.extract_with_reason(text) == refcode.extract_with_reason(text)


def _snapshot():
    credits = list(Credit.objects.order_by("id").values_list(
        "id", "institution_id", "bank_account_id", "method", "source", "amount", "description", "payer_name",
        "bank_reference", "external_ref", "occurred_at", "event_id", "status", "match_reason", "shift_id",
        "created_by_id"))
    cmap = {row[0]: i for i, row in enumerate(credits)}
    txns = list(LedgerTransaction.objects.order_by("id").values_list(
        "id", "kind", "institution_id", "credit_id", "reverses_id", "memo", "occurred_at"))
    tmap = {row[0]: i for i, row in enumerate(txns)}
    entries = [(tmap[t], *rest) for t, *rest in LedgerEntry.objects.order_by("transaction_id", "id").values_list(
        "transaction_id", "account", "institution_id", "bank_account_id", "payer_id", "bill_id", "debit", "credit")]
    entries.sort(key=lambda e: e[0])  # stable: keeps each transaction's own order
    allocations = [(cmap[c], b, a, tmap[t], r) for c, b, a, t, r in Allocation.objects.order_by("id").values_list(
        "credit_id", "bill_id", "amount", "ledger_transaction_id", "reverses_id")]
    return {
        "credits": [row[1:] for row in credits],
        "transactions": [(k, i, cmap[c], r, m, o) for _id, k, i, c, r, m, o in txns],
        "entries": entries,
        "allocations": allocations,
        "bills": list(Bill.objects.order_by("id").values_list("id", "amount_paid", "status")),
    }


class _Rollback(Exception):
    pass


def _in_savepoint(fn):
    """Run fn in a savepoint, take the snapshot, and roll everything back."""
    try:
        with transaction.atomic():
            fn()
            snap = _snapshot()
            assert ledger.ledger_check().ok
            raise _Rollback
    except _Rollback:
        return snap


@pytest.mark.django_db
def test_bulk_booking_writes_exactly_what_credit_book_writes(world, make_institution):
    from thuphi.payments.models import CreditSource, Method
    from thuphi.payments.services import credit_book

    inst, account = world.institution, world.account
    rng = random.Random(20261122)
    payers = [Payer.objects.create(institution=inst, kind="patient", code=f"BN{i}", name=f"Người bệnh {i}")
              for i in range(4)]
    bills = [world.bill_a, world.bill_b]
    for i in range(10):
        kind = FeeKind.DEPOSIT if i % 4 == 0 else FeeKind.HOSPITAL_FEE
        items = [LineInput(name="Tạm ứng" if kind == FeeKind.DEPOSIT else "Viện phí", amount=rng.choice(
            [200_000, 350_000, 1_000_000]), kind=kind)]
        bills.append(bill_create(actor=None, institution=inst, payer=payers[i % 4], items=items,
                                 due_date=dt.date.today() + dt.timedelta(days=30 - i)))
    cancelled = bills[-1]
    bill_cancel(actor=None, bill=cancelled, reason="Lập nhầm")
    foreign_inst = make_institution(code="FOREIGN")
    foreign_payer = Payer.objects.create(institution=foreign_inst, kind="student", code="X1", name="Khác")
    foreign = bill_create(actor=None, institution=foreign_inst, payer=foreign_payer,
                          items=[LineInput(name="Học phí", amount=500_000)], due_date=dt.date.today())
    VirtualAccount.objects.create(bank_account=account, number="9601023456701001", bill=bills[3])
    VirtualAccount.objects.create(bank_account=account, number="9601023456701002", payer=payers[1])
    VirtualAccount.objects.create(bank_account=account, number="9601023456701003", payer=payers[1], is_active=False)
    exact_bill = bill_create(actor=None, institution=inst, payer=payers[2], due_date=dt.date.today(),
                             items=[LineInput(name="Viện phí", amount=640_000, kind=FeeKind.HOSPITAL_FEE)])
    partial_bill = bill_create(actor=None, institution=inst, payer=payers[3], due_date=dt.date.today(),
                               items=[LineInput(name="Viện phí", amount=5_000_000, kind=FeeKind.HOSPITAL_FEE)])
    refs = [b.reference for b in bills]

    def memo() -> tuple[str, str]:
        r1, r2 = rng.choice(refs), rng.choice(refs)
        return rng.choice([
            (f"MBVCB.{rng.randrange(10**9)}.174242.{r1} NOP TIEN GD 174242-090822 15:45:46", ""),
            (f"IBFT {r1[:5]} {r1[5:]} HOC PHI", ""),
            (f"THANHTOAN{r1}VIENPHI", ""),
            (f"{r1.replace('0', 'O').replace('1', 'I')} tam ung", ""),
            (f"{r1} {r2} nop chung hai phieu", ""),
            (f"{REF_UNKNOWN} khong co phieu nay", ""),
            (f"{cancelled.reference} phieu da huy", ""),
            (f"{foreign.reference} phieu don vi khac", ""),
            ("UNG HO QUY LOP", ""),
            (f"{r1} qua tai khoan ao", "9601023456701001"),
            ("tai khoan ao cua nguoi benh", "9601023456701002"),
            (f"{r1} tai khoan ao da khoa", "9601023456701003"),
            (f"{r1} tai khoan ao la", "9999"),
        ])

    items = [booking.CreditInput(amount=640_000, occurred_at=hcm(2026, 11, 18, 7), description=exact_bill.reference),
             booking.CreditInput(amount=1_000_000, occurred_at=hcm(2026, 11, 18, 7), bank_reference="FT-P",
                                 description=f"{partial_bill.reference} dot 1")]
    confusable = next((r for r in refs if "0" in r[2:] or "1" in r[2:]), None)
    if confusable:
        items.append(booking.CreditInput(amount=50_000, occurred_at=hcm(2026, 11, 18, 7),
                                         description=confusable[:2] + confusable[2:].replace("0", "O").replace("1", "I")))
    for n in range(120):
        description, va = memo()
        items.append(booking.CreditInput(
            amount=rng.choice([50_000, 200_000, 350_000, 884_520, 1_334_520, 2_000_000]),
            occurred_at=hcm(2026, 11, 18, 8, 0) + dt.timedelta(minutes=n), description=description,
            payer_name=rng.choice(["", "NGUYEN VAN A"]), bank_reference=rng.choice(["", f"FT{n:08d}"]),
            virtual_account=va))

    def one_by_one():
        for it in items:
            credit = Credit.objects.create(
                institution_id=inst.pk, bank_account=account, method=Method.TRANSFER, source=CreditSource.STATEMENT,
                amount=it.amount, description=it.description, payer_name=it.payer_name,
                bank_reference=it.bank_reference, external_ref=it.external_ref, occurred_at=it.occurred_at,
                status=CreditStatus.UNMATCHED)
            credit_book(credit=credit, virtual_account=it.virtual_account)

    def in_bulk(chunk):
        def run():
            for start in range(0, len(items), chunk):
                booking.credit_book_many(bank_account=account, items=items[start:start + chunk])
        return run

    expected = _in_savepoint(one_by_one)
    # the scenario exercises every branch
    statuses = {s for *_x, s in expected["bills"]}
    assert {"paid", "overpaid", "partially_paid", "cancelled"} <= statuses
    reasons = " | ".join(c[12] for c in expected["credits"])
    for needle in ("joined_split", "glued", "+confusable" if confusable else "", "not a bill of this institution", "is cancelled",
                   "oldest open bill", "belongs to bill", "no valid payment reference"):
        assert needle in reasons, needle
    assert any(e[1] == Account.PAYER_CREDIT for e in expected["entries"])
    for chunk in (len(items), 7):
        assert _in_savepoint(in_bulk(chunk)) == expected
