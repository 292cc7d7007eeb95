"""Suggestions for the review queue: which open bills an unmatched credit probably pays.

Nothing here books money: staff see the suggestions, with their reasons, and decide.

Signals, each worth a share of a 0–100 score:

* **reference** (up to 60): the memo holds an open bill's reference exactly (60) or a string one
  typing error away from it (45): a substitution, an adjacent transposition, a dropped or an
  extra character (optimal-string-alignment distance 1, i.e. Levenshtein 1 plus swaps). The
  check character guarantees such a string never matches automatically; here it only suggests.
* **amount** (up to 25): equal to what is still owed (25, down to 15 when thousands of open
  bills owe the same: a whole school's meal fee says little), equal to the bill's total when
  part has been paid (12), or within 10% of what is owed (up to 12).
* **name** (up to 25): the sender's name (``payer_name``) or a name written in the memo against
  the payer's and the guardian's names, diacritics and case ignored (rapidfuzz).
* **date** (up to 3): the credit arrived close to the due date; a tie-breaker more than a signal.

Efficiency: one query reads the institution's open bills as tuples (id, reference, amounts, due
date, payer and guardian names). Every bill is cheaply tested against three blocks: the memo's
near-miss references (rapidfuzz ``process.extract`` over the references, in C++), the amount
window, and a name block keyed on (surname, given name) with diacritics folded. Only bills in a
block are scored, and only those in the name block or near a reference get the costlier fuzzy
name scoring. For an institution with 50,000 open bills a call takes about 0.2–0.35 s of CPU on
a busy 2-vCPU machine (test_review.py prints it), 55–60% of it reading the rows; a folded-name
column with an index (or PostgreSQL unaccent + pg_trgm) would let the database do the name
blocking and cut that read to the candidates.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass, field

from django.db import connections
from django.db.models import CharField
from django.db.models.functions import Cast
from django.utils import timezone
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from thuphi.billing import reference as refcode
from thuphi.billing.models import OPEN_STATUSES, Bill
from thuphi.payments.models import Credit

__all__ = ["Suggestion", "suggestions_for", "fold"]

W_REF_EXACT = 60
W_REF_NEAR = 45
W_AMOUNT_EXACT = 25
W_AMOUNT_TOTAL = 12
W_AMOUNT_CLOSE = 12
W_NAME = 25
W_DATE = 3
#: Below this a bill is not worth showing.
MIN_SCORE = 25
#: Name similarity (0–100) from which a name counts; only an exact name (100%) earns all of W_NAME.
NAME_FLOOR = 80
#: An owed amount shared by more open bills than this says less: its points shrink, down to
#: W_AMOUNT_EXACT - AMOUNT_CROWD_PENALTY for thousands of bills (a whole school's meal fee).
AMOUNT_CROWD = 5
AMOUNT_CROWD_PENALTY = 10
AMOUNT_WINDOW = 0.10
#: Each candidate costs one pass over the references; a memo rarely has more than a handful.
MAX_REF_CANDIDATES = 40

AMOUNT_EXACT_PHRASE = "Số tiền khớp số còn phải nộp"
_TOKEN_RE = re.compile(r"[A-Z0-9]+")
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if base != ch:
            table[cp] = base
    for cp in range(0x300, 0x370):  # combining marks, for text stored decomposed
        table[cp] = None
    table[ord("đ")], table[ord("Đ")], table[ord("Ð")] = "d", "D", "D"
    return table


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Upper case without diacritics (``Nguyễn Văn Đức`` -> ``NGUYEN VAN DUC``), fast enough for
    tens of thousands of names per call (one ``str.translate``)."""
    return text.translate(_FOLD).upper()


@dataclass(frozen=True)
class Suggestion:
    bill: Bill
    score: int  # 0–100
    reasons: list[str] = field(default_factory=list)


@dataclass
class _Row:
    id: int
    reference: str
    amount_due: int
    amount_paid: int
    due_date: dt.date
    payer_name: str
    guardian_name: str
    payer_kind: str
    points: int = 0
    reasons: list[tuple[int, str]] = field(default_factory=list)  # (points, phrase)


def _vnd(n: int) -> str:
    return f"{n:,}".replace(",", ".") + " đ"


def _ref_candidates(text: str) -> list[str]:
    """Strings around every ``TP`` of the memo that could be a reference with one error.

    Wider than the matcher on purpose (nothing is booked from here): a code typed in groups or
    wrapped twice (``TP 7K3 M9Q 2XH``) is reassembled across up to four short separators.
    """
    runs = [(m.start(), m.group()) for m in _TOKEN_RE.finditer(text)]
    pieces = []
    for i, (start, tok) in enumerate(runs):
        piece, end = tok, start + len(tok)
        pieces.append(piece)
        for nxt_start, nxt in runs[i + 1:i + 5]:
            if nxt_start - end > refcode.MAX_SPLIT_GAP or len(piece) > 2 * refcode.LENGTH:
                break
            piece, end = piece + nxt, nxt_start + len(nxt)
            pieces.append(piece)
    out: dict[str, None] = {}
    for piece in pieces:
        start = piece.find(refcode.PREFIX)
        while start != -1:
            for n in (refcode.LENGTH, refcode.LENGTH - 1, refcode.LENGTH + 1):
                cand = piece[start:start + n]
                if len(cand) == n:
                    out[refcode.PREFIX + cand[2:].translate(_CONFUSABLE)] = None
            start = piece.find(refcode.PREFIX, start + 1)
    return list(out)[:MAX_REF_CANDIDATES]


