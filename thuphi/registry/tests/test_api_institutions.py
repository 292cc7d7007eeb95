"""Institutions through the API: registration by a system admin, errors that write nothing, scoping of reads."""
from __future__ import annotations

import pytest

from thuphi.core.models import Role
from thuphi.registry.models import BankAccount, Commune, Institution

pytestmark = pytest.mark.django_db


def commune_in(province_code: str) -> Commune:
    return Commune.objects.filter(province_id=province_code).order_by("code").first()


@pytest.fixture
def body():
    """A valid registration: a lower secondary school in a commune of new Bắc Ninh (24)."""
    return {
        "code": "BN-THCS-KB",
        "name": "Trường THCS Kinh Bắc",
        "sector": "education",
        "kind": "lower_secondary",
        "ownership": "public",
        "commune_code": commune_in("24").code,
        "tax_code": "2300987654",
        "bank_accounts": [
            {"bank_bin": "970415", "account_number": "112000998877", "account_name": "TRUONG THCS KINH BAC"},
        ],
    }


@pytest.fixture
def admin_api(api_as, system_admin):
    return api_as(system_admin)


def assert_nothing_written(before_institutions: int, before_accounts: int, code: str) -> None:
    assert Institution.objects.count() == before_institutions
    assert BankAccount.objects.count() == before_accounts
    assert not Institution.objects.filter(code=code).exists()


# --- registration -------------------------------------------------------------------------------


def test_system_admin_registers_an_institution_with_its_account(admin_api, body):
    # given a system admin and a valid body
    # when the institution is registered
    r = admin_api.post("/api/v1/institutions", body)
    # then it is created and every field comes back
    assert r.status_code == 201, r.content
    out = r.json()
    commune = Commune.objects.select_related("province").get(code=body["commune_code"])
    assert out["code"] == "BN-THCS-KB"
    assert out["name"] == "Trường THCS Kinh Bắc"
    assert (out["sector"], out["kind"], out["ownership"]) == ("education", "lower_secondary", "public")
    assert out["commune_code"] == commune.code and out["commune_name"] == commune.name
    assert out["province_code"] == "24" and out["province_name"] == commune.province.name
    assert out["tax_code"] == "2300987654"
    assert out["accepted_methods"] == ["transfer", "cash"]
    # new province 24 has two predecessors (old Bắc Giang 24, old Bắc Ninh 27): nothing is guessed
    assert out["legacy_province_code"] is None
    assert out["bank_accounts"] == [{
        "bank_bin": "970415", "bank_name": "VietinBank", "account_number": "112000998877",
        "account_name": "TRUONG THCS KINH BAC", "is_default": True, "connected_providers": [],
    }]
    # and the rows are in the database, the only account being the default
    inst = Institution.objects.get(code="BN-THCS-KB")
    assert list(inst.bank_accounts.values_list("account_number", "is_default")) == [("112000998877", True)]


def test_registered_institution_can_be_read_back(admin_api, body):
    created = admin_api.post("/api/v1/institutions", body).json()
    r = admin_api.get("/api/v1/institutions/BN-THCS-KB")
    assert r.status_code == 200
    assert r.json() == created


def test_secrets_of_provider_connections_are_never_returned(admin_api, body):
    # given an account registered with a SePay API key
    body["bank_accounts"][0]["connections"] = [{"provider": "sepay", "secret": "sepay-key-0123456789abcdef"}]
    r = admin_api.post("/api/v1/institutions", body)
    # then the provider is listed but the key appears nowhere in the answer
    assert r.status_code == 201, r.content
    assert r.json()["bank_accounts"][0]["connected_providers"] == ["sepay"]
    assert b"sepay-key-0123456789abcdef" not in r.content
    assert b"sepay-key-0123456789abcdef" not in admin_api.get("/api/v1/institutions/BN-THCS-KB").content


def _mutate(path, value):
    def apply(b):
        target = b
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return apply


