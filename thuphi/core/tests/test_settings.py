"""Settings: production passes `check --deploy` with no warning, development needs nothing set,
and production refuses to start without its secrets.

Each case runs `thuphi` in a subprocess with an environment built from scratch, so that nothing
from the developer's shell or from CI (DATABASE_URL, SECRET_KEY, DEBUG...) leaks into the check.
"""
from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[3]


def thuphi_command() -> list[str]:
    script = Path(sys.executable).parent / "thuphi"
    return [str(script)] if script.exists() else [sys.executable, "-m", "thuphi"]


def base_env() -> dict[str, str]:
    """Only what a process needs to start: no project variable at all."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    return env


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*thuphi_command(), *args], env=env, cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=120)


def random_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*(-_=+)"
    return "".join(secrets.choice(alphabet) for _ in range(50))


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    return {
        **base_env(),
        "THUPHI_ENV": "production",
        "SECRET_KEY": random_secret_key(),
        "ALLOWED_HOSTS": "thuphi.example.gov.vn",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
    }


def test_production_settings_pass_check_deploy_with_zero_warnings(production_env):
    # given the environment an operator sets for production
    # when Django's deployment checklist runs, failing on any warning
    result = run("check", "--deploy", "--fail-level", "WARNING", env=production_env)
    # then it passes and reports nothing
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output and "ERRORS" not in output
    assert "no issues" in output


def test_production_turns_debug_off_and_https_on(production_env):
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_HSTS_SECONDS >= 31536000, s.ALLOWED_HOSTS)"
    )
    result = run("shell", "-c", code, env=production_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False True True True True ['thuphi.example.gov.vn']"


def test_development_defaults_need_nothing_set():
    # given a shell with no project variable at all (no DATABASE_URL, SECRET_KEY, THUPHI_ENV, DEBUG)
    env = base_env()
    assert not {"DATABASE_URL", "SECRET_KEY", "THUPHI_ENV"} & set(env)
    # when the system checks run
    result = run("check", env=env)
    # then they pass
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_defaults_are_not_fit_for_deployment():
    # the development key and DEBUG=True are exactly what check --deploy exists to catch
    result = run("check", "--deploy", "--fail-level", "WARNING", env=base_env())
    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout  # DEBUG on


@pytest.mark.parametrize("secret_key", [None, "", "   ", "dev-only-insecure-key-change-me-thuphi-0123456789abcdef"])
def test_production_without_a_real_secret_key_fails_loudly(production_env, secret_key):
    # given production without SECRET_KEY (or with an empty one, or the development one)
    if secret_key is None:
        del production_env["SECRET_KEY"]
    else:
        production_env["SECRET_KEY"] = secret_key
    # when anything starts
    result = run("check", env=production_env)
    # then it stops with an error that names the missing variable
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr
    assert "no issues" not in result.stdout


def test_production_without_allowed_hosts_fails_loudly(production_env):
    del production_env["ALLOWED_HOSTS"]
    result = run("check", env=production_env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "ALLOWED_HOSTS" in result.stderr
