"""The demo world: the institutions, the people and their names, dates and fee catalogues."""
from __future__ import annotations

import calendar
import datetime as dt
import random
from dataclasses import dataclass

from thuphi.billing.models import FeeKind
from thuphi.core.errors import ThuphiError
from thuphi.registry.models import InstitutionKind, Ownership, PaymentMethod, PlatformKind, Sector

PROVINCE_CODE = "24"  # new Bắc Ninh (Bắc Ninh + Bắc Giang since 1 July 2025)
DEMO_PASSWORD = "thuphi-demo-2026"
#: Demo users carry this e-mail domain (.invalid never resolves): it tells a demo login from one
#: that existed before the demo and whose password the demo therefore did not set.
DEMO_EMAIL_DOMAIN = "demo.thuphi.invalid"
MONTHS = 4

# Student health insurance (BHYT HSSV): 4.5% of the base salary (2,340,000 đ since 1 July 2024,
# Decree 73/2024) for 12 months = 1,263,600 đ; the State pays 30%, the student 70% = 884,520 đ.
BASE_SALARY = 2_340_000
BHYT_FULL_YEAR = BASE_SALARY * 45 // 1000 * 12  # 1,263,600
BHYT_STUDENT_YEAR = BHYT_FULL_YEAR * 70 // 100  # 884,520

ACCOUNTANT_THCS = "ketoan.thcs"
CASHIER_THCS = "thungan.thcs"
CASHIER_BV = "thungan.bv"
ADMIN_BV = "quantri.bv"

VCB, ICB, BIDV, AGRIBANK, MB = "970436", "970415", "970418", "970405", "970422"

# ---------------------------------------------------------------------------
# Institutions
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    code: str
    name: str
    sector: str
    kind: str
    ownership: str
    commune_name: str
    commune_code: str  # fallback when the name is not found
    street: str
    banks: tuple[str, ...]  # BINs; the first is the default account
    methods: tuple[str, ...]
    platforms: tuple[tuple[str, str, int], ...]  # (kind, provider, in use since year)
    holder: str = ""  # account holder when it is not the institution's own name


_E, _H = Sector.EDUCATION, Sector.HEALTH
_PUB, _PRIV = Ownership.PUBLIC, Ownership.PRIVATE
_K = InstitutionKind
_P = PlatformKind
_CASH, _TRANSFER, _CARD, _EWALLET = (PaymentMethod.CASH, PaymentMethod.TRANSFER, PaymentMethod.CARD,
                                     PaymentMethod.EWALLET)