def _ref_error(typed: str, ref: str) -> str:
    if len(typed) < len(ref):
        return "thiếu 1 ký tự"
    if len(typed) > len(ref):
        return "thừa 1 ký tự"
    if sum(a != b for a, b in zip(typed, ref)) == 2:
        return "đảo 2 ký tự liền nhau"
    return "sai 1 ký tự"


def _without(tokens: list[str], part: list[str]) -> list[str]:
    n = len(part)
    if n >= 2:
        for i in range(len(tokens) - n + 1):
            if tokens[i:i + n] == part:
                return tokens[:i] + ["|"] + tokens[i + n:]
    return tokens


def _windows(tokens: list[str]) -> dict[int, list[str]]:
    return {n: [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)] for n in range(2, 6)}


def _name_similarity(name: str, sender: str, windows: dict[int, list[str]]) -> tuple[int, str]:
    """Best similarity of one stored name to the sender or to a same-length run of memo words."""
    if not name:
        return 0, ""
    best, where = 0, ""
    if sender:
        s = max(fuzz.ratio(sender, name), fuzz.token_sort_ratio(sender, name))
        best, where = int(s), "sender"
    n = name.count(" ") + 1
    for size in {n, n - 1, n + 1}:
        cands = windows.get(size)
        if cands:
            hit = process.extractOne(name, cands, scorer=fuzz.ratio)
            if hit and int(hit[1]) > best:
                best, where = int(hit[1]), "memo"
    return best, where


_WHO = {
    ("student", "payer"): "học sinh", ("patient", "payer"): "người bệnh",
    ("student", "guardian"): "phụ huynh", ("patient", "guardian"): "người nhà",
}


