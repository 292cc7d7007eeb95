"""Reading the inputs of bulk issuance: a roster and a fee schedule, from XLSX or CSV.

Columns are found by their Vietnamese or English headers (a title may sit above the header row);
every value is kept as the spreadsheet gave it, with its row number, for ``bulk`` to validate.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from django.utils.translation import gettext as _

from thuphi.billing import reference as refcode
from thuphi.billing.models import MAX_AMOUNT, FeeItem, FeeKind
from thuphi.billing.services import LineInput
from thuphi.core.errors import ValidationFailed
from thuphi.registry.models import Institution

#: How far down a sheet the header row may be (title lines such as "DANH SÁCH HỌC SINH LỚP 6A").
HEADER_SEARCH_ROWS = 10


# ---------------------------------------------------------------------------
# Reading tables
# ---------------------------------------------------------------------------


def _fold(text: object) -> str:
    """Header key: no diacritics, lower case, punctuation as single spaces ("Họ tên (*)" -> "ho ten")."""
    folded = refcode.normalize(str(text or "")).lower()
    return " ".join(re.findall(r"[a-z0-9]+", folded))


def _read_table(*, file_bytes: bytes, filename: str) -> list[tuple[int, tuple]]:
    """Every row of the first sheet as (spreadsheet row number, cell values)."""
    suffix = Path(filename or "").suffix.lower()
    if suffix == ".xls":
        raise ValidationFailed(_("Tệp .xls (Excel 97–2003) không được hỗ trợ; hãy lưu lại thành .xlsx hoặc .csv."),
                               code="unsupported_file")
    # The zip signature identifies an .xlsx even when the upload lost its file name.
    if suffix in (".xlsx", ".xlsm") or file_bytes[:4] == b"PK\x03\x04":
        return _read_xlsx(file_bytes)
    if suffix in (".csv", ".txt", ""):
        return _read_csv(file_bytes)
    raise ValidationFailed(_("Chỉ nhận tệp .xlsx hoặc .csv (tệp “%(f)s”).") % {"f": filename},
                           code="unsupported_file")


def _read_xlsx(file_bytes: bytes) -> list[tuple[int, tuple]]:
    from openpyxl import load_workbook  # only imports that actually read Excel pay for openpyxl

    try:
        wb = load_workbook(io.BytesIO(file_bytes), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zip, XML and KeyError alike for a damaged file
        raise ValidationFailed(_("Không đọc được tệp Excel: tệp hỏng hoặc không phải .xlsx."),
                               code="unreadable_file") from exc
    try:
        ws = wb.worksheets[0]
        # Files written by other tools often declare a wrong sheet size; read what is really there.
        ws.reset_dimensions()
        # In read-only mode openpyxl yields an empty row for every missing one, so enumerate()
        # gives the row numbers the user sees in Excel.
        return [(n, tuple(values)) for n, values in enumerate(ws.iter_rows(values_only=True), start=1)]
    finally:
        wb.close()


def _read_csv(file_bytes: bytes) -> list[tuple[int, tuple]]:
    try:
        text = file_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            _("Tệp CSV phải mã hóa UTF-8 (trong Excel chọn Lưu thành “CSV UTF-8”)."), code="csv_not_utf8"
        ) from exc
    first_line = text.split("\n", 1)[0]
    # Excel in a Vietnamese locale writes ";" because "," is the decimal mark.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [(n, tuple(record)) for n, record in enumerate(reader, start=1)]


def _is_blank(values: Iterable[object]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _locate_columns(
    table: list[tuple[int, tuple]], *, aliases: Mapping[str, str], required: Mapping[str, str]
) -> tuple[int, dict[int, str]]:
    """The header row's number and {column index: field}; the first row holding every required column."""
    first_row = None
    seen = 0
    for number, values in table:
        if _is_blank(values):
            continue
        first_row = first_row or number
        columns: dict[int, str] = {}
        for index, value in enumerate(values):
            field = aliases.get(_fold(value))
            if field and field not in columns.values():
                columns[index] = field
        if all(f in columns.values() for f in required):
            return number, columns
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            break
    if first_row is None:
        raise ValidationFailed(_("Tệp không có dữ liệu."), code="empty_file")
    raise ValidationFailed(
        _("Không tìm thấy dòng tiêu đề có đủ các cột: %(cols)s.") % {"cols": ", ".join(required.values())},
        code="missing_columns",
        details=[{"row": first_row, "field": f, "message": _("Thiếu cột “%(c)s”.") % {"c": label}}
                 for f, label in required.items()],
    )


def _alias_map(spec: Mapping[str, Iterable[str]]) -> dict[str, str]:
    return {_fold(alias): field for field, names in spec.items() for alias in names}


def cell_text(value: object) -> str:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        # Excel stores every number as a float: code 1001 arrives as 1001.0.
        value = int(value)
    return str(value).strip()


