"""The loader: writes the demo world through the same services real use goes through."""
from __future__ import annotations

import dataclasses
import datetime as dt
import random
from dataclasses import dataclass
from typing import Callable, Iterable

from django.contrib.auth.hashers import make_password

from thuphi.billing.models import Bill, BillStatus, DiscountRule, DiscountType, FeeItem, FeeKind
from thuphi.billing.reference import normalize
from thuphi.billing.services import LineInput, bill_cancel, bill_create
from thuphi.core.demo.payments import demo_payments_record
from thuphi.core.demo.world import (
    ACCOUNTANT_THCS,
    ADMIN_BV,
    AGRIBANK,
    BIDV,
    CASHIER_BV,
    CASHIER_THCS,
    CATALOGUES,
    DEMO_EMAIL_DOMAIN,
    DEMO_PASSWORD,
    DemoError,
    HOSPITAL,
    ICB,
    MONTHS,
    PROVINCE_CODE,
    SCHOOL_THCS,
    SPECS,
    VCB,
    _People,
    _Spec,
    _first_weekday,
    _fmt,
    _money,
    _months_back,
    _school_days,
    _school_year,
    _weekdays,
    legacy_code_for,
)
from thuphi.core.models import Role, User
from thuphi.registry.models import BankAccount, Commune, DigitalPlatform, Institution, Payer, PayerCategory, Province
from thuphi.registry.services import BankAccountInput, institution_create, payer_upsert

# BHYT card groups of adults, weighted: household (GD), employees (DN), civil servants (HC), pensioners (HT),
# near-poor (CN), poor (HN), social protection (BT), meritorious people (CK); with the benefit level.
_BHYT_GROUPS = (("GD", 4, 30), ("DN", 4, 18), ("HC", 4, 8), ("HT", 3, 10), ("CN", 3, 4), ("HN", 1, 4),
                ("BT", 2, 4), ("CK", 2, 2))
_BHYT_POOL_OLD = tuple((g, lv) for g, lv, w in _BHYT_GROUPS for _ in range(w))
_BHYT_POOL = tuple(p for p in _BHYT_POOL_OLD if p[0] != "HT")


@dataclass
class _Student:
    payer: Payer
    years: int  # school years since entry: 0 for the entry class
    boards: bool = False
    parking: bool = False
    club: bool = False
    new_entrant: bool = False
    course: str = ""  # college programme or vocational course fee code