def _open_bill_rows(institution_id: int) -> list[tuple]:
    """(id, reference, amount_due, amount_paid, due date as text, payer name, guardian name, payer kind)
    for every open bill, read on a plain cursor: at 50,000 rows Django's per-row converters
    (dates above all) would cost more than the query. Dates are parsed for candidates only."""
    # Ordered by id: SQLite then walks the bills in table order instead of hopping through the
    # (institution, status, due_date) index, about 2.5x faster at 50,000 rows.
    qs = (Bill.objects.filter(institution_id=institution_id, status__in=OPEN_STATUSES).order_by("id")
          .annotate(due_text=Cast("due_date", CharField()))
          .values_list("id", "reference", "amount_due", "amount_paid", "due_text", "payer__name",
                       "payer__guardian_name", "payer__kind"))
    sql, params = qs.query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def suggestions_for(*, credit: Credit, limit: int = 5) -> list[Suggestion]:
    """Open bills of the credit's institution, most likely first, each with a 0–100 score and
    short Vietnamese reasons. Cancelled, refunded and settled bills are never suggested."""
    amount = int(credit.amount or 0)
    memo = refcode.normalize(credit.description or "")
    sender = " ".join(fold(credit.payer_name or "").split())
    memo_tokens = _TOKEN_RE.findall(memo)
    sender_tokens = sender.split()
    # The sender's name is often in the memo too (bank apps write "NGUYEN VAN A chuyen tien"): it is
    # compared as the sender, and cut out of the memo so that its parts are not read as other names.
    windows = _windows(_without(memo_tokens, sender_tokens))
    # Name blocking keys: (surname, given name) pairs the credit could be naming.
    keys: set[tuple[str, str]] = set()
    if len(sender_tokens) >= 2:
        keys.add((sender_tokens[0], sender_tokens[-1]))
    for i, tok in enumerate(memo_tokens):
        for j in range(i + 1, min(i + 5, len(memo_tokens))):
            keys.add((tok, memo_tokens[j]))
    surnames = {k[0] for k in keys}
    paid_on = timezone.localdate(credit.occurred_at) if credit.occurred_at else timezone.localdate()

    rows = _open_bill_rows(credit.institution_id)
    if not rows:
        return []

    # Reference block: near misses among the open references (a C++ loop over all of them).
    near: dict[int, tuple[int, str]] = {}  # row index -> (distance, typed)
    cands = _ref_candidates(memo)
    if cands:
        refs = [r[1] for r in rows]
        for typed in cands:
            for _ref, dist, idx in process.extract(typed, refs, scorer=OSA.distance, score_cutoff=1, limit=5):
                if idx not in near or dist < near[idx][0]:
                    near[idx] = (int(dist), typed)

    low, high = amount * (1 - AMOUNT_WINDOW), amount * (1 + AMOUNT_WINDOW)
    # Name block: (surname, given name) in `keys`. Given names are the selective part and repeat a
    # lot, so each distinct raw word is folded and tested once; most rows cost two dict lookups.
    givens = {k[1] for k in keys}
    given_ok: dict[str, bool] = {}
    surname_fold: dict[str, str] = {}

    def in_name_block(name: str) -> bool:
        given = name[name.rfind(" ") + 1:]
        ok = given_ok.get(given)
        if ok is None:
            ok = given_ok[given] = fold(given) in givens
        if not ok:
            return False
        space = name.find(" ")
        if space < 0:
            return False
        surname = name[:space]
        f = surname_fold.get(surname)
        if f is None:
            f = surname_fold[surname] = fold(surname)
        return f in surnames and (f, fold(given)) in keys

    scored: list[_Row] = []
    same_amount = 0  # open bills owing exactly the credited amount
    for idx, (bill_id, reference, amount_due, amount_paid, due_date, payer_name, guardian_name, payer_kind) \
            in enumerate(rows):
        in_ref = idx in near
        owed = amount_due - amount_paid if amount_due > amount_paid else 0
        in_amount = amount > 0 and (low <= owed <= high or amount_due == amount)
        in_name = bool(keys) and (in_name_block(payer_name)
                                  or (bool(guardian_name) and in_name_block(guardian_name)))
        if not (in_ref or in_amount or in_name):
            continue
        row = _Row(bill_id, reference, amount_due, amount_paid, dt.date.fromisoformat(str(due_date)[:10]),
                   payer_name, guardian_name or "", payer_kind)
        if in_ref:
            dist, typed = near[idx]
            if dist == 0:
                row.reasons.append((W_REF_EXACT, f"Nội dung có đúng mã {row.reference}"))
            else:
                row.reasons.append((W_REF_NEAR, f"Mã gần giống {row.reference} ({_ref_error(typed, row.reference)})"))
        if in_amount:
            if owed == amount:
                same_amount += 1
                row.reasons.append((W_AMOUNT_EXACT, AMOUNT_EXACT_PHRASE))
            elif row.amount_due == amount:
                row.reasons.append((W_AMOUNT_TOTAL, "Số tiền bằng tổng phải nộp của phiếu"))
            elif owed:
                closeness = 1 - abs(amount - owed) / (owed * AMOUNT_WINDOW)
                pts = round(W_AMOUNT_CLOSE * closeness)
                if pts > 0:
                    row.reasons.append((pts, f"Số tiền gần số còn phải nộp (chênh {_vnd(abs(amount - owed))})"))
        if in_name or in_ref:
            best_pts, best_phrase = 0, ""
            for who, nm in (("guardian", row.guardian_name), ("payer", row.payer_name)):
                sim, where = _name_similarity(" ".join(fold(nm).split()), sender, windows)
                if sim < NAME_FLOOR:
                    continue
                pts = round(W_NAME * ((sim - 60) / 40) ** 2)  # 100% -> 25, 96% -> 20, 90% -> 14, 80% -> 6
                if pts > best_pts:
                    label = _WHO.get((row.payer_kind, who), "người nộp")
                    phrase = (f"Tên người chuyển giống tên {label} ({sim}%)" if where == "sender"
                              else f"Nội dung có tên {label} ({sim}%)")
                    best_pts, best_phrase = pts, phrase
            if best_pts:
                row.reasons.append((best_pts, best_phrase))
        days = (row.due_date - paid_on).days
        if abs(days) <= 30 and row.reasons:
            pts = W_DATE if abs(days) <= 3 else 2 if abs(days) <= 10 else 1
            when = ("đúng hạn nộp" if days == 0 else f"trước hạn nộp {days} ngày" if days > 0
                    else f"sau hạn nộp {-days} ngày")
            row.reasons.append((pts, f"Ngày chuyển gần hạn nộp ({when})"))
        scored.append(row)

    exact_pts = W_AMOUNT_EXACT
    if same_amount > AMOUNT_CROWD:
        exact_pts -= min(AMOUNT_CROWD_PENALTY, round(5 * math.log10(same_amount / AMOUNT_CROWD)))
    for row in scored:
        row.points = min(100, sum(exact_pts if phrase is AMOUNT_EXACT_PHRASE else p for p, phrase in row.reasons))
    scored = [r for r in scored if r.points >= MIN_SCORE]
    scored.sort(key=lambda r: (-r.points, r.due_date, r.id))
    top = scored[:max(limit, 0)]
    bills = Bill.objects.select_related("payer").in_bulk([r.id for r in top])
    return [Suggestion(bill=bills[r.id], score=r.points,
                       reasons=[phrase for _p, phrase in sorted(r.reasons, key=lambda x: -x[0])])
            for r in top if r.id in bills]
