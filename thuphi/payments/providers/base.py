"""Shared pieces of the webhook providers: the error, the normalised credit, and the exact serialisers.

Pure Python: no Django models, no database. Every signature comparison goes through
``hmac.compare_digest``; secrets that are empty are never used (an HMAC keyed with "" is forgeable).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

try:  # the IANA database ships with Linux; fall back to the fixed offset (Vietnam has had no DST since 1975)
    from zoneinfo import ZoneInfo

    VIETNAM_TZ: dt.tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except Exception:  # noqa: BLE001  pragma: no cover - only on machines without tzdata
    VIETNAM_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")

# architecture.md: money is integer VND, bounded to 100 billion đồng per amount.
MAX_AMOUNT = 100_000_000_000

MESSAGES = {
    "bad_signature": "Chữ ký hoặc khóa xác thực không hợp lệ.",
    "stale_timestamp": "Thông báo đã quá hạn: dấu thời gian quá cũ, có thể là gửi lại trái phép.",
    "future_timestamp": "Dấu thời gian của thông báo nằm ở tương lai; kiểm tra đồng hồ máy chủ gửi.",
    "missing_signature": "Thiếu chữ ký hoặc khóa xác thực.",
    "malformed_body": "Nội dung thông báo không hợp lệ.",
    "unsupported_event": "Loại thông báo này không được hỗ trợ.",
}


class WebhookRejected(Exception):
    """A notification we refuse. ``code`` is for machines, ``message`` (Vietnamese) for people.

    ``detail`` (optional, Vietnamese) says which field or rule failed; it never contains a secret or
    an expected signature, so it is safe to return to the caller.
    """

    def __init__(self, code: str, message: str | None = None, *, detail: str = "") -> None:
        if code not in MESSAGES:
            raise ValueError(f"unknown rejection code {code!r}")
        self.code = code
        self.detail = detail
        base = message or MESSAGES[code]
        self.message = f"{base} {detail}".strip() if detail and not message else base
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"WebhookRejected({self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class NormalizedCredit:
    """One bank movement as every provider reports it, in our words.

    ``event_id`` is unique per provider (the pipeline stores ``(provider, event_id)`` once). Provider
    test pings reuse a fixed id (SePay and Casso send ``id: 0``, payOS ``orderCode 123``), so for them
    ``event_id`` is ``"test:" + a digest of the money fields``: two different pings never collide into a
    conflict, and a redelivered ping is a plain duplicate.
    """

    provider: str
    event_id: str
    account_number: str
    virtual_account: str
    amount: int
    direction: str
    description: str
    occurred_at: dt.datetime
    bank_reference: str
    is_test: bool
    payer_name: str


@runtime_checkable
class Provider(Protocol):
    name: str

    def parse_json(self, raw_body: bytes) -> dict: ...

    def account_keys(self, body: dict) -> list[str]: ...

    def verify(self, *, headers: Mapping[str, str], raw_body: bytes, body: dict, secrets: Sequence[str],
               now: dt.datetime) -> None: ...

    def normalize(self, body: dict) -> list[NormalizedCredit]: ...

    def success_response(self) -> tuple[int, dict]: ...

    def is_test_ping(self, body: dict) -> bool: ...


# --------------------------------------------------------------------------------------------- parsing

def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            # Two parsers may pick different values for a repeated key: refuse the ambiguity outright.
            raise WebhookRejected("malformed_body", detail=f"Khóa “{key[:40]}” xuất hiện hai lần.")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise WebhookRejected("malformed_body", detail=f"Giá trị {name} không phải JSON hợp lệ.")


def parse_json_object(raw_body: bytes) -> dict:
    """UTF-8 JSON whose top level is an object; no duplicate keys, no NaN/Infinity."""
    if isinstance(raw_body, str):  # tolerate a str from tools; the wire is bytes
        raw_body = raw_body.encode("utf-8")
    try:
        text = bytes(raw_body).decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("malformed_body", detail="Nội dung không phải UTF-8.") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        body = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except WebhookRejected:
        raise
    except (ValueError, RecursionError):
        raise WebhookRejected("malformed_body", detail="Nội dung không phải JSON.") from None
    if not isinstance(body, dict):
        raise WebhookRejected("malformed_body", detail="JSON phải là một đối tượng.")
    return body


def header(headers: Mapping[str, str] | None, name: str) -> str:
    """A header value by case-insensitive name, stripped; "" when absent."""
    if not headers:
        return ""
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower().replace("_", "-") == wanted:
            return str(value).strip()
    return ""


def usable_secrets(secrets: Sequence[str] | None) -> list[str]:
    return [s for s in (secrets or []) if isinstance(s, str) and s]


def parse_signature_header(value: str) -> tuple[str | None, list[str]]:
    """``t=<digits>,v1=<hex>[,v1=<hex>...]`` -> (t, [v1...]). Unknown keys are ignored."""
    t: str | None = None
    v1: list[str] = []
    for part in value.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            continue
        key, val = key.strip(), val.strip()
        if key == "t":
            if t is not None:  # two timestamps: ambiguous
                return None, []
            t = val
        elif key == "v1" and val:
            v1.append(val.lower())
    if t is None or not t.isascii() or not t.isdigit() or len(t) > 16:
        return None, v1
    return t, v1


def any_digest_matches(expected: Iterable[str], presented: Iterable[str]) -> bool:
    """Constant-time comparison of every presented value with every expected one (hex strings)."""
    presented = [p.encode("ascii", "replace") for p in presented]
    found = False
    for exp in expected:
        e = exp.encode("ascii")
        for p in presented:
            found |= hmac.compare_digest(e, p)
    return found


def secret_equals(presented: str, secret: str) -> bool:
    """Constant time and length-hiding: compare SHA-256 digests of the two values."""
    a = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b)


def epoch_seconds(now: dt.datetime) -> float:
    if now.tzinfo is None:  # a naive "now" is taken as UTC (django.utils.timezone.now() is aware)
        now = now.replace(tzinfo=dt.timezone.utc)
    return now.timestamp()


def check_window(*, signed_at: float, now: dt.datetime, tolerance: int, future_skew: int) -> None:
    current = epoch_seconds(now)
    if current - signed_at > tolerance:
        raise WebhookRejected("stale_timestamp")
    if signed_at - current > future_skew:
        raise WebhookRejected("future_timestamp")


# ------------------------------------------------------------------------------------------ field rules

def require(mapping: dict, key: str, where: str = "") -> Any:
    if key not in mapping:
        raise WebhookRejected("malformed_body", detail=f"Thiếu trường “{where}{key}”.")
    return mapping[key]


def text(value: Any, field: str, *, required: bool = False) -> str:
    """A string field; None -> "" (unless required)."""
    if value is None:
        if required:
            raise WebhookRejected("malformed_body", detail=f"Trường “{field}” không được để trống.")
        return ""
    if not isinstance(value, str):
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” phải là chuỗi.")
    if required and not value.strip():
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” không được để trống.")
    return value


def identifier(value: Any, field: str) -> str:
    """A provider id: a non-negative JSON integer or a non-empty string."""
    if isinstance(value, bool) or value is None:
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” phải là mã giao dịch.")
    if isinstance(value, int):
        if value < 0:
            raise WebhookRejected("malformed_body", detail=f"Trường “{field}” không được âm.")
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= 128:
        return value.strip()
    raise WebhookRejected("malformed_body", detail=f"Trường “{field}” phải là mã giao dịch.")


def whole_vnd(value: Any, field: str, *, allow_negative: bool = False) -> int:
    """A JSON integer number of đồng. Floats, strings, booleans and out-of-range values are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” phải là số nguyên đồng.")
    if value < 0 and not allow_negative:
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” không được âm.")
    if abs(value) > MAX_AMOUNT:
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” vượt quá 100 tỷ đồng.")
    return value


