"""National answers read rollups (half months per institution, nationwide tables by kind of institution) and
signed pieces of periods: every figure must equal the brute-force sum of the contributions, for any range."""
from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict

import pytest
from django.db import connection

from thuphi.core.models import Role
from thuphi.monitoring import stats
from thuphi.monitoring.models import CASHLESS, NationStatFiling
from thuphi.monitoring.selectors import kpi_compute, period_pieces, scope_build, trend
from thuphi.monitoring.stats import Contribution, stats_snapshot
from thuphi.registry.models import Institution

FEES = ["tuition", "meals_boarding", "hospital_fee", "services", "unmatched"]
METHODS = ["cash", "card", "transfer", "ewallet"]


def _days(a: dt.date, b: dt.date):
    while a <= b:
        yield a
        a += dt.timedelta(days=1)


def covered(pieces) -> dict[dt.date, int]:
    out: Counter = Counter()
    for p in pieces:
        if p.level == "day":
            days = _days(p.first, p.last)
        elif p.level == "year":
            days = _days(p.first, p.first.replace(month=12, day=31))
        elif p.level == "half":
            last = (p.first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
            days = _days(p.first, p.first.replace(day=15)) if p.half == 1 else _days(p.first.replace(day=16), last)
        else:
            last = (p.last.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
            days = _days(p.first, last)
        for d in days:
            out[d] += p.sign
    return {d: n for d, n in out.items() if n}


def ranges(seed: int, n: int) -> list[tuple[dt.date, dt.date]]:
    rng = random.Random(seed)
    fixed = [(dt.date(2024, 3, 16), dt.date(2024, 4, 15)), (dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
             (dt.date(2024, 2, 1), dt.date(2024, 2, 29)), (dt.date(2024, 2, 10), dt.date(2024, 2, 20)),
             (dt.date(2024, 1, 2), dt.date(2024, 12, 30)), (dt.date(2024, 5, 31), dt.date(2024, 6, 1)),
             (dt.date(2024, 7, 15), dt.date(2024, 7, 16)), (dt.date(2024, 1, 1), dt.date(2024, 1, 1))]
    out = list(fixed)
    for _ in range(n):
        a = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(500))
        out.append((a, a + dt.timedelta(days=rng.choice([0, 1, 6, 14, 15, 16, 29, 30, 45, 90, rng.randrange(400)]))))
    return out


@pytest.mark.parametrize("halves, years", [(True, False), (False, False), (True, True), (False, True)])
def test_pieces_cover_each_day_of_the_range_exactly_once(halves, years):
    for a, b in ranges(4, 400):
        pieces = period_pieces(a, b, halves=halves, years=years)
        assert covered(pieces) == dict.fromkeys(_days(a, b), 1), (a, b, pieces)
        days = sum((p.last - p.first).days + 1 for p in pieces if p.level == "day")
        assert days <= (16 if halves else 30), (a, b, pieces)
    # the provinces' 16th-to-15th period is two whole halves; a year to date, its months and halves and a
    # few days
    assert [(p.level, p.half) for p in period_pieces(dt.date(2024, 3, 16), dt.date(2024, 4, 15), halves=True)] == \
        [("half", 2), ("half", 1)]
    assert [(p.level, p.first, p.last, p.half, p.sign)
            for p in period_pieces(dt.date(2024, 1, 1), dt.date(2024, 11, 20), halves=True)] == [
        ("month", dt.date(2024, 1, 1), dt.date(2024, 10, 1), 0, 1), ("half", dt.date(2024, 11, 1), dt.date(2024, 11, 1), 1, 1),
        ("day", dt.date(2024, 11, 16), dt.date(2024, 11, 20), 0, 1)]
    # with a yearly table: the year less what follows
    assert [(p.level, p.first, p.half, p.sign)
            for p in period_pieces(dt.date(2024, 1, 1), dt.date(2024, 11, 28), halves=True, years=True)] == [
        ("year", dt.date(2024, 1, 1), 0, 1), ("day", dt.date(2024, 11, 29), 0, -1),
        ("month", dt.date(2024, 12, 1), 0, -1)]


@pytest.fixture
def world(db, make_institution, make_user):
    """Six institutions of three kinds and two provinces, with contributions spread over 14 months
    (booked through the incremental path), some withdrawn again."""
    specs = [("education", "primary", "public", "24"), ("education", "primary", "private", "24"),
             ("health", "provincial_hospital", "public", "24"), ("health", "commune_health_station", "public", "01"),
             ("education", "university", "public", "01"), ("health", "provincial_hospital", "public", "01")]
    insts = [make_institution(code=f"RU-{i}", sector=s, kind=k, ownership=o, province_code=p)
             for i, (s, k, o, p) in enumerate(specs)]
    rng = random.Random(7)
    booked: list[Contribution] = []
    for _ in range(700):
        inst = rng.choice(insts)
        day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(425))
        booked.append(Contribution(inst.pk, day, rng.choice(FEES), rng.choice(METHODS), 1, rng.randrange(1, 5_000_000)))
    for start in range(0, len(booked), 50):
        stats._apply_many(booked[start:start + 50], +1)
    withdrawn = booked[::9]
    for c in withdrawn:
        stats._apply(c, -1)
    live = Counter(booked)
    live.subtract(Counter(withdrawn))
    contributions = list(live.elements())
    admin = make_user("qt-ru", Role.SYSTEM_ADMIN)
    monitor = make_user("gs-ru", Role.PROVINCIAL_MONITOR, province_id="24")
    return {"insts": insts, "contributions": contributions, "admin": admin, "monitor": monitor}


def brute(contributions, insts, a, b, keep=lambda c, i: True):
    attrs = {i.pk: i for i in insts}
    per_inst, by_fee, by_method, by_month = (defaultdict(lambda: [0, 0, 0, 0]) for _ in range(4))
    for c in contributions:
        if not (a <= c.day <= b) or not keep(c, attrs[c.institution_id]):
            continue
        cashless = c.method in CASHLESS
        row = (c.payments, c.payments if cashless else 0, c.value, c.value if cashless else 0)
        for table, key in ((per_inst, c.institution_id), (by_fee, c.fee_kind), (by_method, c.method),
                           (by_month, c.month)):
            for k in range(4):
                table[key][k] += row[k]
    return per_inst, by_fee, by_method, by_month


def figures(kpi):
    per_inst = {f.id: [f.ledger.payments, f.ledger.payments_cashless, f.ledger.value, f.ledger.value_cashless]
                for f in kpi.facts if f.ledger.payments or f.ledger.value}
    by_fee = {k: [f.payments, f.payments_cashless, f.value, f.value_cashless] for k, f in kpi.by_fee.items()}
    by_method = {k: [f.payments, f.payments_cashless, f.value, f.value_cashless] for k, f in kpi.by_method.items()}
    return per_inst, by_fee, by_method


@pytest.mark.parametrize("query", [
    {"area": "VN"}, {"area": "VN", "sector": "health"}, {"area": "VN", "kind": "primary"},
    {"area": "24", "as": "monitor"}, {"area": "24", "sector": "education", "as": "monitor"}])
def test_every_range_equals_the_brute_force_sum(world, query):
    query = dict(query)
    user = world[query.pop("as", "admin")]
    sector, kind = query.get("sector"), query.get("kind")
    province = None if query["area"] == "VN" else query["area"]
    insts = world["insts"]

    def keep(_c, inst):
        return ((not sector or inst.sector == sector) and (not kind or inst.kind == kind)
                and (not province or inst.commune.province_id == province))

    for a, b in ranges(11, 60):
        scope = scope_build(user=user, start=a, end=b, **query)
        kpi = kpi_compute(scope, breakdowns=True)
        per_inst, by_fee, by_method, by_month = brute(world["contributions"], insts, a, b, keep)
        assert figures(kpi) == (dict(per_inst), dict(by_fee), dict(by_method)), (query, a, b)
        months = {p.month: [p.figures.payments, p.figures.payments_cashless, p.figures.value,
                            p.figures.value_cashless] for p in trend(scope, kpi) if p.figures.payments}
        assert months == dict(by_month), (query, a, b)
        if kpi.nation:
            fees = {"tuition", "hospital_fee"}
            _i, by_fee_only, _m, _mo = brute(world["contributions"], insts, a, b,
                                             lambda c, i: keep(c, i) and c.fee_kind in fees)
            got = kpi.nation_figures(fee_kinds=fees)
            want = [sum(v[k] for v in by_fee_only.values()) for k in range(4)]
            assert [got.payments, got.payments_cashless, got.value, got.value_cashless] == want


def test_an_institution_changed_after_its_payments_moves_with_its_figures(world):
    """Staff change a hospital into a commune health station: national answers by kind follow at once (the
    nation tables keep them filed under the old kind until a rebuild, and readers move them)."""
    hospital = world["insts"][2]
    Institution.objects.filter(pk=hospital.pk).update(kind="commune_health_station", ownership="private")
    hospital.refresh_from_db()
    assert stats.institutions_refiled() == [
        (hospital.pk, ("health", "provincial_hospital", "public"), ("health", "commune_health_station", "private"))]
    a, b = dt.date(2024, 2, 10), dt.date(2025, 1, 20)
    for kind in ("provincial_hospital", "commune_health_station"):
        scope = scope_build(user=world["admin"], area="VN", kind=kind, start=a, end=b)
        kpi = kpi_compute(scope, breakdowns=True)
        per_inst, by_fee, by_method, by_month = brute(world["contributions"], world["insts"], a, b,
                                                      lambda c, i, k=kind: i.kind == k)
        assert figures(kpi) == (dict(per_inst), dict(by_fee), dict(by_method))
        months = {p.month: [p.figures.payments, p.figures.payments_cashless, p.figures.value,
                            p.figures.value_cashless] for p in trend(scope, kpi) if p.figures.payments}
        assert months == dict(by_month)
        private = kpi.nation_figures(ownership="private")
        assert private.payments == sum(v[0] for i, v in per_inst.items() if i == hospital.pk)
    # new payments keep going under the filing until a rebuild refiles it
    stats._apply(Contribution(hospital.pk, dt.date(2024, 6, 1), "services", "cash", 1, 10), +1)
    assert NationStatFiling.objects.get(pk=hospital.pk).kind == "provincial_hospital"


def test_the_rollups_derived_from_the_daily_table_equal_the_incremental_ones(world):
    """What migration 0005 and the rebuild on other databases do: every table from DailyStat."""
    kept = stats_snapshot()
    assert kept["institution_half"] and kept["nation_day"] and kept["nation_month"]
    for name, model in stats.current_models().items():
        if name in stats.ROLLUPS:
            model.objects.all().delete()
    with connection.cursor() as cur:
        stats.derive_rollups(stats.current_models(), cur)
    assert stats_snapshot() == kept


@pytest.mark.django_db
def test_the_batch_hooks_equal_the_single_ones(make_institution, make_user):
    from thuphi.billing.services import LineInput, bill_create
    from thuphi.payments import shifts
    from thuphi.payments.models import Credit
    from thuphi.payments.services import payment_record
    from thuphi.registry.services import payer_upsert

    school = make_institution(code="RU-BATCH")
    cashier = make_user("tn-ru", Role.CASHIER, institution=school)
    shifts.shift_open(actor=cashier, opening_float=0)
    for n, (kind, method) in enumerate([("tuition", "cash"), ("meals_boarding", "transfer"), ("services", "card"),
                                        ("tuition", "ewallet")]):
        payer = payer_upsert(institution=school, code=f"HS{n}", name=f"Học sinh {n}", phone="0912345678")
        bill = bill_create(actor=cashier, institution=school, payer=payer, due_date=dt.date.today(),
                           items=[LineInput(name=kind, amount=1_000_000 + n, kind=kind)])
        payment_record(actor=cashier, bill=bill, method=method, amount=1_000_000 + n)
    credits = list(Credit.objects.order_by("pk"))
    assert stats.credit_contributions(credits) == [stats.credit_contribution(c) for c in credits]
    kept = stats_snapshot()
    assert sum(p for p, _v in kept["nation_day"].values()) == 4
    stats.stats_on_credits_reversed(credits=credits)
    assert all(not rows for rows in stats_snapshot().values())
    stats.stats_on_credits_booked(credits=credits)
    assert stats_snapshot() == kept
    assert stats.stats_check() == []


@pytest.mark.django_db
def test_a_rebuild_refiles_a_changed_institution(make_institution, make_user):
    from thuphi.billing.services import LineInput, bill_create
    from thuphi.payments import shifts
    from thuphi.payments.services import payment_record
    from thuphi.registry.services import payer_upsert

    school = make_institution(code="RU-REFILE")
    cashier = make_user("tn-rf", Role.CASHIER, institution=school)
    admin = make_user("qt-rf", Role.SYSTEM_ADMIN)
    shifts.shift_open(actor=cashier, opening_float=0)
    payer = payer_upsert(institution=school, code="HS1", name="Học sinh 1", phone="0912345678")
    bill = bill_create(actor=cashier, institution=school, payer=payer, due_date=dt.date.today(),
                       items=[LineInput(name="Học phí", amount=700_000, kind="tuition")])
    payment_record(actor=cashier, bill=bill, method="transfer", amount=700_000)
    Institution.objects.filter(pk=school.pk).update(kind="lower_secondary")
    today = dt.date.today()

    def by_kind(kind):
        kpi = kpi_compute(scope_build(user=admin, area="VN", kind=kind, start=today.replace(day=1), end=today),
                          breakdowns=True)
        return kpi.ledger.payments, {k: f.value for k, f in kpi.by_fee.items()}

    assert by_kind("lower_secondary") == (1, {"tuition": 700_000}) and by_kind("primary") == (0, {})
    assert any(p.startswith("nation_") for p in stats.stats_check())
    stats.stats_rebuild()
    assert stats.institutions_refiled() == [] and stats.stats_check() == []
    assert by_kind("lower_secondary") == (1, {"tuition": 700_000}) and by_kind("primary") == (0, {})


def test_contributions_summed_by_the_caller_count_like_single_ones(db, make_institution):
    """What a statement import does (`stats_apply_contributions`): several credits of one key in one row."""
    inst = make_institution(code="RU-SUM")
    day = dt.date(2025, 3, 20)
    singles = [Contribution(inst.pk, day, "tuition", "transfer", 1, v) for v in (100, 250, 4_000)]
    for c in singles:
        stats._apply(c, +1)
    one_by_one = stats_snapshot()
    for c in singles:
        stats._apply(c, -1)
    assert all(not rows for rows in stats_snapshot().values())
    stats.stats_apply_contributions(contributions=[Contribution(inst.pk, day, "tuition", "transfer", 3, 4_350)])
    assert stats_snapshot() == one_by_one
    with pytest.raises(ValueError):
        stats.stats_apply_contributions(contributions=singles, sign=2)