@pytest.mark.parametrize(
    "mutate, status, code",
    [
        (_mutate(["commune_code"], "99999"), 422, "unknown_commune"),
        (_mutate(["kind"], "provincial_hospital"), 422, "kind_sector_mismatch"),
        (_mutate(["kind"], "school"), 422, "invalid_kind"),
        (_mutate(["sector"], "finance"), 422, "invalid_sector"),
        (_mutate(["ownership"], "state"), 422, "invalid_ownership"),
        (_mutate(["tax_code"], "12345"), 422, "invalid_tax_code"),
        (_mutate(["code"], "mã có dấu"), 422, "invalid_code"),
        (_mutate(["bank_accounts", 0, "bank_bin"], "999999"), 422, "unknown_bank_bin"),
        (_mutate(["bank_accounts", 0, "account_number"], "1120-0099 8877"), 422, "invalid_account_number"),
        (_mutate(["bank_accounts", 0, "account_number"], "1" * 20), 422, "invalid_account_number"),
        (_mutate(["bank_accounts", 0, "account_name"], "  "), 422, "account_name_required"),
        (_mutate(["bank_accounts"], []), 422, "bank_account_required"),
        (_mutate(["focal_point_phone"], "12345"), 422, "invalid_phone"),
        (_mutate(["name"], None), 422, "validation_error"),
    ],
)
def test_bad_registration_is_refused_with_a_code_and_writes_nothing(admin_api, body, mutate, status, code):
    # given an invalid body
    mutate(body)
    # when it is posted
    r = admin_api.post("/api/v1/institutions", body)
    # then the answer is a JSON error with a stable code and a message, and nothing was written
    assert r.status_code == status, r.content
    err = r.json()
    assert err["code"] == code and err["message"]
    assert_nothing_written(0, 0, "BN-THCS-KB")


def test_invalid_second_account_writes_nothing_of_the_first(admin_api, body):
    body["bank_accounts"].append({"bank_bin": "000000", "account_number": "1", "account_name": "X"})
    r = admin_api.post("/api/v1/institutions", body)
    assert r.status_code == 422 and r.json()["code"] == "unknown_bank_bin"
    assert "thứ 2" in r.json()["message"]
    assert_nothing_written(0, 0, "BN-THCS-KB")


def test_duplicate_code_is_409_and_leaves_the_first_untouched(admin_api, body):
    # given a registered institution
    assert admin_api.post("/api/v1/institutions", body).status_code == 201
    # when another one is posted with the same code (and another account)
    again = {**body, "name": "Trường khác",
             "bank_accounts": [{"bank_bin": "970436", "account_number": "0011223344", "account_name": "TRUONG KHAC"}]}
    r = admin_api.post("/api/v1/institutions", again)
    # then it is a conflict and neither the institution nor its accounts changed
    assert r.status_code == 409, r.content
    assert r.json()["code"] == "institution_exists"
    assert r.json()["message"]
    assert Institution.objects.get(code="BN-THCS-KB").name == "Trường THCS Kinh Bắc"
    assert list(BankAccount.objects.values_list("account_number", flat=True)) == ["112000998877"]


def test_account_already_registered_elsewhere_is_409_and_writes_nothing(admin_api, body):
    # given an institution that owns account 970415/112000998877
    assert admin_api.post("/api/v1/institutions", body).status_code == 201
    # when a second institution claims the same account
    other = {**body, "code": "BN-TH-02", "name": "Trường Tiểu học Số 2", "kind": "primary"}
    r = admin_api.post("/api/v1/institutions", other)
    # then it is a conflict, and the second institution was not created half-way
    assert r.status_code == 409, r.content
    assert r.json()["code"] == "bank_account_taken"
    assert not Institution.objects.filter(code="BN-TH-02").exists()
    assert Institution.objects.count() == 1 and BankAccount.objects.count() == 1
    assert BankAccount.objects.get().institution.code == "BN-THCS-KB"


def test_same_account_number_at_another_bank_is_not_a_conflict(admin_api, body):
    assert admin_api.post("/api/v1/institutions", body).status_code == 201
    other = {**body, "code": "BN-TH-02",
             "bank_accounts": [{**body["bank_accounts"][0], "bank_bin": "970436"}]}
    assert admin_api.post("/api/v1/institutions", other).status_code == 201
    assert BankAccount.objects.count() == 2


@pytest.mark.parametrize("role", [Role.CASHIER, Role.ACCOUNTANT, Role.INSTITUTION_ADMIN, Role.PROVINCIAL_MONITOR])
def test_only_a_system_admin_may_register(api_as, make_user, institution, body, role):
    # given staff who are not system admins
    scope = {"institution": institution} if role != Role.PROVINCIAL_MONITOR else {"province_id": "24"}
    user = make_user(f"u-{role}", role, **scope)
    before = (Institution.objects.count(), BankAccount.objects.count())
    # when they try to register an institution
    r = api_as(user).post("/api/v1/institutions", body)
    # then they are refused and nothing is written
    assert r.status_code == 403, r.content
    assert r.json()["code"] == "forbidden" and r.json()["message"]
    assert_nothing_written(*before, body["code"])