SPECS: tuple[_Spec, ...] = (
    _Spec("MN-HOASEN", "Trường Mầm non Hoa Sen", _E, _K.KINDERGARTEN, _PUB, "Phường Bắc Giang", "07210",
          "Đường Hoàng Văn Thụ", (ICB,), (_TRANSFER, _CASH),
          ((_P.SCHOOL_MANAGEMENT, "MISA (EMIS)", 2021), (_P.SCHOOL_PARENT, "VNPT (vnEdu)", 2022))),
    _Spec("TH-VIETYEN", "Trường Tiểu học Việt Yên", _E, _K.PRIMARY, _PUB, "Phường Việt Yên", "07777",
          "Đường Thân Nhân Trung", (AGRIBANK,), (_TRANSFER, _CASH),
          ((_P.SCHOOL_MANAGEMENT, "Viettel (SMAS)", 2019), (_P.SCHOOL_PARENT, "Viettel (SMAS)", 2020),
           (_P.LEARNING_RESOURCES, "VNPT (vnEdu)", 2023))),
    _Spec("THCS-KINHBAC", "Trường THCS Kinh Bắc", _E, _K.LOWER_SECONDARY, _PUB, "Phường Kinh Bắc", "09187",
          "Số 5 đường Nguyễn Đăng Đạo", (VCB, BIDV), (_TRANSFER, _CASH),
          ((_P.SCHOOL_MANAGEMENT, "VNPT (vnEdu)", 2018), (_P.SCHOOL_PARENT, "VNPT (vnEdu)", 2018),
           (_P.ONLINE_LEARNING, "Viettel (VioEdu)", 2021))),
    _Spec("THPT-YENPHONG1", "Trường THPT Yên Phong số 1", _E, _K.UPPER_SECONDARY, _PUB, "Xã Yên Phong", "09193",
          "Khu phố Chờ", (BIDV,), (_TRANSFER, _CASH),
          ((_P.SCHOOL_MANAGEMENT, "VNPT (vnEdu)", 2019), (_P.ONLINE_LEARNING, "Viettel (VioEdu)", 2021))),
    _Spec("CD-TUSON", "Trường Cao đẳng Công nghệ Từ Sơn", _E, _K.COLLEGE, _PRIV, "Phường Từ Sơn", "09367",
          "Số 210 đường Lý Thánh Tông", (VCB, MB), (_TRANSFER, _CARD, _EWALLET),
          ((_P.SCHOOL_MANAGEMENT, "MISA (QLTH)", 2020), (_P.ONLINE_LEARNING, "Moodle (tự triển khai)", 2020),
           (_P.LEARNING_RESOURCES, "FPT", 2022))),
    # No digital platform yet: keeps the provincial indicator below 100%, as in real life.
    _Spec("TCN-LUCNAM", "Trường Trung cấp Nghề Lục Nam", _E, _K.VOCATIONAL, _PUB, "Xã Lục Nam", "07444",
          "Tổ dân phố Đồi Ngô", (AGRIBANK,), (_TRANSFER, _CASH), ()),
    _Spec("BVDK-BACNINH", "Bệnh viện Đa khoa tỉnh Bắc Ninh", _H, _K.PROVINCIAL_HOSPITAL, _PUB, "Phường Võ Cường",
          "09190", "Đường Nguyễn Quyền", (ICB, VCB), (_TRANSFER, _CARD, _CASH),
          ((_P.HOSPITAL_MANAGEMENT, "VNPT (VNPT-HIS)", 2017), (_P.E_PRESCRIPTION, "Bộ Y tế (Đơn thuốc quốc gia)", 2023),
           (_P.TELEMEDICINE, "Viettel (Telehealth)", 2020), (_P.PERSONAL_HEALTH_RECORD, "VNeID (Bộ Công an)", 2024))),
    _Spec("TTYT-LUCNGAN", "Trung tâm Y tế khu vực Lục Ngạn", _H, _K.REGIONAL_MEDICAL_CENTRE, _PUB, "Phường Chũ",
          "07525", "Tổ dân phố Trần Phú", (AGRIBANK, BIDV), (_TRANSFER, _CARD, _CASH),
          ((_P.HOSPITAL_MANAGEMENT, "Viettel (VHIS)", 2019), (_P.E_PRESCRIPTION, "Bộ Y tế (Đơn thuốc quốc gia)", 2023),
           (_P.VACCINATION, "Viettel (Tiêm chủng quốc gia)", 2018))),
    _Spec("TYT-YENTHE", "Trạm Y tế xã Yên Thế", _H, _K.COMMUNE_HEALTH_STATION, _PUB, "Xã Yên Thế", "07288",
          "Thôn Cầu Gồ", (AGRIBANK,), (_TRANSFER, _CASH),
          ((_P.HOSPITAL_MANAGEMENT, "VNPT (VNPT-HIS)", 2020), (_P.VACCINATION, "Viettel (Tiêm chủng quốc gia)", 2018))),
    _Spec("TYT-TANYEN", "Trạm Y tế xã Tân Yên", _H, _K.COMMUNE_HEALTH_STATION, _PUB, "Xã Tân Yên", "07339",
          "Thôn Cao Thượng", (AGRIBANK,), (_TRANSFER, _CASH),
          ((_P.HOSPITAL_MANAGEMENT, "VNPT (VNPT-HIS)", 2020),)),
    _Spec("TYT-PHATTICH", "Trạm Y tế xã Phật Tích", _H, _K.COMMUNE_HEALTH_STATION, _PUB, "Xã Phật Tích", "09349",
          "Thôn Phật Tích", (AGRIBANK,), (_TRANSFER, _CASH),
          ((_P.HOSPITAL_MANAGEMENT, "Viettel (VHIS)", 2021), (_P.VACCINATION, "Viettel (Tiêm chủng quốc gia)", 2018))),
    _Spec("PK-ANPHUC", "Phòng khám Đa khoa An Phúc", _H, _K.PRIVATE_HOSPITAL, _PRIV, "Phường Đồng Nguyên", "09382",
          "Số 86 đường Trần Phú", (VCB, MB), (_TRANSFER, _CARD, _EWALLET, _CASH),
          ((_P.HOSPITAL_MANAGEMENT, "MISA", 2022), (_P.HEALTH_ADVICE, "Zalo OA (VNG)", 2023)),
          holder="CONG TY TNHH Y TE AN PHUC"),
)