class _Loader:
    def __init__(self, *, seed: int, today: dt.date):
        self.seed = seed
        self.rng = random.Random(seed)
        self.people = _People(self.rng)
        self.today = today
        self.months = _months_back(today, MONTHS)
        self.window_start = dt.date(*self.months[0], 1)
        self.institutions: dict[str, Institution] = {}
        self.default_account: dict[str, BankAccount] = {}
        self.fees: dict[str, dict[str, FeeItem]] = {}
        self.users: dict[str, User] = {}
        self.notes: list[str] = []
        self.accounts_taken: set[tuple[str, str]] = set()
        self.tax_codes: set[str] = set()

    # -- small helpers ------------------------------------------------------

    def tax_code(self, legacy: str) -> str:
        """10 digits with the General Department of Taxation check digit.

        Tax codes begin with the province of registration: 23 for (former) Bắc Ninh, 24 for Bắc Giang.
        """
        prefix = "23" if legacy == "27" else "24"
        weights = (31, 29, 23, 19, 17, 13, 7, 5, 3)
        while True:
            body = prefix + f"{self.rng.randrange(10**7):07d}"
            r = sum(int(c) * w for c, w in zip(body, weights)) % 11
            if r == 0:  # the check would be 10: no such code is issued
                continue
            code = body + str((10 - r) % 10)
            if code not in self.tax_codes:
                self.tax_codes.add(code)
                return code

    def account_number(self, bank_bin: str, legacy: str) -> str:
        r = self.rng
        while True:
            if bank_bin == VCB:  # 13 digits
                number = f"0{'351' if legacy == '27' else '361'}000{r.randrange(10**6):06d}"
            elif bank_bin == ICB:  # 12 digits
                number = f"1{'06' if legacy == '27' else '07'}000{r.randrange(10**6):06d}"
            elif bank_bin == BIDV:  # 14 digits
                number = f"{'2601' if legacy == '27' else '2501'}0000{r.randrange(10**6):06d}"
            elif bank_bin == AGRIBANK:  # 13 digits
                number = f"{'2600' if legacy == '27' else '2500'}205{r.randrange(10**6):06d}"
            else:  # MB and others: 13 digits
                number = f"0{r.randrange(10**12):012d}"
            if (bank_bin, number) not in self.accounts_taken:
                self.accounts_taken.add((bank_bin, number))
                return number

    def commune(self, spec: _Spec) -> Commune:
        communes = Commune.objects.filter(province_id=PROVINCE_CODE)
        found = communes.filter(name=spec.commune_name).first() or communes.filter(code=spec.commune_code).first()
        if found is None:
            found = communes.order_by("code").first()
            self.notes.append(f"Không thấy {spec.commune_name}; {spec.code} đặt tại {found.name}.")
        return found

    def bill(self, inst_code: str, payer: Payer, items: list[LineInput], *, issue: dt.date, due: dt.date,
             title: str, actor: User | None = None) -> Bill:
        issue = min(issue, self.today)
        return bill_create(actor=actor, institution=self.institutions[inst_code], payer=payer, items=items,
                           issue_date=issue, due_date=max(due, issue), title=title,
                           bank_account=self.default_account[inst_code])

    def line(self, inst_code: str, fee_code: str, *, amount: int | None = None, name: str | None = None) -> LineInput:
        item = self.fees[inst_code][fee_code]
        return LineInput(name=name or item.name, amount=item.default_amount if amount is None else amount,
                         kind=item.kind, fee_item=item)

    # -- steps ----------------------------------------------------------------

    def users_create(self, usernames: Iterable[tuple[str, str, str, dict]]) -> None:
        password_hash = None
        for username, role, full_name, extra in usernames:
            existing = User.objects.filter(username=username).first()
            if existing is not None:
                self.users[username] = existing
                self.notes.append(f"Tài khoản “{username}” đã có từ trước: giữ nguyên, không đổi mật khẩu.")
                continue
            if password_hash is None:  # one PBKDF2 run for all demo users (same password)
                password_hash = make_password(DEMO_PASSWORD)
            family, _, given = full_name.rpartition(" ")
            kwargs = dict(email=f"{username}@{DEMO_EMAIL_DOMAIN}", password=None, role=role,
                          first_name=given, last_name=family, **extra)
            if role == Role.SYSTEM_ADMIN:
                user = User.objects.create_superuser(username, **kwargs)
            else:
                user = User.objects.create_user(username, **kwargs)
            user.password = password_hash
            user.save(update_fields=["password"])
            self.users[username] = user

    def institutions_create(self) -> None:
        admin = self.users.get("admin")
        actor = admin if admin is not None and admin.is_system_admin else None
        for spec in SPECS:
            commune = self.commune(spec)
            legacy = legacy_code_for(commune.code)
            holder = spec.holder or normalize(spec.name)
            accounts = [BankAccountInput(bank_bin=b, account_number=self.account_number(b, legacy),
                                         account_name=holder, is_default=(i == 0))
                        for i, b in enumerate(spec.banks)]
            inst = institution_create(
                actor=actor, code=spec.code, name=spec.name, sector=spec.sector, kind=spec.kind,
                ownership=spec.ownership, commune_code=commune.code, tax_code=self.tax_code(legacy),
                address=f"{spec.street}, {commune.name}, tỉnh Bắc Ninh", focal_point_name=self.people.adult(),
                focal_point_phone=self.people.phone(), accepted_methods=list(spec.methods),
                legacy_province_code=legacy, bank_accounts=accounts,
            )
            self.institutions[spec.code] = inst
            self.default_account[spec.code] = inst.bank_accounts.get(is_default=True)
            DigitalPlatform.objects.bulk_create([
                DigitalPlatform(institution=inst, kind=kind, provider=provider,
                                in_use_since=dt.date(year, self.rng.randint(1, 12), 1))
                for kind, provider, year in spec.platforms
            ])
            items = FeeItem.objects.bulk_create([
                FeeItem(institution=inst, code=code, name=name, kind=kind, default_amount=amount)
                for code, name, kind, amount in CATALOGUES[spec.kind]
            ])
            self.fees[spec.code] = {f.code: f for f in items}

    # -- schools --------------------------------------------------------------

    def students(self, inst_code: str, classes: list[tuple[str, str, int, int]], *, prefix: str = "HS",
                 own_phone: float = 0.0, category: PayerCategory | None = None,
                 category_share: float = 0.0) -> list[_Student]:
        """Students of the given classes: (class name, grade label, years since entry, size).

        Codes are PREFIX + entry year (2 digits) + a 4-digit sequence, e.g. HS260012 for a pupil who
        entered the school in the 2026–2027 school year.
        """
        inst = self.institutions[inst_code]
        y, m = self.months[-1]
        first_year = y if m >= 8 else y - 1  # the current school year starts in this year
        seq: dict[int, int] = {}
        out = []
        for class_name, grade, years, size in classes:
            entry = first_year - years
            for _ in range(size):
                seq[entry] = seq.get(entry, 0) + 1
                name, _female = self.people.name()
                in_category = category is not None and self.rng.random() < category_share
                phone = self.people.phone() if self.rng.random() < own_phone else ""
                payer = payer_upsert(
                    institution=inst, code=f"{prefix}{entry % 100:02d}{seq[entry]:04d}", name=name, phone=phone,
                    class_name=class_name, grade=grade, guardian_name=self.people.guardian_of(name),
                    guardian_phone=self.people.phone(), category=category if in_category else None,
                )
                out.append(_Student(payer=payer, years=years, new_entrant=(years == 0)))
        return out

    def school_month_dates(self, y: int, m: int, due_days: int) -> tuple[dt.date, dt.date]:
        issue = _first_weekday(y, m, 5 if m == 9 else 1) + dt.timedelta(days=self.rng.randint(0, 2))
        return issue, issue + dt.timedelta(days=due_days)

    def school_bills(self, inst_code: str, students: list[_Student],
                     lines_for: Callable[[_Student, int, int], list[LineInput]], *,
                     months: list[tuple[int, int]], due_days: int, actor: User | None = None,
                     mistakes: int = 0, duplicates: int = 0) -> None:
        """One bill per student and month with whatever lines apply; optionally a few that staff get wrong."""
        y0, m0 = self.months[-1]
        year_start = dt.date(y0 if m0 >= 8 else y0 - 1, 8, 1)  # months before it belong to last school year
        for idx, (y, m) in enumerate(months):
            issue, due = self.school_month_dates(y, m, due_days)
            last = idx == len(months) - 1
            wrong = set(self.rng.sample(range(len(students)), mistakes)) if last and mistakes else set()
            dup = set(self.rng.sample(range(len(students)), duplicates)) if last and duplicates else set()
            previous_year = dt.date(y, m, 1) < year_start
            for i, st in enumerate(students):
                if previous_year and st.new_entrant:
                    continue  # not yet at this school
                items = lines_for(st, y, m)
                if not items:
                    continue
                # Last school year's class had another name: leave it out of the title.
                title = f"Các khoản thu tháng {m}/{y}" + ("" if previous_year else f" – {st.payer.class_name}")
                if i in wrong and items[0].kind == FeeKind.MEALS_BOARDING:
                    days = _school_days(y, m)
                    bad = dataclasses.replace(items[0], amount=items[0].amount // days * (days + 2),
                                              name=items[0].name.replace(f"{days} ngày", f"{days + 2} ngày"))
                    first = self.bill(inst_code, st.payer, [bad, *items[1:]], issue=issue, due=due, title=title,
                                      actor=actor)
                    bill_cancel(actor=actor, bill=first, reason=(f"Sai số ngày ăn (tính {days + 2} ngày, thực tế "
                                                                 f"{days} ngày); đã lập phiếu thay thế."))
                bill = self.bill(inst_code, st.payer, items, issue=issue, due=due, title=title, actor=actor)
                if i in dup:
                    again = self.bill(inst_code, st.payer, items, issue=issue, due=due, title=title, actor=actor)
                    bill_cancel(actor=actor, bill=again, reason=f"Lập trùng với phiếu thu {bill.reference}.")

    def meals_line(self, inst_code: str, y: int, m: int, *, summer: bool = False) -> LineInput | None:
        days = _school_days(y, m) if not summer else _weekdays(y, m)
        if days <= 0:
            return None
        item = self.fees[inst_code]["AN"]
        label = f"Tiền ăn bán trú tháng {m}/{y}" + (" (hè)" if summer else "")
        return self.line(inst_code, "AN", amount=days * item.default_amount,
                         name=f"{label}: {days} ngày × {_money(item.default_amount)}")

    def kindergarten(self) -> None:
        code = "MN-HOASEN"
        classes = [("Nhà trẻ D1", "Nhà trẻ", 0, 18), ("Mẫu giáo bé C1", "3 tuổi", 0, 24),
                   ("Mẫu giáo nhỡ B1", "4 tuổi", 1, 26), ("Mẫu giáo lớn A1", "5 tuổi", 2, 28)]
        kids = self.students(code, classes)

        def lines(st: _Student, y: int, m: int) -> list[LineInput]:
            meals = self.meals_line(code, y, m, summer=m in (6, 7, 8))
            items = [meals] if meals else []
            items.append(self.line(code, "CSBT", name=f"Tiền chăm sóc bán trú tháng {m}/{y}"))
            items.append(self.line(code, "NUOC", name=f"Nước uống tháng {m}/{y}"))
            if m == 9:  # a new set every school year: the children grow
                items.append(self.line(code, "DP"))
            return items

        # Kindergartens keep children over the summer, so every month is billed.
        self.school_bills(code, kids, lines, months=self.months, due_days=10)

    def school_months(self) -> list[tuple[int, int]]:
        return [(y, m) for y, m in self.months if m not in (6, 7, 8)]

    def primary(self) -> None:
        code = "TH-VIETYEN"
        classes = [(f"{g}A", str(g), g - 1, self.rng.randint(30, 35)) for g in range(1, 6)]
        kids = self.students(code, classes)
        for k in kids:
            k.boards = self.rng.random() < 0.85
            k.club = self.rng.random() < 0.25

        def lines(st: _Student, y: int, m: int) -> list[LineInput]:
            items = []
            if st.boards:
                meals = self.meals_line(code, y, m)
                if meals:
                    items += [meals, self.line(code, "CSBT", name=f"Tiền chăm sóc bán trú tháng {m}/{y}")]
            if st.club:
                items.append(self.line(code, "CLB-TA", name=f"Câu lạc bộ Tiếng Anh tháng {m}/{y}"))
            if m == 9:
                items.append(self.line(code, "BHYT", name=f"Bảo hiểm y tế học sinh năm học {_school_year(y, m)} "
                                                           f"(12 tháng)"))
                if st.new_entrant:
                    items.append(self.line(code, "DP"))
            return items

        self.school_bills(code, kids, lines, months=self.school_months(), due_days=20, mistakes=2)

    def lower_secondary(self) -> None:
        code = SCHOOL_THCS
        inst = self.institutions[code]
        poor = PayerCategory.objects.create(institution=inst, code="HO-NGHEO", name="Hộ nghèo")
        PayerCategory.objects.create(institution=inst, code="CON-TB-LS", name="Con thương binh, liệt sĩ")
        # Half the meals of children of poor households are paid by the school's support fund.
        DiscountRule.objects.create(institution=inst, category=poor, fee_kind=FeeKind.MEALS_BOARDING,
                                    discount_type=DiscountType.PERCENT, value=50)
        classes = [(f"{g}{c}", str(g), g - 6, self.rng.randint(36, 40))
                   for g in range(6, 10) for c in ("A", "B")[: 2 if g < 8 else 1]]
        kids = self.students(code, classes, own_phone=0.1, category=poor, category_share=0.07)
        for k in kids:
            k.boards = k.payer.category_id is not None or self.rng.random() < 0.55
            k.parking = self.rng.random() < 0.5
            k.club = self.rng.random() < 0.2
        actor = self.users.get(ACCOUNTANT_THCS)

        def lines(st: _Student, y: int, m: int) -> list[LineInput]:
            items = []
            if st.boards:
                meals = self.meals_line(code, y, m)
                if meals:
                    items += [meals, self.line(code, "CSBT", name=f"Tiền chăm sóc bán trú tháng {m}/{y}")]
            if st.parking:
                items.append(self.line(code, "XE", name=f"Trông giữ xe đạp tháng {m}/{y}"))
            if st.club:
                items.append(self.line(code, "CLB", name=f"Câu lạc bộ thể thao, năng khiếu tháng {m}/{y}"))
            if m == 9:
                # Children of poor households hold a free BHYT card (HN), so they are not charged.
                if st.payer.category_id is None:
                    items.append(self.line(code, "BHYT", name=f"Bảo hiểm y tế học sinh năm học {_school_year(y, m)} "
                                                               f"(12 tháng)"))
                if st.new_entrant:
                    items.append(self.line(code, "DP"))
            return items

        self.school_bills(code, kids, lines, months=self.school_months(), due_days=25, actor=actor, duplicates=3)

    def upper_secondary(self) -> None:
        code = "THPT-YENPHONG1"
        classes = [("10A1", "10", 0, 42), ("10A2", "10", 0, 41), ("11A1", "11", 1, 40), ("12A1", "12", 2, 40)]
        kids = self.students(code, classes, own_phone=0.6)
        for k in kids:
            k.parking = self.rng.random() < 0.7
            k.club = self.rng.random() < 0.15
        # Water and parking are collected per semester (September for Sep–Dec, January for Jan–May);
        # clubs monthly.
        semesters = {9: ("I", 4), 1: ("II", 5)}

        def lines(st: _Student, y: int, m: int) -> list[LineInput]:
            items = []
            if m in semesters:
                sem, n = semesters[m]
                sy = _school_year(y, m)
                items.append(self.line(code, "NUOC", amount=n * self.fees[code]["NUOC"].default_amount,
                                       name=f"Nước uống học kỳ {sem} năm học {sy} ({n} tháng)"))
                if st.parking:
                    items.append(self.line(code, "XE", amount=n * self.fees[code]["XE"].default_amount,
                                           name=f"Trông giữ xe đạp điện học kỳ {sem} năm học {sy} ({n} tháng)"))
            if st.club:
                items.append(self.line(code, "CLB", name=f"Câu lạc bộ STEM, ngoại ngữ tháng {m}/{y}"))
            if m == 9:
                items.append(self.line(code, "BHYT", name=f"Bảo hiểm y tế học sinh năm học {_school_year(y, m)} "
                                                           f"(12 tháng)"))
                if st.new_entrant:
                    items.append(self.line(code, "DP"))
            return items

        months = self.school_months()
        self.school_bills(code, kids, lines, months=months, due_days=25)
        # A pupil moved to another school: the newest open bill of the last pupil with one is withdrawn.
        if months:
            bill = (Bill.objects.filter(institution=self.institutions[code], status=BillStatus.UNPAID)
                    .order_by("payer__code", "issue_date").last())
            if bill is not None:
                bill_cancel(actor=None, bill=bill,
                            reason=f"Học sinh chuyển trường từ ngày {_fmt(bill.issue_date + dt.timedelta(days=3))}.")

    def college(self) -> None:
        code = "CD-TUSON"
        y0, m0 = self.months[-1]
        first_year = y0 if m0 >= 8 else y0 - 1
        yy = first_year % 100
        classes = [(f"CNTT K{yy}A", "Năm 1", 0, 30), (f"KT K{yy}A", "Năm 1", 0, 26),
                   (f"CNTT K{yy - 1}A", "Năm 2", 1, 28), (f"DD K{yy - 1}A", "Năm 2", 1, 24)]
        kids = self.students(code, classes, prefix="SV", own_phone=1.0)
        programme = {"CNTT": "HP-CNTT", "KT": "HP-KT", "DD": "HP-DD"}
        for k in kids:
            k.course = programme[k.payer.class_name.split()[0]]
            k.boards = self.rng.random() < 0.3  # lives in the dormitory

        # Private: tuition in two instalments per semester (September/November, February/April).
        instalments = {9: ("I", 1), 11: ("I", 2), 2: ("II", 1), 4: ("II", 2)}

        def lines(st: _Student, y: int, m: int) -> list[LineInput]:
            items = []
            if m in instalments:
                sem, n = instalments[m]
                item = self.fees[code][st.course]
                label = item.name.replace(" (học kỳ)", "")
                items.append(self.line(code, st.course, amount=item.default_amount // 2,
                                       name=f"{label} học kỳ {sem} năm học {_school_year(y, m)}, đợt {n}/2"))
            if st.boards:
                items.append(self.line(code, "KTX", name=f"Phí ký túc xá tháng {m}/{y}"))
            if m == 9:
                items.append(self.line(code, "BHYT", name=f"Bảo hiểm y tế sinh viên năm học {_school_year(y, m)} "
                                                           f"(12 tháng)"))
            return items

        self.school_bills(code, kids, lines, months=self.school_months(), due_days=30)

    def vocational(self) -> None:
        code = "TCN-LUCNAM"
        y0, m0 = self.months[-1]
        first_year = y0 if m0 >= 8 else y0 - 1
        yy = first_year % 100
        # Intermediate level after lower secondary school is tuition-free (Law on Education 2019, art. 99).
        classes = [(f"TC Điện CN K{yy}", "Năm 1", 0, 26), (f"TC Cắt gọt KL K{yy - 1}", "Năm 2", 1, 20)]
        learners = self.students(code, classes, own_phone=0.5)
        for k in learners:
            k.boards = self.rng.random() < 0.4

        def lines(st: _Student, y: int, m: int) -> list[LineInput]:
            items = []
            if st.boards:
                items.append(self.line(code, "KTX", name=f"Phí ký túc xá tháng {m}/{y}"))
            if m == 9:
                items.append(self.line(code, "BHYT", name=f"Bảo hiểm y tế học sinh năm học {_school_year(y, m)} "
                                                           f"(12 tháng)"))
                if st.new_entrant:
                    items.append(self.line(code, "BHLD"))
            return items

        self.school_bills(code, learners, lines, months=self.school_months(), due_days=20)

        # Short courses for adults (rural labour training) pay tuition once, at the start of the course.
        inst = self.institutions[code]
        for fee_code, label, size in (("HP-SC-DIEN", "SC Điện dân dụng", 14), ("HP-SC-MAY", "SC May công nghiệp", 16)):
            start = self.visit_date()
            start = min(_first_weekday(start.year, start.month, start.day), self.today)
            for n in range(size):
                name, _ = self.people.name()
                payer = payer_upsert(institution=inst, code=f"HV{start:%y%m}{fee_code[-4:].strip('-')}{n + 1:02d}",
                                     name=name, phone=self.people.phone(), class_name=f"{label} {start:%m/%Y}",
                                     date_of_birth=dt.date(start.year - self.rng.randint(18, 45),
                                                           self.rng.randint(1, 12), self.rng.randint(1, 28)))
                self.bill(code, payer, [self.line(code, fee_code)], issue=start, due=start + dt.timedelta(days=14),
                          title=f"Học phí khóa {label} khai giảng {_fmt(start)}")

    # -- health ---------------------------------------------------------------

    def patient(self, inst_code: str, seq: int, visit: dt.date, legacy: str) -> Payer:
        r = self.rng
        age = r.choice((r.randint(0, 5), r.randint(6, 17), r.randint(18, 59), r.randint(18, 59), r.randint(60, 90)))
        dob = dt.date(visit.year - age, r.randint(1, 12), r.randint(1, 28))
        if dob > visit:
            dob = visit - dt.timedelta(days=r.randint(30, 300))
        name, _ = self.people.name()
        insurance = ""
        if r.random() < 0.88 or age < 6:  # children under 6 are all insured (TE1)
            if age < 6:
                group, level = "TE", 1
            elif age < 18:
                group, level = "HS", 4
            else:
                group, level = r.choice(_BHYT_POOL_OLD if age >= 50 else _BHYT_POOL)
            # group (2) + benefit level (1) + province (2) + social insurance number (10, also led by the province)
            insurance = f"{group}{level}{legacy}{legacy}{r.randrange(10**8):08d}"
        fields: dict = {"date_of_birth": dob, "insurance_number": insurance}
        phone = ""
        if age < 16 or age >= 80:
            fields["guardian_name"] = self.people.guardian_of(name) if age < 16 else self.people.adult()
            fields["guardian_phone"] = self.people.phone()
        else:
            phone = self.people.phone()
        return payer_upsert(institution=self.institutions[inst_code], code=f"BN{visit:%y}{seq:06d}", name=name,
                            phone=phone, **fields)

    @staticmethod
    def patient_share(payer: Payer, *, private: bool = False) -> int:
        """The percent of the price the patient pays: 100 without BHYT, else by the card's benefit level."""
        if private or not payer.insurance_number:
            return 100
        return {1: 0, 2: 0, 3: 5, 4: 20, 5: 0}.get(int(payer.insurance_number[2]), 20)

    def visit_date(self) -> dt.date:
        span = max((self.today - self.window_start).days, 0)
        return self.window_start + dt.timedelta(days=self.rng.randint(0, span))

    def outpatient_lines(self, inst_code: str, payer: Payer, share: int, tests: list[str]) -> list[LineInput]:
        suffix = "" if share == 100 else f" (người bệnh cùng chi trả {share}%)"
        items = []
        for fee_code in ["KB", *tests]:
            item = self.fees[inst_code][fee_code]
            amount = item.default_amount * share // 100
            if amount:
                items.append(self.line(inst_code, fee_code, amount=amount, name=item.name + suffix))
        return items

    def hospital(self, inst_code: str, n_patients: int, *, seq0: int, inpatient_share: float,
                 tests: tuple[str, ...], actor: User | None = None, transfers: int = 0) -> None:
        inst = self.institutions[inst_code]
        legacy = inst.legacy_province_id
        r = self.rng
        transferred = 0
        for n in range(n_patients):
            visit = self.visit_date()
            payer = self.patient(inst_code, seq0 + n, visit, legacy)
            share = self.patient_share(payer)
            if r.random() >= inpatient_share:
                picked = r.sample(tests, r.randint(0, min(3, len(tests))))
                items = self.outpatient_lines(inst_code, payer, share, picked)
                if items:  # a fully insured visit leaves nothing to pay
                    self.bill(inst_code, payer, items, issue=visit, due=visit + dt.timedelta(days=r.choice((0, 1, 3))),
                              title=f"Khám bệnh ngoại trú ngày {_fmt(visit)}", actor=actor)
                continue
            deposit = r.choice((1_000_000, 2_000_000)) if payer.insurance_number else r.choice(
                (3_000_000, 5_000_000, 10_000_000))
            dep = self.bill(inst_code, payer, [self.line(inst_code, "TAMUNG", amount=deposit,
                                                         name=f"Tạm ứng viện phí nhập viện ngày {_fmt(visit)}")],
                            issue=visit, due=visit + dt.timedelta(days=1),
                            title=f"Tạm ứng viện phí nhập viện ngày {_fmt(visit)}", actor=actor)
            if transferred < transfers and r.random() < 0.3:
                transferred += 1
                bill_cancel(actor=actor, bill=dep,
                            reason="Người bệnh chuyển tuyến trung ương trước khi nộp tạm ứng.")
                continue
            stay = r.randint(2, 12)
            discharge = visit + dt.timedelta(days=stay)
            if discharge > self.today:
                continue  # still in hospital: only the deposit so far
            bed = self.fees[inst_code]["NGAYGIUONG"].default_amount
            total = stay * bed + r.randint(300, 6_000) * 1_000 + r.randint(1, 20) * 46_200
            copay = total * share // 100
            if copay <= deposit:
                continue  # the deposit covers it; the rest is refunded at discharge
            rest = copay - deposit
            self.bill(inst_code, payer,
                      [self.line(inst_code, "VIENPHI", amount=rest,
                                 name=(f"Viện phí nội trú {visit:%d/%m}–{_fmt(discharge)}: người bệnh chi trả "
                                       f"{_money(copay)}, trừ tạm ứng {_money(deposit)}"))],
                      issue=discharge, due=discharge, title=f"Thanh toán ra viện ngày {_fmt(discharge)}", actor=actor)

    def commune_station(self, inst_code: str, n_patients: int, seq0: int) -> None:
        r = self.rng
        legacy = self.institutions[inst_code].legacy_province_id
        for n in range(n_patients):
            visit = self.visit_date()
            payer = self.patient(inst_code, seq0 + n, visit, legacy)
            kind = r.random()
            if kind < 0.35:
                items = [self.line(inst_code, "KSK")]
                title = f"Khám sức khỏe ngày {_fmt(visit)}"
            elif kind < 0.6:
                items = [self.line(inst_code, "VX-CUM")]
                title = f"Tiêm vắc xin cúm (dịch vụ) ngày {_fmt(visit)}"
            else:
                share = self.patient_share(payer)
                items = self.outpatient_lines(inst_code, payer, share, ["XN-DUONG"] if r.random() < 0.4 else [])
                title = f"Khám bệnh ngày {_fmt(visit)}"
            if items:
                self.bill(inst_code, payer, items, issue=visit, due=visit + dt.timedelta(days=r.choice((0, 2, 7))),
                          title=title)

    def private_clinic(self, inst_code: str, n_patients: int, seq0: int) -> None:
        r = self.rng
        legacy = self.institutions[inst_code].legacy_province_id
        for n in range(n_patients):
            visit = self.visit_date()
            payer = self.patient(inst_code, seq0 + n, visit, legacy)
            tests = r.sample(["XN-MAU", "SA-BUNG", "NS-TMH", "DIENTIM"], r.randint(0, 3))
            items = self.outpatient_lines(inst_code, payer, 100, tests)
            self.bill(inst_code, payer, items, issue=visit, due=visit, title=f"Khám bệnh ngày {_fmt(visit)}")

    # -- all ------------------------------------------------------------------

    def run(self) -> None:
        province = Province.objects.filter(code=PROVINCE_CODE).first()
        if province is None or not Commune.objects.filter(province_id=PROVINCE_CODE).exists():
            raise DemoError("Chưa có danh mục đơn vị hành chính: chạy `thuphi migrate` trước.")
        self.users_create([
            ("admin", Role.SYSTEM_ADMIN, "Nguyễn Quản Trị", {}),
            ("giamsat", Role.PROVINCIAL_MONITOR, "Trần Thị Giám Sát", {"province": province}),
        ])
        self.institutions_create()
        thcs, bv = self.institutions[SCHOOL_THCS], self.institutions[HOSPITAL]
        self.users_create([
            (ACCOUNTANT_THCS, Role.ACCOUNTANT, self.people.name(female=True)[0], {"institution": thcs}),
            (CASHIER_THCS, Role.CASHIER, self.people.name(female=True)[0], {"institution": thcs}),
            (CASHIER_BV, Role.CASHIER, self.people.adult(), {"institution": bv}),
            (ADMIN_BV, Role.INSTITUTION_ADMIN, self.people.adult(), {"institution": bv}),
        ])
        self.kindergarten()
        self.primary()
        self.lower_secondary()
        self.upper_secondary()
        self.college()
        self.vocational()
        self.hospital(HOSPITAL, 170, seq0=12_001, inpatient_share=0.35,
                      tests=("XN-TPTMAU", "XN-GLUCOSE", "XQ-NGUC", "SA-BUNG", "DIENTIM", "CT-SONAO"),
                      actor=self.users.get(CASHIER_BV), transfers=2)
        self.hospital("TTYT-LUCNGAN", 80, seq0=4_001, inpatient_share=0.25,
                      tests=("XN-TPTMAU", "XQ-NGUC", "SA-BUNG"))
        for i, code in enumerate(("TYT-YENTHE", "TYT-TANYEN", "TYT-PHATTICH")):
            self.commune_station(code, 24 + 3 * i, seq0=101)
        self.private_clinic("PK-ANPHUC", 50, seq0=2_001)
        # Last, with its own random stream: adding payments leaves the bills above unchanged.
        demo_payments_record(institutions=self.institutions, today=self.today, seed=self.seed)