def credit_amount(amount: int, *, is_test: bool) -> None:
    """A zero amount is not a credit: acknowledged only as a provider test ping."""
    if amount == 0 and not is_test:
        raise WebhookRejected("unsupported_event", detail="Giao dịch 0 đồng không phải là khoản tiền vào.")


def local_datetime(value: Any, field: str) -> dt.datetime:
    """``YYYY-MM-DD HH:MM:SS`` (Vietnam local time, no offset) -> aware datetime; an offset is honoured."""
    if not isinstance(value, str) or not value.strip():
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” phải là ngày giờ.")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” không đúng dạng ngày giờ.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=VIETNAM_TZ)
    return parsed


def aware_datetime(value: Any, field: str) -> dt.datetime:
    """ISO 8601 with an explicit offset (``2026-11-20T09:15:00+07:00``, ``...Z``); naive is refused."""
    if not isinstance(value, str) or not value.strip():
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” phải là ngày giờ ISO 8601.")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” không đúng ISO 8601.") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise WebhookRejected("malformed_body", detail=f"Trường “{field}” phải có múi giờ (vd. +07:00).")
    return parsed


def dedupe(keys: Iterable[str]) -> list[str]:
    out: list[str] = []
    for k in keys:
        if isinstance(k, str):
            k = k.strip()
            if k and k not in out:
                out.append(k)
    return out