# ---------------------------------------------------------------------------
# Roster
# ---------------------------------------------------------------------------

_ROSTER_HEADERS = _alias_map({
    "code": ["mã", "mã số", "mã HS", "mã học sinh", "mã sinh viên", "mã SV", "mã bệnh nhân", "mã BN",
             "mã người bệnh", "mã người nộp", "code", "student code", "patient code", "payer code", "id"],
    "name": ["họ tên", "họ và tên", "tên", "họ tên học sinh", "họ và tên học sinh", "họ tên sinh viên",
             "họ tên bệnh nhân", "họ tên người bệnh", "họ tên người nộp", "name", "full name"],
    "class_name": ["lớp", "tên lớp", "class", "class name"],
    "grade": ["khối", "khối lớp", "grade"],
    "guardian_name": ["phụ huynh", "họ tên phụ huynh", "tên phụ huynh", "cha mẹ", "guardian", "guardian name",
                      "parent", "parent name"],
    "phone": ["điện thoại", "số điện thoại", "SĐT", "ĐT", "di động", "phone", "phone number", "mobile"],
    "guardian_phone": ["điện thoại phụ huynh", "số điện thoại phụ huynh", "SĐT phụ huynh", "ĐT phụ huynh",
                       "guardian phone", "parent phone"],
    "date_of_birth": ["ngày sinh", "ngày tháng năm sinh", "date of birth", "birth date", "dob", "birthday"],
    "insurance_number": ["số thẻ BHYT", "thẻ BHYT", "mã thẻ BHYT", "số BHYT", "BHYT", "insurance number",
                         "health insurance number", "insurance"],
    "category": ["đối tượng", "mã đối tượng", "đối tượng miễn giảm", "diện miễn giảm", "category",
                 "category code"],
})


@dataclass
class RosterRow:
    """One roster line as read, values not yet validated; `row` is its spreadsheet row number."""

    row: int
    code: str = ""
    name: str = ""
    class_name: str = ""
    grade: str = ""
    guardian_name: str = ""
    phone: str = ""
    guardian_phone: str = ""
    date_of_birth: str | dt.date | None = None
    insurance_number: str = ""
    category: str = ""


ROSTER_FIELDS = frozenset(f.name for f in fields(RosterRow))
_PHONE_FIELDS = ("phone", "guardian_phone")


