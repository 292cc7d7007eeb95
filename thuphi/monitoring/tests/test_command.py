from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from thuphi.monitoring.models import DailyStat

pytestmark = pytest.mark.django_db


def test_rebuild_and_check_commands(make_institution, capsys):
    inst = make_institution()
    call_command("monitoring", "rebuild")
    assert "0 giao dịch" in capsys.readouterr().out
    DailyStat.objects.create(institution=inst, day="2026-01-05", fee_kind="tuition", method="cash", payments=3,
                             value=10)
    with pytest.raises(CommandError):
        call_command("monitoring", "check")
    call_command("monitoring", "rebuild", "--python")
    call_command("monitoring", "check")
    assert "khớp" in capsys.readouterr().out
    call_command("monitoring", "plans")
