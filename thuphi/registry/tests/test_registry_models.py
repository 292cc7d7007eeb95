"""Registry models: administrative units loaded by migration, masked payer numbers, payer upsert."""
from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.test import Client

from thuphi.core.models import User
from thuphi.registry.models import Commune, LegacyProvince, Payer, PayerKind, Province
from thuphi.registry.services import payer_upsert

pytestmark = pytest.mark.django_db

PHONE = "0912345678"
GUARDIAN_PHONE = "0987654321"
BHYT = "HS4240123456789"  # 15 characters: 2-letter group, benefit level, province, 10-digit number


# --- administrative units ------------------------------------------------------------------------


def test_migration_loaded_34_provinces_3321_communes_and_63_legacy_provinces():
    # given a freshly migrated database (nothing loaded by the test)
    # then the units in force since 1 July 2025 and the 63 old provinces are there
    assert Province.objects.count() == 34
    assert Commune.objects.count() == 3321
    assert LegacyProvince.objects.count() == 63
    # and every commune hangs off one of the 34 provinces, every old province maps onto one
    assert Commune.objects.exclude(province__in=Province.objects.all()).count() == 0
    assert LegacyProvince.objects.values("successor").distinct().count() == 34


def test_old_bac_giang_24_and_old_bac_ninh_27_both_became_new_24():
    new_24 = Province.objects.get(code="24")
    assert new_24.name.endswith("Bắc Ninh")
    assert LegacyProvince.objects.get(code="24").successor_id == "24"
    assert LegacyProvince.objects.get(code="27").successor_id == "24"
    assert "Bắc Giang" in LegacyProvince.objects.get(code="24").name
    assert "Bắc Ninh" in LegacyProvince.objects.get(code="27").name
    assert sorted(new_24.predecessors.values_list("code", flat=True)) == ["24", "27"]
    # and a province that was not merged has itself as its only predecessor
    assert list(Province.objects.get(code="01").predecessors.values_list("code", flat=True)) == ["01"]


def test_codes_are_zero_padded_strings():
    assert Province.objects.filter(code="01").exists()
    assert not Province.objects.filter(code="1").exists()
    assert all(len(c) == 5 and c.isdigit() for c in Commune.objects.values_list("code", flat=True)[:500])


# --- payers: masked numbers ----------------------------------------------------------------------


@pytest.fixture
def patient(make_institution):
    hospital = make_institution(code="BN-BV-01", name="Bệnh viện Đa khoa tỉnh Bắc Ninh", sector="health",
                                kind="provincial_hospital")
    return payer_upsert(institution=hospital, code="BN000123", name="Trần Văn Bình", phone=PHONE,
                        insurance_number=BHYT, date_of_birth=dt.date(1980, 5, 17))


def test_masked_phone_shows_only_the_last_digits(patient):
    masked = patient.masked_phone
    assert masked.endswith("678")
    assert PHONE not in masked
    assert PHONE[:-3] not in masked  # none of the leading digits leak
    assert len(masked) == len(PHONE)


def test_masked_insurance_shows_only_the_last_four(patient):
    masked = patient.masked_insurance
    assert masked.endswith("6789")
    assert BHYT not in masked
    assert "HS4" not in masked
    assert masked.count("•") == len(BHYT) - 4


def test_guardian_phone_is_the_contact_and_is_masked_too(institution):
    student = payer_upsert(institution=institution, code="HS001", name="Nguyễn Thị Lan", phone=PHONE,
                           guardian_phone=GUARDIAN_PHONE, guardian_name="Nguyễn Văn Hùng")
    assert student.kind == PayerKind.STUDENT
    assert student.masked_phone.endswith("321")
    assert GUARDIAN_PHONE not in student.masked_phone and PHONE not in student.masked_phone


def test_empty_numbers_mask_to_empty(institution):
    p = payer_upsert(institution=institution, code="HS002", name="Lê Minh")
    assert p.masked_phone == "" and p.masked_insurance == ""


def test_admin_list_shows_masked_fields_only():
    payer_admin = admin.site._registry[Payer]
    shown = set(payer_admin.list_display)
    assert {"masked_phone", "masked_insurance"} <= shown
    assert not shown & {"phone", "guardian_phone", "insurance_number", "contact_phone"}
    # nor can the list be searched by a phone or card number (a search box is an oracle)
    assert not set(payer_admin.search_fields) & {"phone", "guardian_phone", "insurance_number"}


def test_admin_changelist_page_never_prints_a_full_number(patient, institution):
    # given a superuser looking at the payer list, with a student whose guardian has a phone
    payer_upsert(institution=institution, code="HS001", name="Nguyễn Thị Lan", guardian_phone=GUARDIAN_PHONE)
    superuser = User.objects.create_superuser("root", "root@example.gov.vn", "Mật-khẩu-dài-2026")
    client = Client()
    client.force_login(superuser)
    # when the list is rendered
    r = client.get("/admin/registry/payer/")
    # then the masked forms are there and the full numbers are not
    assert r.status_code == 200
    html = r.content.decode()
    assert "BN000123" in html and "HS001" in html
    assert patient.masked_phone in html and patient.masked_insurance in html
    for number in (PHONE, GUARDIAN_PHONE, BHYT):
        assert number not in html


# --- payer_upsert ----------------------------------------------------------------------------------


def test_payer_upsert_creates_then_updates_without_duplicating(institution):
    # given a new payer code
    first = payer_upsert(institution=institution, code="HS100", name="Phạm Thu Hà", phone=PHONE, class_name="6A")
    assert Payer.objects.count() == 1
    # when the same code comes again with a corrected name and a new class
    second = payer_upsert(institution=institution, code="HS100", name="Phạm Thu Hằng", class_name="7A")
    # then it is the same row, updated, and what was not given is kept
    assert second.pk == first.pk
    assert Payer.objects.count() == 1
    row = Payer.objects.get()
    assert (row.name, row.class_name, row.phone) == ("Phạm Thu Hằng", "7A", PHONE)


def test_payer_upsert_strips_the_code_so_spaces_do_not_make_a_twin(institution):
    a = payer_upsert(institution=institution, code="HS100", name="Phạm Thu Hà")
    b = payer_upsert(institution=institution, code=" HS100 ", name="Phạm Thu Hà")
    assert a.pk == b.pk and Payer.objects.count() == 1


def test_same_code_at_another_institution_is_another_payer(institution, make_institution):
    other = make_institution(code="BN-TH-02")
    a = payer_upsert(institution=institution, code="HS100", name="Phạm Thu Hà")
    b = payer_upsert(institution=other, code="HS100", name="Đỗ Văn Nam")
    assert a.pk != b.pk and Payer.objects.count() == 2
    assert Payer.objects.get(pk=a.pk).name == "Phạm Thu Hà"


def test_payer_kind_follows_the_sector(patient):
    assert patient.kind == PayerKind.PATIENT


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"code": "HS 100", "name": "A"}, "invalid_payer_code"),
        ({"code": "HS100", "name": "  "}, "payer_name_required"),
        ({"code": "HS100", "name": "A", "phone": "12345"}, "invalid_phone"),
        ({"code": "HS100", "name": "A", "guardian_phone": "0912"}, "invalid_phone"),
    ],
)
def test_payer_upsert_refuses_bad_input_and_writes_nothing(institution, kwargs, code):
    from thuphi.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as exc:
        payer_upsert(institution=institution, **kwargs)
    assert exc.value.code == code
    assert Payer.objects.count() == 0