def _roster_cell(field: str, value: object) -> object:
    if field == "date_of_birth" and isinstance(value, dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    if field in _PHONE_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
        # A phone typed into a number cell loses its leading 0 (912345678); every Vietnamese
        # number starts with 0, so putting it back is safe and saves the school a round trip.
        digits = cell_text(value)
        return "0" + digits if digits.isdigit() and len(digits) in (9, 10) else digits
    return cell_text(value)


def parse_roster(*, file_bytes: bytes, filename: str) -> list[RosterRow]:
    """The rows of a class list or patient list (.xlsx or .csv), blank lines skipped.

    Raises ValidationFailed only for the file as a whole (unreadable, no header row); values are
    checked by `bills_bulk_issue`, so that every bad row is reported at once.
    """
    table = _read_table(file_bytes=file_bytes, filename=filename)
    header_row, columns = _locate_columns(
        table, aliases=_ROSTER_HEADERS, required={"code": _("Mã"), "name": _("Họ tên")}
    )
    rows: list[RosterRow] = []
    for number, values in table:
        if number <= header_row:
            continue
        data = {field: _roster_cell(field, values[i]) for i, field in columns.items() if i < len(values)}
        if all(v in ("", None) for v in data.values()):
            continue
        rows.append(RosterRow(row=number, **data))
    return rows


# ---------------------------------------------------------------------------
# Fee schedule
# ---------------------------------------------------------------------------

_SCHEDULE_HEADERS = _alias_map({
    "name": ["tên khoản thu", "khoản thu", "tên khoản", "nội dung", "tên", "name", "item", "fee"],
    "kind": ["loại", "loại khoản thu", "loại phí", "kind", "type"],
    "amount": ["số tiền", "mức thu", "số tiền (đồng)", "thành tiền", "amount"],
    "fee_code": ["mã khoản thu", "mã", "code", "fee code"],
})

# Kinds by their code or their Vietnamese label, so that "Tiền ăn, bán trú" and "meals_boarding"
# both work; a few everyday short names besides.
_KINDS = {**{_fold(label): value for value, label in FeeKind.choices},
          **{_fold(value): value for value in FeeKind.values},
          _fold("tiền ăn"): FeeKind.MEALS_BOARDING, _fold("bán trú"): FeeKind.MEALS_BOARDING,
          _fold("BHYT"): FeeKind.STUDENT_INSURANCE, _fold("BHYT học sinh"): FeeKind.STUDENT_INSURANCE}

_GROUPED_AMOUNT_RE = re.compile(r"\d{1,3}(?:[., ]\d{3})+")


def parse_amount(value: object) -> int | None:
    """Whole đồng from a cell: 450000, 450000.0, "450.000", "450,000 đ"; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = cell_text(value)
    text = re.sub(r"\s*(đồng|đ|vnđ|vnd)\.?$", "", text, flags=re.IGNORECASE).strip()
    if text.isdigit():
        return int(text)
    # Only a separator every three digits counts as grouping: "1.5" is not 15 đồng, it is a mistake.
    if _GROUPED_AMOUNT_RE.fullmatch(text):
        return int(re.sub(r"[., ]", "", text))
    return None


def parse_schedule(
    *,
    institution: Institution,
    file_bytes: bytes | None = None,
    filename: str = "",
    fee_codes: Iterable[str] | None = None,
) -> list[LineInput]:
    """A fee schedule from a small sheet (tên khoản thu, loại, số tiền) or from catalogue codes.

    From codes the lines take the catalogue's name, kind and default amount, in the order given.
    Every bad row or unknown code is reported in `details`.
    """
    if (file_bytes is None) == (fee_codes is None):
        raise ValidationFailed(_("Cần đúng một nguồn biểu phí: tệp hoặc danh sách mã khoản thu."),
                               code="schedule_source")
    if fee_codes is not None:
        return _schedule_from_catalogue(institution=institution, codes=list(fee_codes))
    table = _read_table(file_bytes=file_bytes, filename=filename)
    header_row, columns = _locate_columns(
        table, aliases=_SCHEDULE_HEADERS, required={"name": _("Tên khoản thu"), "amount": _("Số tiền")}
    )
    catalogue = {f.code.casefold(): f for f in FeeItem.objects.filter(institution=institution, is_active=True)}
    items: list[LineInput] = []
    errors: list[dict] = []
    for number, values in table:
        if number <= header_row or _is_blank(values):
            continue
        cell = {field: values[i] if i < len(values) else None for i, field in columns.items()}
        fee_item = None
        if cell_text(cell.get("fee_code")):
            fee_item = catalogue.get(cell_text(cell["fee_code"]).casefold())
            if fee_item is None:
                errors.append({"row": number, "field": "fee_code",
                               "message": _("Không có khoản thu mã “%(c)s” trong danh mục.")
                               % {"c": cell_text(cell["fee_code"])}})
        name = cell_text(cell.get("name")) or (fee_item.name if fee_item else "")
        if not name:
            errors.append({"row": number, "field": "name", "message": _("Thiếu tên khoản thu.")})
        elif len(name) > 200:
            errors.append({"row": number, "field": "name", "message": _("Tên khoản thu dài quá 200 ký tự.")})
        kind_text = cell_text(cell.get("kind"))
        kind = _KINDS.get(_fold(kind_text)) if kind_text else (fee_item.kind if fee_item else FeeKind.OTHER)
        if kind is None:
            errors.append({"row": number, "field": "kind",
                           "message": _("Loại khoản thu “%(k)s” không hợp lệ.") % {"k": kind_text}})
        amount = parse_amount(cell.get("amount"))
        if amount is None and fee_item is not None and cell_text(cell.get("amount")) == "":
            amount = fee_item.default_amount
        if amount is None or not 0 <= amount <= MAX_AMOUNT:
            errors.append({"row": number, "field": "amount",
                           "message": _("Số tiền “%(v)s” không hợp lệ: cần số nguyên đồng từ 0 đến "
                                        "100.000.000.000, ví dụ 450.000.") % {"v": cell_text(cell.get("amount"))}})
        items.append(LineInput(name=name, amount=amount or 0, kind=str(kind or FeeKind.OTHER), fee_item=fee_item))
    if errors:
        raise ValidationFailed(_("Biểu phí có %(n)d lỗi.") % {"n": len(errors)}, code="schedule_invalid",
                               details=errors)
    if not items:
        raise ValidationFailed(_("Biểu phí không có khoản thu nào."), code="items_required")
    return items


def _schedule_from_catalogue(*, institution: Institution, codes: list[str]) -> list[LineInput]:
    codes = [c.strip() for c in codes if c and c.strip()]
    if not codes:
        raise ValidationFailed(_("Cần ít nhất một mã khoản thu."), code="items_required")
    found = {f.code: f for f in FeeItem.objects.filter(institution=institution, code__in=codes, is_active=True)}
    missing = [c for c in codes if c not in found]
    if missing:
        raise ValidationFailed(
            _("Không có khoản thu mã %(c)s trong danh mục của đơn vị.") % {"c": ", ".join(missing)},
            code="unknown_fee_item",
            details=[{"row": None, "field": "fee_code", "message": _("Không có khoản thu mã “%(c)s”.") % {"c": c}}
                     for c in missing],
        )
    return [LineInput(name=found[c].name, amount=found[c].default_amount, kind=found[c].kind, fee_item=found[c])
            for c in codes]