def test_registration_without_token_is_401(api_as, body):
    r = api_as(None).post("/api/v1/institutions", body)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert_nothing_written(0, 0, body["code"])


# --- legacy province (before 1 July 2025) --------------------------------------------------------


def test_old_bac_giang_is_accepted_for_a_commune_of_new_province_24(admin_api, body):
    body["legacy_province_code"] = "24"
    r = admin_api.post("/api/v1/institutions", body)
    assert r.status_code == 201, r.content
    assert r.json()["legacy_province_code"] == "24"
    assert Institution.objects.get(code=body["code"]).legacy_province_id == "24"


def test_old_bac_ninh_27_is_accepted_too(admin_api, body):
    body["legacy_province_code"] = "27"
    r = admin_api.post("/api/v1/institutions", body)
    assert r.status_code == 201, r.content
    assert r.json()["legacy_province_code"] == "27"


@pytest.mark.parametrize("legacy", ["01", "99"])
def test_legacy_province_that_did_not_become_24_is_refused(admin_api, body, legacy):
    body["legacy_province_code"] = legacy
    r = admin_api.post("/api/v1/institutions", body)
    assert r.status_code == 422, r.content
    assert r.json()["code"] == "legacy_province_mismatch"
    assert_nothing_written(0, 0, body["code"])


def test_legacy_province_is_filled_in_where_there_was_only_one(admin_api, body):
    # Hà Nội (01) was not merged: its only predecessor is old 01
    body["commune_code"] = commune_in("01").code
    r = admin_api.post("/api/v1/institutions", body)
    assert r.status_code == 201, r.content
    assert r.json()["province_code"] == "01" and r.json()["legacy_province_code"] == "01"


# --- reading: scoping ----------------------------------------------------------------------------


@pytest.fixture
def hanoi_institution(make_institution):
    return make_institution(code="HN-BV-01", name="Bệnh viện Đa khoa Hà Nội", sector="health",
                            kind="provincial_hospital", province_code="01")


def test_cashier_sees_own_institution_only(api_as, cashier, institution, make_institution, hanoi_institution):
    neighbour = make_institution(code="BN-TH-02")
    api = api_as(cashier)
    own = api.get(f"/api/v1/institutions/{institution.code}")
    assert own.status_code == 200 and own.json()["code"] == institution.code
    # another institution, in the same province or elsewhere, is "not found", not "forbidden"
    for code in (neighbour.code, hanoi_institution.code):
        r = api.get(f"/api/v1/institutions/{code}")
        assert r.status_code == 404, code
        assert r.json()["code"] == "institution_not_found"
        assert r.json()["message"]
        assert neighbour.name.encode() not in r.content


def test_monitor_sees_own_province_only(api_as, make_user, institution, make_institution, hanoi_institution):
    neighbour = make_institution(code="BN-TH-02")
    api = api_as(make_user("giamsat", Role.PROVINCIAL_MONITOR, province_id="24"))
    assert api.get(f"/api/v1/institutions/{institution.code}").status_code == 200
    assert api.get(f"/api/v1/institutions/{neighbour.code}").status_code == 200
    r = api.get(f"/api/v1/institutions/{hanoi_institution.code}")
    assert r.status_code == 404 and r.json()["code"] == "institution_not_found"


def test_monitor_of_hanoi_does_not_see_bac_ninh(api_as, make_user, institution, hanoi_institution):
    api = api_as(make_user("giamsat01", Role.PROVINCIAL_MONITOR, province_id="01"))
    assert api.get(f"/api/v1/institutions/{hanoi_institution.code}").status_code == 200
    assert api.get(f"/api/v1/institutions/{institution.code}").status_code == 404


def test_system_admin_sees_all(api_as, system_admin, institution, hanoi_institution):
    api = api_as(system_admin)
    for inst in (institution, hanoi_institution):
        r = api.get(f"/api/v1/institutions/{inst.code}")
        assert r.status_code == 200 and r.json()["code"] == inst.code


def test_unknown_code_is_404_for_everyone(api_as, system_admin):
    r = api_as(system_admin).get("/api/v1/institutions/NO-SUCH")
    assert r.status_code == 404 and r.json()["code"] == "institution_not_found"


def test_deactivated_user_sees_nothing(api_as, cashier, institution):
    api = api_as(cashier)
    cashier.is_active = False
    cashier.save(update_fields=["is_active"])
    r = api.get(f"/api/v1/institutions/{institution.code}")
    assert r.status_code == 401