DEMO_CODES = tuple(s.code for s in SPECS)
SCHOOL_THCS = "THCS-KINHBAC"
HOSPITAL = "BVDK-BACNINH"


def legacy_code_for(commune_code: str) -> str:
    """The pre-2025 province of a commune of new province 24.

    The official commune codes run by old province: 07xxx were communes of former Bắc Giang (old
    code 24), 09xxx of former Bắc Ninh (old code 27). Communes named after Bắc Giang places
    (Phường Bắc Giang, Việt Yên, Lục Nam, Chũ, Yên Thế, ...) all fall in the first range.
    """
    return "24" if int(commune_code) < 9000 else "27"


# ---------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------

_FAMILY = ("Nguyễn",) * 38 + ("Trần",) * 11 + ("Lê",) * 9 + ("Phạm",) * 7 + ("Hoàng",) * 5 + ("Vũ",) * 4 + (
    "Đặng", "Đặng", "Bùi", "Bùi", "Đỗ", "Đỗ", "Ngô", "Ngô", "Dương", "Dương", "Lý", "Phan", "Đinh", "Trịnh", "Đào")
_MIDDLE_M = ("Văn", "Văn", "Văn", "Minh", "Đức", "Gia", "Bảo", "Quang", "Hữu", "Thành")
_MIDDLE_F = ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Minh", "Bảo", "Khánh", "Phương", "Thanh")
_MIDDLE2_M = ("Văn Minh", "Đức Minh", "Gia Bảo", "Quang Minh", "Hữu Đức", "Minh Đức", "Hoàng Minh")
_MIDDLE2_F = ("Ngọc Bảo", "Thị Thanh", "Thị Minh", "Thị Thu", "Minh Khánh", "Bảo Ngọc", "Ngọc Khánh")
_GIVEN_M = ("An", "Bình", "Dũng", "Khánh", "Minh", "Nam", "Quân", "Tuấn", "Hùng", "Hải", "Long", "Phúc", "Đạt",
            "Huy", "Kiên", "Sơn", "Thắng", "Trung", "Việt", "Hiếu", "Lâm", "Khôi", "Phong", "Tâm", "Đăng")
_GIVEN_F = ("An", "Chi", "Hà", "Hương", "Khánh", "Linh", "Phương", "Tâm", "Thảo", "Trang", "Vy", "Yến", "Mai",
            "Lan", "Ngân", "Nhung", "Hoa", "Huyền", "Giang", "Hằng", "Thủy", "Ngọc", "Anh", "My", "Nhi")
# Mobile prefixes in use (Viettel 03x/086/096-098, VinaPhone 08[1-5]/088/091/094, MobiFone 070/07[6-9]/089/090/093).
_MOBILE_PREFIXES = ("096", "097", "098", "086", "032", "033", "034", "035", "036", "037", "038", "039",
                    "091", "094", "088", "081", "082", "083", "084", "085", "090", "093", "089", "070", "077",
                    "079")


class _People:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.phones: set[str] = set()

    def name(self, *, female: bool | None = None, family: str | None = None) -> tuple[str, bool]:
        r = self.rng
        if female is None:
            female = r.random() < 0.5
        family = family or r.choice(_FAMILY)
        # A two-word middle name ("Nguyễn Ngọc Bảo Anh") is common for children born lately.
        middles = (_MIDDLE2_F if female else _MIDDLE2_M) if r.random() < 0.15 else (_MIDDLE_F if female else _MIDDLE_M)
        middle = r.choice(middles)
        given = r.choice(_GIVEN_F if female else _GIVEN_M)
        while given in middle.split():
            given = r.choice(_GIVEN_F if female else _GIVEN_M)
        return f"{family} {middle} {given}", female

    def adult(self) -> str:
        return self.name()[0]

    def phone(self) -> str:
        while True:
            p = self.rng.choice(_MOBILE_PREFIXES) + f"{self.rng.randrange(10**7):07d}"
            if p not in self.phones:
                self.phones.add(p)
                return p

    def guardian_of(self, child_name: str) -> str:
        """Father (same family name) or mother (any family name)."""
        family = child_name.split()[0]
        if self.rng.random() < 0.55:
            return self.name(female=False, family=family)[0]
        return self.name(female=True)[0]


# ---------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------

_HOLIDAYS = {(1, 1), (4, 30), (5, 1), (9, 1), (9, 2)}


