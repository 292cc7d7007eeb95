"""Aggregate reports by file: one row per institution, XLSX or CSV (UTF-8, with or without BOM).

The template lists the institutions the user may report for, so a department fills in figures only.
Headers are the Vietnamese ones of the template (without diacritics) or the API's field names.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata

from django.utils.translation import gettext as _

from thuphi.monitoring.services import ReportInput
from thuphi.registry.models import PlatformKind

COLUMNS = [
    ("ma_don_vi", "institution", "Mã đơn vị (bắt buộc)"),
    ("ten_don_vi", None, "Tên đơn vị (để đối chiếu, không đọc)"),
    ("tu_ngay", "period_start", "Từ ngày (dd/mm/yyyy)"),
    ("den_ngay", "period_end", "Đến ngày (dd/mm/yyyy)"),
    ("so_giao_dich", "payments", "Tổng số giao dịch"),
    ("so_giao_dich_khong_dung_tien_mat", "payments_cashless", "Số giao dịch không dùng tiền mặt"),
    ("gia_tri", "value", "Tổng giá trị (đồng)"),
    ("gia_tri_khong_dung_tien_mat", "value_cashless", "Giá trị không dùng tiền mặt (đồng)"),
    ("hinh_thuc_khong_dung_tien_mat", "cashless_methods", "Hình thức: transfer, card, ewallet (cách nhau dấu phẩy)"),
    ("nen_tang_so", "digital_platforms", "Nền tảng số đang dùng (mã, cách nhau dấu phẩy)"),
    ("ghi_chu", "note", "Ghi chú"),
]
MAX_ROWS = 5000
METHOD_ALIASES = {"chuyen khoan": "transfer", "vietqr": "transfer", "qr": "transfer", "the": "card", "pos": "card",
                  "vi dien tu": "ewallet", "vi": "ewallet", "e-wallet": "ewallet"}


def _plain(text: str) -> str:
    """Lower case, no diacritics, single spaces: 'Chuyển khoản' -> 'chuyen khoan'."""
    text = unicodedata.normalize("NFD", str(text or "")).replace("đ", "d").replace("Đ", "D")
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return re.sub(r"\s+", " ", text).strip().lower()


def _header_key(text: str) -> str | None:
    plain = _plain(text).replace(" ", "_")
    for vi, api, _label in COLUMNS:
        if plain in (vi, api):
            return api
    return None


class RowError(Exception):
    def __init__(self, field: str, code: str, message: str):
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


def _date(value, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise RowError(field, "invalid_date", _("Ngày “%(v)s” không đọc được (dùng dd/mm/yyyy).") % {"v": text[:20]})


def _int(value, field: str):
    if value in (None, ""):
        return 0
    if isinstance(value, bool):
        raise RowError(field, "invalid_number", _("Cột %(f)s phải là số nguyên.") % {"f": field})
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise RowError(field, "invalid_number", _("Cột %(f)s phải là số nguyên (không có phần lẻ).") % {"f": field})
    text = str(value).strip().replace("\u00a0", " ")
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    # 65.902 / 65,902 / 65 902: thousands separators only
    if re.fullmatch(r"-?\d{1,3}([., ]\d{3})+", text):
        return int(re.sub(r"[., ]", "", text))
    raise RowError(field, "invalid_number", _("“%(v)s” không phải số nguyên.") % {"v": text[:30]})


def _list(value, field: str) -> list[str]:
    items = [p for p in re.split(r"[,;]", str(value or "")) if p.strip()]
    out = []
    for item in items:
        plain = _plain(item)
        if field == "cashless_methods":
            out.append(METHOD_ALIASES.get(plain, plain))
        else:
            labels = {_plain(str(label)): str(code) for code, label in PlatformKind.choices}
            out.append(labels.get(plain, plain))
    return out


def _row_input(cells: dict) -> ReportInput:
    return ReportInput(
        institution=str(cells.get("institution") or "").strip(),
        period_start=_date(cells.get("period_start"), "period_start"),
        period_end=_date(cells.get("period_end"), "period_end"),
        payments=_int(cells.get("payments"), "payments"),
        payments_cashless=_int(cells.get("payments_cashless"), "payments_cashless"),
        value=_int(cells.get("value"), "value"),
        value_cashless=_int(cells.get("value_cashless"), "value_cashless"),
        cashless_methods=_list(cells.get("cashless_methods"), "cashless_methods"),
        digital_platforms=_list(cells.get("digital_platforms"), "digital_platforms"),
        note=str(cells.get("note") or "").strip(),
    )


def _table(filename: str, content: bytes) -> list[list]:
    name = (filename or "").lower()
    if name.endswith(".xlsx") or content[:2] == b"PK":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001  (a corrupt or foreign file)
            raise RowError("file", "unreadable_file", _("Không đọc được tệp XLSX.")) from exc
        ws = wb.worksheets[0]
        return [list(r) for r in ws.iter_rows(values_only=True, max_row=MAX_ROWS + 1)]
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RowError("file", "unreadable_file", _("Tệp CSV phải mã hóa UTF-8.")) from exc
    dialect = csv.Sniffer().sniff(text[:2048], delimiters=",;\t") if text.strip() else csv.excel
    return [row for row in csv.reader(io.StringIO(text), dialect)]


def parse_upload(filename: str, content: bytes) -> tuple[list[tuple[int, ReportInput]], list[dict]]:
    """Rows to submit (with their spreadsheet row numbers) and the problems found while reading."""
    try:
        table = _table(filename, content)
    except RowError as exc:
        return [], [{"row": 0, "field": exc.field, "code": exc.code, "message": exc.message}]
    if not table:
        return [], [{"row": 0, "field": "file", "code": "empty_file", "message": _("Tệp không có dữ liệu.")}]
    keys = [_header_key(h) if h is not None else None for h in table[0]]
    if "institution" not in keys:
        return [], [{"row": 1, "field": "file", "code": "missing_columns",
                     "message": _("Dòng đầu phải là tiêu đề của mẫu (ma_don_vi, tu_ngay, den_ngay, …).")}]
    rows, errors = [], []
    for n, raw in enumerate(table[1:], start=2):
        cells = {k: v for k, v in zip(keys, raw) if k}
        if all(v in (None, "") for v in cells.values()):
            continue
        if not any(cells.get(k) not in (None, "") for k in ("period_start", "payments", "value")):
            continue  # a template row left empty: the institution did not report this time
        try:
            rows.append((n, _row_input(cells)))
        except RowError as exc:
            errors.append({"row": n, "field": exc.field, "code": exc.code, "message": exc.message})
    if len(table) > MAX_ROWS + 1:
        errors.append({"row": MAX_ROWS + 1, "field": "file", "code": "too_many_rows",
                       "message": _("Tối đa %(n)d dòng mỗi tệp.") % {"n": MAX_ROWS}})
    return rows, errors


def template_xlsx(institutions) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Bao cao"
    ws.append([c[0] for c in COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for inst in institutions:
        ws.append([inst.code, inst.name])
    for i, width in enumerate([16, 36, 12, 12, 14, 18, 18, 20, 26, 30, 24], start=1):
        ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = width
    for row in ws.iter_rows(min_row=2, min_col=3, max_col=4):
        for cell in row:
            cell.number_format = "DD/MM/YYYY"
    guide = wb.create_sheet("Huong dan")
    guide.append(["Cột", "Ý nghĩa"])
    for vi, _api, label in COLUMNS:
        guide.append([vi, label])
    guide.append([])
    guide.append(["Mã hình thức", "transfer (chuyển khoản/VietQR), card (thẻ), ewallet (ví điện tử)"])
    guide.append(["Mã nền tảng số", ", ".join(f"{c} ({label})" for c, label in PlatformKind.choices)])
    guide.append(["Lưu ý", "Mỗi dòng một đơn vị một kỳ. Dòng để trống số liệu được bỏ qua. Số liệu không dùng "
                           "tiền mặt không lớn hơn tổng. Kỳ không trùng kỳ đã duyệt. Tệp có lỗi: không dòng nào "
                           "được ghi, mọi lỗi được liệt kê theo số dòng."])
    guide.column_dimensions["A"].width = 34
    guide.column_dimensions["B"].width = 100
    for row in guide.iter_rows():
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def template_csv(institutions) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([c[0] for c in COLUMNS])
    for inst in institutions:
        w.writerow([inst.code, inst.name] + [""] * (len(COLUMNS) - 2))
    return ("\ufeff" + out.getvalue()).encode("utf-8")