def probe_event_id(*parts: Any) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")).hexdigest()
    return "test:" + digest[:32]


# ------------------------------------------------------------ JavaScript-compatible serialisation
# Casso and payOS compute signatures in JavaScript (JSON.stringify, String(number)); to verify a
# parsed body we must reproduce those bytes exactly, not Python's defaults.

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


def js_number(value: int | float) -> str:
    """ECMAScript Number::toString for finite numbers (shortest round-trip digits)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("NaN and Infinity have no JSON form")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    dec = Decimal(repr(abs(value))).normalize()
    _, digits_t, exponent = dec.as_tuple()
    digits = "".join(map(str, digits_t))
    k = len(digits)
    n = exponent + k  # position of the decimal point
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return f"{sign}{digits}e{exp}"
    return f"{sign}{digits[0]}.{digits[1:]}e{exp}"


def js_string(value: str) -> str:
    """JSON.stringify of a string: no ASCII escaping of non-ASCII, lone surrogates escaped (ES2019)."""
    out = json.dumps(value, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)


def _utf16_key(s: str) -> bytes:
    return s.encode("utf-16-be", "surrogatepass")


def js_key_order(keys: Iterable[str], *, sort: bool) -> list[str]:
    """The order JavaScript enumerates an object's keys in.

    Array-index keys ("0", "1", ... below 2**32 - 1) come first in numeric order; the rest keep their
    insertion order, which after ``Object.keys(o).sort()`` is UTF-16 code-unit order.
    """
    keys = list(keys)
    if sort:
        keys = sorted(keys, key=_utf16_key)
    index_keys = sorted((k for k in keys if _ARRAY_INDEX.fullmatch(k) and int(k) < 2**32 - 1), key=int)
    index_set = set(index_keys)
    return index_keys + [k for k in keys if k not in index_set]


def js_stringify(value: Any, *, sort_nested_objects: bool = False, _in_array: bool = False) -> str:
    """JSON.stringify(value) with no spaces.

    ``sort_nested_objects`` mirrors Casso's ``sortObjDataByKey``: objects are sorted recursively, but
    objects inside arrays are left as they are (the official sample does not descend into arrays).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return js_number(value)
    if isinstance(value, str):
        return js_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(js_stringify(v, sort_nested_objects=sort_nested_objects, _in_array=True)
                              for v in value) + "]"
    if isinstance(value, dict):
        sort = sort_nested_objects and not _in_array
        keys = js_key_order(value.keys(), sort=sort)
        return "{" + ",".join(
            js_string(k) + ":" + js_stringify(value[k], sort_nested_objects=sort_nested_objects and sort)
            for k in keys) + "}"
    raise TypeError(f"cannot serialise {type(value).__name__}")


def hmac_hex(algorithm: str, secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, getattr(hashlib, algorithm)).hexdigest()