def _months_back(today: dt.date, n: int) -> list[tuple[int, int]]:
    y, m = today.year, today.month
    out = []
    for _ in range(n):
        out.append((y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def _weekdays(y: int, m: int, *, from_day: int = 1) -> int:
    last = calendar.monthrange(y, m)[1]
    n = sum(1 for d in range(from_day, last + 1)
            if dt.date(y, m, d).weekday() < 5 and (m, d) not in _HOLIDAYS)
    if m == 2:
        n -= 5  # Tết holiday, roughly a school week
    return max(n, 0)


def _school_days(y: int, m: int) -> int:
    # The school year opens on 5 September; meals are counted from then.
    return _weekdays(y, m, from_day=5 if m == 9 else 1)


def _first_weekday(y: int, m: int, day: int = 1) -> dt.date:
    d = dt.date(y, m, day)
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d


def _school_year(y: int, m: int) -> str:
    start = y if m >= 8 else y - 1
    return f"{start}–{start + 1}"


def _fmt(d: dt.date) -> str:
    return d.strftime("%d/%m/%Y")


def _money(n: int) -> str:
    return f"{n:,}".replace(",", ".") + " đ"


# ---------------------------------------------------------------------------
# Fee catalogues (amounts are public price levels or typical figures, in whole đồng)
# ---------------------------------------------------------------------------

_FK = FeeKind
CATALOGUES: dict[str, tuple[tuple[str, str, str, int], ...]] = {
    # code, name, kind, default amount
    _K.KINDERGARTEN: (
        ("AN", "Tiền ăn bán trú (mức/ngày)", _FK.MEALS_BOARDING, 28_000),
        ("CSBT", "Tiền chăm sóc bán trú (tháng)", _FK.SERVICES, 150_000),
        ("NUOC", "Nước uống (tháng)", _FK.SERVICES, 12_000),
        ("DP", "Đồng phục (2 bộ)", _FK.OTHER, 280_000),
    ),
    _K.PRIMARY: (
        ("AN", "Tiền ăn bán trú (mức/ngày)", _FK.MEALS_BOARDING, 30_000),
        ("CSBT", "Tiền chăm sóc bán trú (tháng)", _FK.SERVICES, 120_000),
        ("CLB-TA", "Câu lạc bộ Tiếng Anh (tháng)", _FK.SERVICES, 200_000),
        ("BHYT", "Bảo hiểm y tế học sinh (12 tháng)", _FK.STUDENT_INSURANCE, BHYT_STUDENT_YEAR),
        ("DP", "Đồng phục lớp 1 (2 bộ)", _FK.OTHER, 350_000),
    ),
    _K.LOWER_SECONDARY: (
        ("AN", "Tiền ăn bán trú (mức/ngày)", _FK.MEALS_BOARDING, 32_000),
        ("CSBT", "Tiền chăm sóc bán trú (tháng)", _FK.SERVICES, 100_000),
        ("XE", "Trông giữ xe đạp (tháng)", _FK.SERVICES, 20_000),
        ("CLB", "Câu lạc bộ thể thao, năng khiếu (tháng)", _FK.SERVICES, 150_000),
        ("BHYT", "Bảo hiểm y tế học sinh (12 tháng)", _FK.STUDENT_INSURANCE, BHYT_STUDENT_YEAR),
        ("DP", "Đồng phục lớp 6 (2 bộ áo, 1 bộ thể dục)", _FK.OTHER, 420_000),
    ),
    _K.UPPER_SECONDARY: (
        ("XE", "Trông giữ xe đạp điện (tháng)", _FK.SERVICES, 40_000),
        ("NUOC", "Nước uống (tháng)", _FK.SERVICES, 10_000),
        ("CLB", "Câu lạc bộ STEM, ngoại ngữ (tháng)", _FK.SERVICES, 180_000),
        ("BHYT", "Bảo hiểm y tế học sinh (12 tháng)", _FK.STUDENT_INSURANCE, BHYT_STUDENT_YEAR),
        ("DP", "Đồng phục lớp 10", _FK.OTHER, 450_000),
    ),
    _K.COLLEGE: (
        ("HP-CNTT", "Học phí ngành Công nghệ thông tin (học kỳ)", _FK.TUITION, 9_600_000),
        ("HP-KT", "Học phí ngành Kế toán (học kỳ)", _FK.TUITION, 8_400_000),
        ("HP-DD", "Học phí ngành Điều dưỡng (học kỳ)", _FK.TUITION, 10_800_000),
        ("KTX", "Phí ký túc xá (tháng)", _FK.SERVICES, 450_000),
        ("BHYT", "Bảo hiểm y tế sinh viên (12 tháng)", _FK.STUDENT_INSURANCE, BHYT_STUDENT_YEAR),
    ),
    _K.VOCATIONAL: (
        ("HP-SC-DIEN", "Học phí khóa sơ cấp Điện dân dụng (3 tháng)", _FK.TUITION, 2_700_000),
        ("HP-SC-MAY", "Học phí khóa sơ cấp May công nghiệp (3 tháng)", _FK.TUITION, 2_400_000),
        ("KTX", "Phí ký túc xá (tháng)", _FK.SERVICES, 200_000),
        ("BHYT", "Bảo hiểm y tế học sinh (12 tháng)", _FK.STUDENT_INSURANCE, BHYT_STUDENT_YEAR),
        ("BHLD", "Đồng phục, bảo hộ lao động", _FK.OTHER, 380_000),
    ),
    _K.PROVINCIAL_HOSPITAL: (
        ("KB", "Khám bệnh", _FK.HOSPITAL_FEE, 50_600),
        ("XN-TPTMAU", "Tổng phân tích tế bào máu ngoại vi", _FK.HOSPITAL_FEE, 46_200),
        ("XN-GLUCOSE", "Định lượng Glucose máu", _FK.HOSPITAL_FEE, 21_500),
        ("XQ-NGUC", "Chụp X-quang ngực thẳng", _FK.HOSPITAL_FEE, 65_400),
        ("SA-BUNG", "Siêu âm ổ bụng", _FK.HOSPITAL_FEE, 43_900),
        ("DIENTIM", "Điện tâm đồ", _FK.HOSPITAL_FEE, 32_800),
        ("CT-SONAO", "Chụp CT sọ não không tiêm thuốc cản quang", _FK.HOSPITAL_FEE, 522_000),
        ("NGAYGIUONG", "Ngày giường bệnh nội khoa (ngày)", _FK.HOSPITAL_FEE, 250_000),
        ("VIENPHI", "Viện phí nội trú (phần người bệnh chi trả)", _FK.HOSPITAL_FEE, 0),
        ("TAMUNG", "Tạm ứng viện phí", _FK.DEPOSIT, 2_000_000),
    ),
    _K.REGIONAL_MEDICAL_CENTRE: (
        ("KB", "Khám bệnh", _FK.HOSPITAL_FEE, 45_000),
        ("XN-TPTMAU", "Tổng phân tích tế bào máu ngoại vi", _FK.HOSPITAL_FEE, 46_200),
        ("XQ-NGUC", "Chụp X-quang ngực thẳng", _FK.HOSPITAL_FEE, 65_400),
        ("SA-BUNG", "Siêu âm ổ bụng", _FK.HOSPITAL_FEE, 43_900),
        ("NGAYGIUONG", "Ngày giường bệnh nội khoa (ngày)", _FK.HOSPITAL_FEE, 200_000),
        ("VIENPHI", "Viện phí nội trú (phần người bệnh chi trả)", _FK.HOSPITAL_FEE, 0),
        ("TAMUNG", "Tạm ứng viện phí", _FK.DEPOSIT, 1_000_000),
    ),
    _K.COMMUNE_HEALTH_STATION: (
        ("KB", "Khám bệnh", _FK.HOSPITAL_FEE, 35_600),
        ("XN-DUONG", "Xét nghiệm đường huyết mao mạch", _FK.HOSPITAL_FEE, 15_200),
        ("KSK", "Khám sức khỏe cấp giấy chứng nhận", _FK.SERVICES, 160_000),
        ("VX-CUM", "Tiêm vắc xin cúm (dịch vụ)", _FK.OTHER, 356_000),
    ),
    _K.PRIVATE_HOSPITAL: (
        ("KB", "Khám nội tổng quát", _FK.HOSPITAL_FEE, 150_000),
        ("XN-MAU", "Xét nghiệm công thức máu", _FK.HOSPITAL_FEE, 90_000),
        ("SA-BUNG", "Siêu âm ổ bụng tổng quát", _FK.HOSPITAL_FEE, 200_000),
        ("NS-TMH", "Nội soi Tai Mũi Họng", _FK.HOSPITAL_FEE, 180_000),
        ("DIENTIM", "Điện tim", _FK.HOSPITAL_FEE, 80_000),
    ),
}



class DemoError(ThuphiError):
    code = "demo_data_error"
