"""Bulk issuance: roster and schedule parsing, all-or-nothing validation, the bills it writes."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from thuphi.billing import bulk
from thuphi.billing import reference as refcode
from thuphi.billing import vietqr
from thuphi.billing.bulk import RosterRow, bills_bulk_issue, parse_roster, parse_schedule
from thuphi.billing.models import Bill, BillBatch, BillLine, BillStatus, DiscountRule, FeeItem, FeeKind
from thuphi.billing.services import LineInput, bill_create
from thuphi.core.errors import Conflict, Forbidden, ValidationFailed
from thuphi.core.models import Role
from thuphi.registry.models import Payer, PayerCategory

pytestmark = pytest.mark.django_db

DUE = dt.date.today() + dt.timedelta(days=15)
HEADER_VI = ["Mã", "Họ tên", "Lớp", "Khối", "Phụ huynh", "Điện thoại", "Ngày sinh", "Số thẻ BHYT", "Đối tượng"]
HEADER_PLAIN = ["ma", "HO TEN", "lop", "khoi", "phu huynh", "dien thoai", "ngay sinh", "so the bhyt", "doi tuong"]


def roster_rows(n: int = 8) -> list[list[str]]:
    return [[f"HS{i:03d}", f"Nguyễn Văn Học Sinh {i}", "6A" if i % 2 else "6B", "6", f"Nguyễn Thị Mẹ {i}",
             f"09123456{i:02d}", "05/09/2014", "", ""] for i in range(1, n + 1)]


def as_csv(header: list[str], rows: list[list[str]], *, sep: str = ",", bom: bool = False) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\n").writerows([header, *rows])
    return ("\ufeff" if bom else "").encode() + buf.getvalue().encode("utf-8")


def as_xlsx(header: list, rows: list[list], *, title_rows: int = 0) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for _ in range(title_rows):
        ws.append(["DANH SÁCH HỌC SINH LỚP 6A – NĂM HỌC 2025-2026"])
    ws.append(header)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.fixture
def schedule() -> list[LineInput]:
    return [LineInput(name="Tiền ăn bán trú tháng 11", amount=450_000, kind=FeeKind.MEALS_BOARDING),
            LineInput(name="Bảo hiểm y tế học sinh", amount=884_520, kind=FeeKind.STUDENT_INSURANCE)]


def issue(institution, actor, rows, schedule, **kw):
    return bills_bulk_issue(actor=actor, institution=institution, rows=rows, schedule=schedule, due_date=DUE,
                            batch_name=kw.pop("batch_name", "Thu tháng 11/2026"), **kw)


def assert_nothing_written() -> None:
    assert Payer.objects.count() == 0
    assert Bill.objects.count() == 0
    assert BillLine.objects.count() == 0
    assert BillBatch.objects.count() == 0


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [HEADER_VI, HEADER_PLAIN], ids=["diacritics", "no-diacritics"])
def test_csv_roster_with_vietnamese_headers_parses_every_column(header):
    # given a CSV with Vietnamese headers, with or without diacritics and in any case
    data = as_csv(header, [["HS001", "Lê Thị Hoa", "6A", "6", "Lê Văn Bố", "0912345678", "05/09/2014",
                            "HS4010123456789", "HN"]])
    # when it is parsed
    rows = parse_roster(file_bytes=data, filename="lop6a.csv")
    # then every column lands in its field and the row number counts the header as row 1
    assert rows == [RosterRow(row=2, code="HS001", name="Lê Thị Hoa", class_name="6A", grade="6",
                              guardian_name="Lê Văn Bố", phone="0912345678", date_of_birth="05/09/2014",
                              insurance_number="HS4010123456789", category="HN")]


def test_csv_with_bom_semicolons_and_english_headers_parses():
    data = as_csv(["Code", "Name", "Class", "Phone"], [["P1", "Phạm Minh Đức", "7C", "0987654321"]], sep=";",
                  bom=True)
    rows = parse_roster(file_bytes=data, filename="roster.csv")
    assert [(r.row, r.code, r.name, r.class_name, r.phone) for r in rows] == [
        (2, "P1", "Phạm Minh Đức", "7C", "0987654321")]


def test_xlsx_roster_parses_with_title_rows_numbers_and_dates():
    # given an Excel file with a title line above the header, a phone typed as a number (its 0 lost),
    # a numeric code and a real date cell
    data = as_xlsx(["STT", "Mã HS", "Họ và tên", "Lớp", "SĐT", "Ngày sinh"],
                   [[1, 1001, "Đỗ Quang Huy", "6A", 912345678, dt.datetime(2014, 9, 5)],
                    [None, None, None, None, None, None],
                    [2, 1002, "Vũ Thu Trang", "6A", "0987 654 321", "2014-02-03"]],
                   title_rows=1)
    # when it is parsed
    rows = parse_roster(file_bytes=data, filename="lop6a.xlsx")
    # then row numbers are Excel's, the blank line is skipped, the phone gets its 0 back
    assert [(r.row, r.code, r.name, r.phone, r.date_of_birth) for r in rows] == [
        (3, "1001", "Đỗ Quang Huy", "0912345678", dt.date(2014, 9, 5)),
        (5, "1002", "Vũ Thu Trang", "0987 654 321", "2014-02-03"),
    ]


def test_roster_without_a_name_column_is_refused():
    with pytest.raises(ValidationFailed) as exc:
        parse_roster(file_bytes=as_csv(["Mã", "Lớp"], [["HS1", "6A"]]), filename="x.csv")
    assert exc.value.code == "missing_columns"
    assert {d["field"] for d in exc.value.details} == {"code", "name"}


def test_csv_not_in_utf8_is_refused_with_a_hint():
    with pytest.raises(ValidationFailed) as exc:
        parse_roster(file_bytes="Mã,Họ tên\nHS1,Lê Hoa\n".encode("utf-16"), filename="x.csv")
    assert exc.value.code == "csv_not_utf8"


def test_schedule_sheet_parses_vietnamese_amounts_and_kind_labels(institution):
    data = as_csv(["Tên khoản thu", "Loại", "Số tiền"],
                  [["Tiền ăn tháng 11", "Tiền ăn, bán trú", "450.000"],
                   ["BHYT học sinh", "student_insurance", "884520"],
                   ["Đồng phục", "", "300.000 đ"]])
    items = parse_schedule(institution=institution, file_bytes=data, filename="bieu-phi.csv")
    assert [(i.name, i.kind, i.amount) for i in items] == [
        ("Tiền ăn tháng 11", FeeKind.MEALS_BOARDING, 450_000),
        ("BHYT học sinh", FeeKind.STUDENT_INSURANCE, 884_520),
        ("Đồng phục", FeeKind.OTHER, 300_000),
    ]


def test_schedule_xlsx_with_a_bad_amount_reports_its_row(institution):
    data = as_xlsx(["Tên khoản thu", "Loại", "Số tiền"],
                   [["Tiền ăn", "meals_boarding", 450000], ["Học phẩm", "other", "1,5"], ["Nước uống", "", -1]])
    with pytest.raises(ValidationFailed) as exc:
        parse_schedule(institution=institution, file_bytes=data, filename="bieu-phi.xlsx")
    assert [(d["row"], d["field"]) for d in exc.value.details] == [(3, "amount"), (4, "amount")]


def test_schedule_from_fee_catalogue_codes_keeps_the_given_order(institution):
    FeeItem.objects.create(institution=institution, code="AN", name="Tiền ăn", kind=FeeKind.MEALS_BOARDING,
                           default_amount=450_000)
    FeeItem.objects.create(institution=institution, code="BHYT", name="BHYT học sinh",
                           kind=FeeKind.STUDENT_INSURANCE, default_amount=884_520)
    items = parse_schedule(institution=institution, fee_codes=["BHYT", "AN"])
    assert [(i.name, i.amount, i.fee_item.code) for i in items] == [("BHYT học sinh", 884_520, "BHYT"),
                                                                     ("Tiền ăn", 450_000, "AN")]
    with pytest.raises(ValidationFailed) as exc:
        parse_schedule(institution=institution, fee_codes=["AN", "KHONGCO"])
    assert exc.value.code == "unknown_fee_item"


# --- issuing -------------------------------------------------------------------------------------


def test_issue_creates_one_bill_per_row_with_unique_valid_references_and_matching_qr(
        institution, cashier, schedule):
    # given an 8-row roster read from CSV
    rows = parse_roster(file_bytes=as_csv(HEADER_VI, roster_rows(8)), filename="lop6.csv")
    calls = []
    # when the batch is issued
    batch = issue(institution, cashier, rows, schedule, source_filename="lop6.csv",
                  progress=lambda done, total: calls.append((done, total)))
    # then there is one batch, 8 payers, 8 bills with 2 lines each
    assert (batch.bill_count, batch.amount_total, batch.source_filename) == (8, 8 * 1_334_520, "lop6.csv")
    bills = list(Bill.objects.select_related("payer", "bank_account").order_by("id"))
    assert len(bills) == 8 and Payer.objects.count() == 8 and BillLine.objects.count() == 16
    assert [b.payer.code for b in bills] == [f"HS{i:03d}" for i in range(1, 9)]
    # and every reference is valid and unique, and the QR decodes to the bill's amount and reference
    refs = [b.reference for b in bills]
    assert len(set(refs)) == 8 and all(refcode.is_valid(r) for r in refs)
    for b in bills:
        assert (b.status, b.amount_due, b.batch_id, b.created_by_id, b.title) == (
            BillStatus.UNPAID, 1_334_520, batch.pk, cashier.pk, "Thu tháng 11/2026")
        qr = vietqr.parse_payload(b.qr_payload)
        assert (qr.bank_bin, qr.account_number, qr.amount, qr.purpose) == (
            b.bank_account.bank_bin, b.bank_account.account_number, b.amount_due, b.reference)
        assert [(ln.name, ln.amount, ln.position) for ln in b.lines.all()] == [
            ("Tiền ăn bán trú tháng 11", 450_000, 0), ("Bảo hiểm y tế học sinh", 884_520, 1)]
    # and progress ended at total
    assert calls[-1] == (8, 8)


def test_one_bad_row_is_reported_with_its_row_number_and_nothing_is_written(institution, cashier, schedule):
    # given a roster whose 6th data line (spreadsheet row 7) has a bad phone and no name
    data = roster_rows(8)
    data[5][1] = ""
    data[5][5] = "12345"
    rows = parse_roster(file_bytes=as_xlsx(HEADER_VI, data), filename="lop6.xlsx")
    # when issued
    with pytest.raises(ValidationFailed) as exc:
        issue(institution, cashier, rows, schedule)
    # then both problems of row 7 are reported, in Vietnamese
    assert exc.value.code == "roster_invalid"
    assert [(d["row"], d["field"]) for d in exc.value.details] == [(7, "name"), (7, "phone")]
    assert "12345" in exc.value.details[1]["message"]
    # and no payer, bill, line or batch exists
    assert_nothing_written()


def test_every_bad_row_is_reported_not_only_the_first(institution, cashier, schedule):
    data = roster_rows(6)
    data[0][6] = "31/02/2014"
    data[3][0] = "HS 004"
    data[4][8] = "KHONGCO"
    rows = parse_roster(file_bytes=as_csv(HEADER_VI, data), filename="x.csv")
    with pytest.raises(ValidationFailed) as exc:
        issue(institution, cashier, rows, schedule)
    assert [(d["row"], d["field"]) for d in exc.value.details] == [
        (2, "date_of_birth"), (5, "code"), (6, "category")]
    assert_nothing_written()


def test_duplicate_code_in_the_file_is_reported_and_nothing_is_written(institution, cashier, schedule):
    data = roster_rows(5)
    data[4][0] = "HS002"
    rows = parse_roster(file_bytes=as_csv(HEADER_VI, data), filename="x.csv")
    with pytest.raises(ValidationFailed) as exc:
        issue(institution, cashier, rows, schedule)
    assert exc.value.details == [{"row": 6, "field": "code", "message": "Mã “HS002” trùng với dòng 3."}]
    assert_nothing_written()


def test_category_discount_applies_exactly_as_for_a_single_bill(institution, cashier, schedule):
    # given a category "hộ nghèo" with 50% off meals and 100,000 đ off everything
    poor = PayerCategory.objects.create(institution=institution, code="HN", name="Hộ nghèo")
    DiscountRule.objects.create(institution=institution, category=poor, fee_kind=FeeKind.MEALS_BOARDING,
                                discount_type="percent", value=50)
    DiscountRule.objects.create(institution=institution, category=poor, discount_type="fixed", value=100_000)
    rows = [{"code": "HS1", "name": "Lò Văn Páo", "category": "hn"}, {"code": "HS2", "name": "Mai Anh"}]
    # when issued in bulk
    issue(institution, cashier, rows, schedule)
    # then the category's payer gets the discount, the other does not
    poor_bill = Bill.objects.get(payer__code="HS1")
    plain_bill = Bill.objects.get(payer__code="HS2")
    assert [ln.discount for ln in poor_bill.lines.all()] == [225_000 + 100_000, 100_000]
    assert (poor_bill.amount_discount, poor_bill.amount_due) == (425_000, 909_520)
    assert plain_bill.amount_discount == 0 and plain_bill.amount_due == 1_334_520
    assert vietqr.parse_payload(poor_bill.qr_payload).amount == 909_520
    assert BillBatch.objects.get().amount_total == 909_520 + 1_334_520
    # and a single bill for the same payer comes to the same sums
    single = bill_create(actor=cashier, institution=institution, payer=poor_bill.payer, items=schedule, due_date=DUE)
    assert (single.amount_gross, single.amount_discount, single.amount_due) == (
        poor_bill.amount_gross, poor_bill.amount_discount, poor_bill.amount_due)


def test_full_exemption_gives_a_paid_bill_with_a_static_qr(institution, cashier, schedule):
    free = PayerCategory.objects.create(institution=institution, code="MIEN", name="Miễn toàn phần")
    DiscountRule.objects.create(institution=institution, category=free, discount_type="percent", value=100)
    issue(institution, cashier, [{"code": "HS1", "name": "Hà Văn Tú", "category": "MIEN"}], schedule)
    bill = Bill.objects.get()
    assert (bill.amount_due, bill.status) == (0, BillStatus.PAID)
    qr = vietqr.parse_payload(bill.qr_payload)
    assert qr.amount is None and qr.purpose == bill.reference


def test_existing_payers_are_updated_not_duplicated_and_keep_their_category(institution, cashier, schedule):
    # given a payer already on file, in a discount category
    poor = PayerCategory.objects.create(institution=institution, code="HN", name="Hộ nghèo")
    DiscountRule.objects.create(institution=institution, category=poor, discount_type="percent", value=10)
    Payer.objects.create(institution=institution, kind="student", code="HS1", name="Tên Cũ", phone="0911111111",
                         class_name="5A", category=poor)
    # when a roster names them again with a new name and class but no category
    issue(institution, cashier, [{"code": "HS1", "name": "Tên Mới", "class_name": "6A"},
                                 {"code": "HS2", "name": "Người Mới"}], schedule)
    # then the payer is updated in place, what the file left empty is kept, and the discount still applies
    assert Payer.objects.count() == 2
    p = Payer.objects.get(code="HS1")
    assert (p.name, p.class_name, p.phone, p.category_id) == ("Tên Mới", "6A", "0911111111", poor.pk)
    assert Bill.objects.get(payer=p).amount_discount == 45_000 + 88_452


def test_a_failure_while_writing_rolls_back_the_whole_batch(institution, cashier, schedule, monkeypatch):
    # given a reference that is already taken slips past the pre-check (as under a concurrent import)
    bill_create(actor=cashier, institution=institution,
                payer=Payer.objects.create(institution=institution, kind="student", code="OLD", name="Cũ"),
                items=schedule, due_date=DUE)
    taken = Bill.objects.get().reference
    fresh, calls = bulk._fresh_references, []

    def draw_taken_last(n):  # the third chunk's draw ends with the taken reference
        calls.append(n)
        return fresh(n)[:-1] + [taken] if len(calls) == 3 else fresh(n)

    monkeypatch.setattr(bulk, "_fresh_references", draw_taken_last)
    monkeypatch.setattr(bulk._Writer, "taken_references", lambda self, refs: set())  # the pre-check misses it
    monkeypatch.setattr(bulk, "CHUNK", 2)  # several write rounds succeed before the failing one
    # when a 5-row batch is issued
    with pytest.raises(Conflict):
        issue(institution, cashier, [{"code": f"N{i}", "name": f"Mới {i}"} for i in range(5)], schedule)
    # then nothing of it remains: no new payer, bill, line or batch
    assert list(Payer.objects.values_list("code", flat=True)) == ["OLD"]
    assert Bill.objects.count() == 1 and BillLine.objects.count() == 2
    assert BillBatch.objects.count() == 0


def test_past_due_date_and_empty_schedule_are_refused(institution, cashier, schedule):
    rows = [{"code": "HS1", "name": "An"}]
    with pytest.raises(ValidationFailed) as exc:
        bills_bulk_issue(actor=cashier, institution=institution, rows=rows, schedule=schedule,
                         due_date=dt.date.today() - dt.timedelta(days=1), batch_name="x")
    assert exc.value.code == "due_before_issue"
    with pytest.raises(ValidationFailed) as exc:
        issue(institution, cashier, rows, [])
    assert exc.value.code == "items_required"
    assert_nothing_written()


def test_read_only_and_out_of_scope_users_cannot_issue(institution, make_institution, make_user, schedule):
    other = make_institution(code="BN-TH-02")
    monitor = make_user("giamsat", Role.PROVINCIAL_MONITOR, province_id="24")
    stranger = make_user("thungan2", Role.CASHIER, institution=other)
    rows = [{"code": "HS1", "name": "An"}]
    for actor in (monitor, stranger):
        with pytest.raises(Forbidden):
            issue(institution, actor, rows, schedule)
    assert_nothing_written()


# --- command -------------------------------------------------------------------------------------


def test_command_issues_a_batch_from_files(institution, cashier, tmp_path):
    roster = tmp_path / "lop6.xlsx"
    roster.write_bytes(as_xlsx(HEADER_VI, roster_rows(4)))
    sched = tmp_path / "bieu-phi.csv"
    sched.write_bytes(as_csv(["Tên khoản thu", "Loại", "Số tiền"], [["Tiền ăn", "meals_boarding", "450.000"]]))
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_bills", "--institution", institution.code, "--roster", str(roster), "--schedule", str(sched),
                 "--due-date", DUE.strftime("%d/%m/%Y"), "--batch-name", "Tiền ăn tháng 11", "--user", "thungan",
                 stdout=out, stderr=err)
    batch = BillBatch.objects.get()
    assert (batch.bill_count, batch.amount_total, batch.created_by_id) == (4, 4 * 450_000, cashier.pk)
    assert "Đã lập 4 phiếu thu" in out.getvalue()


def test_command_with_a_bad_row_prints_the_row_and_writes_nothing(institution, tmp_path):
    FeeItem.objects.create(institution=institution, code="AN", name="Tiền ăn", kind=FeeKind.MEALS_BOARDING,
                           default_amount=450_000)
    data = roster_rows(8)
    data[5][5] = "0123"
    roster = tmp_path / "lop6.csv"
    roster.write_bytes(as_csv(HEADER_VI, data))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("issue_bills", "--institution", institution.code, "--roster", str(roster), "--fees", "AN",
                     "--due-date", DUE.strftime("%d/%m/%Y"), "--batch-name", "Tiền ăn", stderr=err)
    assert "Dòng 7 – Điện thoại: Số điện thoại “0123” không hợp lệ" in err.getvalue()
    assert_nothing_written()


def test_copy_and_bulk_create_write_the_same_rows(make_institution, schedule, monkeypatch):
    # given the same roster for two institutions with the same discount category; on PostgreSQL the
    # first is written with COPY and the second with bulk_create (elsewhere both use bulk_create)
    def prepare(code):
        inst = make_institution(code=code)
        cat = PayerCategory.objects.create(institution=inst, code="HN", name="Hộ nghèo")
        DiscountRule.objects.create(institution=inst, category=cat, discount_type="percent", value=15)
        return inst

    rows = [{"code": "A1", "name": "Lê An", "phone": "0912 345 678", "date_of_birth": "01/02/2014",
             "category": "HN", "class_name": "6A"},
            {"code": "A2", "name": "Hồ Bình", "guardian_phone": "+84987654321", "insurance_number": "hs4010123456789"}]
    copy_inst, orm_inst = prepare("COPY"), prepare("ORM")
    issue(copy_inst, None, rows, schedule)
    original_init = bulk._Writer.__init__

    def orm_only(self):
        original_init(self)
        self.copy = False

    monkeypatch.setattr(bulk._Writer, "__init__", orm_only)
    issue(orm_inst, None, rows, schedule)

    # then payers, bills and lines agree on everything but ids, references and timestamps
    def payers(inst):
        return list(Payer.objects.filter(institution=inst).order_by("code").values(
            "kind", "code", "name", "phone", "category__code", "class_name", "grade", "guardian_name",
            "guardian_phone", "date_of_birth", "insurance_number"))

    def bills(inst):
        out = []
        for b in Bill.objects.filter(institution=inst).order_by("payer__code"):
            qr = vietqr.parse_payload(b.qr_payload)
            assert qr.purpose == b.reference
            out.append((b.payer.code, b.title, b.status, b.issue_date, b.due_date, b.amount_gross,
                        b.amount_discount, b.amount_due, b.amount_paid, qr.amount, b.cancel_reason,
                        b.created_by_id, [(ln.position, ln.name, ln.kind, ln.amount, ln.discount, ln.fee_item_id)
                                          for ln in b.lines.all()]))
        return out

    assert payers(copy_inst) == payers(orm_inst)
    assert payers(copy_inst)[0]["phone"] == "0912345678"
    assert bills(copy_inst) == bills(orm_inst)


def test_text_with_backslashes_tabs_and_newlines_is_stored_verbatim(institution, cashier):
    # COPY's text format gives \, tab and newline a meaning; a line name must survive them unchanged
    name = "Học phẩm C:\\lop6\\N\t(đợt 1)\nghi chú"
    issue(institution, cashier, [{"code": "HS1", "name": "Ngô Bảo Châu", "guardian_name": "Ngô\\Huy"}],
          [LineInput(name=name, amount=120_000)])
    assert BillLine.objects.get().name == name
    assert Payer.objects.get().guardian_name == "Ngô\\Huy"


def test_payer_text_with_tabs_and_backslashes_is_stored_verbatim(institution, cashier, schedule):
    # on PostgreSQL payer rows are rendered for COPY with one escape check per row; a cell that
    # needs escaping must take the careful path
    rows = [{"code": "HS1", "name": "Ngô Bảo Châu", "class_name": "6A\t(chiều)", "grade": "6\\7"},
            {"code": "HS2", "name": "Lê Văn An", "class_name": "6B", "guardian_name": "Lê\nVăn Bố"}]
    issue(institution, cashier, rows, schedule)
    got = {p.code: (p.class_name, p.grade, p.guardian_name) for p in Payer.objects.all()}
    assert got == {"HS1": ("6A\t(chiều)", "6\\7", ""), "HS2": ("6B", "", "Lê\nVăn Bố")}


def test_bulk_payloads_are_exactly_those_of_a_single_bill(institution, cashier, schedule):
    from thuphi.billing.services import qr_payload_for

    free = PayerCategory.objects.create(institution=institution, code="MIEN", name="Miễn")
    DiscountRule.objects.create(institution=institution, category=free, discount_type="percent", value=100)
    issue(institution, cashier, [{"code": "HS1", "name": "An"}, {"code": "HS2", "name": "Bình", "category": "MIEN"}],
          schedule)
    for bill in Bill.objects.select_related("bank_account"):
        assert bill.qr_payload == qr_payload_for(bank_account=bill.bank_account, amount=bill.amount_due,
                                                 reference=bill.reference)


def test_fresh_references_are_valid_and_drawn_like_generate():
    refs = bulk._fresh_references(20_000)
    assert len(refs) == 20_000
    assert all(refcode.is_valid(r) and "TP" not in r[2:] for r in refs)
    # the check symbol is the one reference.check_char computes, whatever the body
    assert all(refcode.check_char(r[2:-1]) == r[-1] for r in refs[:2000])
    # 40 random bits each: no repeats at this size, and every symbol in every body position
    assert len(set(refs)) == len(refs)
    for position in range(2, 10):
        assert {r[position] for r in refs} == set(refcode.ALPHABET)


def test_reference_stays_unique_without_its_like_index(institution, cashier, schedule):
    # migration 0003 dropped the redundant single-column indexes, not the uniqueness of references
    from django.db import IntegrityError, connection, transaction

    bill = bill_create(actor=cashier, institution=institution,
                       payer=Payer.objects.create(institution=institution, kind="student", code="A", name="An"),
                       items=schedule, due_date=DUE)
    with pytest.raises(IntegrityError), transaction.atomic():
        Bill.objects.create(institution=institution, payer=bill.payer, bank_account=bill.bank_account,
                            reference=bill.reference, issue_date=bill.issue_date, due_date=DUE, amount_gross=1,
                            amount_due=1, qr_payload="x")
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, Bill._meta.db_table)
    single = sorted(tuple(c["columns"]) for c in indexes.values()
                    if c["index"] and not c["unique"] and len(c["columns"]) == 1)
    assert ("institution_id",) not in single and ("payer_id",) not in single
    assert not [name for name in indexes if name.endswith("_like")]
    # and the composite indexes that serve lookups by institution or payer are there
    composite = {tuple(c["columns"][:1]) for c in indexes.values() if c["index"] and len(c["columns"]) > 1}
    assert {("institution_id",), ("payer_id",)} <= composite


def test_a_bad_row_after_chunks_were_written_still_leaves_nothing(institution, cashier, schedule, monkeypatch):
    # given chunks of 2 rows: each valid chunk is written (on PostgreSQL, queued for the pipeline
    # thread) before the next is checked, so the first chunks are written before the bad row is reached
    monkeypatch.setattr(bulk, "CHUNK", 2)
    written = []
    monkeypatch.setattr(bulk._Issue, "write", lambda self, cleaned, *args, _w=bulk._Issue.write: (
        written.append(len(cleaned)), _w(self, cleaned, *args))[1])
    data = roster_rows(8)
    data[7][5] = "12345"
    rows = parse_roster(file_bytes=as_csv(HEADER_VI, data), filename="x.csv")
    # when issued
    with pytest.raises(ValidationFailed) as exc:
        issue(institution, cashier, rows, schedule)
    # then the rows before it were written, the bad row is reported, and nothing remains
    assert written == [2, 2, 2]
    assert [(d["row"], d["field"]) for d in exc.value.details] == [(9, "phone")]
    assert_nothing_written()
