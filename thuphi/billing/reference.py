"""Bill payment references ("mã thanh toán") and finding them in bank memos.

Format
------
``TP`` + 8 body symbols + 1 check symbol = 11 characters, e.g. ``TP7K3M9Q2XH``
(illustrative; whether a given string is valid depends on its check symbol).

* Alphabet: Crockford's base 32, ``0-9`` and ``A-Z`` without ``I L O U``.
  The missing letters are the ones people confuse with ``1``, ``0`` and ``V``;
  when *reading* a memo we map ``O``->``0`` and ``I``/``L``->``1`` inside a
  candidate, because that is what a payer typing a code from paper does.
  ``U`` is not mapped (no single obvious intended symbol).
* 8 random body symbols = 40 bits (32^8 ~ 1.1e12 codes), so random
  allocation stays collision-light at hundreds of millions of bills; the
  database's unique constraint is still the authority.
* Check symbol: a weighted sum over GF(32) (polynomial x^5 + x^2 + 1,
  weights alpha^8 .. alpha^1 for body positions, 1 for the check symbol).

Why not Luhn mod 32
-------------------
Luhn mod N catches every single substitution but misses one adjacent
transposition pair: the symbols with values 0 and N-1 (``0`` and ``Z`` here),
the same blind spot as ``09``/``90`` in decimal Luhn. The requirement is that
*every* single mistyped character and *every* adjacent transposition is caught,
so we use the GF(32) check, which is as cheap and has no blind spot:

* a substitution at a position of weight w changes the sum by ``w*e``, which is
  non-zero because w != 0 and e != 0 in a field;
* swapping different symbols a, b at weights ``alpha^(k+1)``, ``alpha^k``
  changes it by ``alpha^k * (alpha+1) * (a XOR b)``, non-zero because alpha != 1.
  The same argument covers jump transpositions (abc->cba) and twin errors
  (aa->bb).

The prefix is *not* part of the check: it is a constant, so it would only add
a constant to the sum; a typo in it is caught because the prefix is matched
literally.

Finding references in transfer descriptions
-------------------------------------------
Banks mangle descriptions (see :func:`extract_with_reason`). Every candidate
returned is valid, but a valid-looking string is not proof of payment: any
``TP`` followed by nine alphabet characters (``TPHCM`` glued to digits, say)
passes the check with probability 1/32. Matching code must therefore also
require the reference to exist in the database (and should compare the
amount); the chance that a random valid string is an *issued* reference is
roughly issued/32^8 on top of that 1/32.
"""

from __future__ import annotations

import random
import re
import secrets
import unicodedata
from dataclasses import dataclass

__all__ = [
    "ALPHABET",
    "BODY_LEN",
    "LENGTH",
    "PREFIX",
    "canonical",
    "check_char",
    "extract_with_reason",
    "find_references",
    "generate",
    "is_valid",
    "normalize",
]

PREFIX = "TP"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32
BODY_LEN = 8
LENGTH = len(PREFIX) + BODY_LEN + 1

_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_GF_POLY = 0b100101  # x^5 + x^2 + 1, primitive: alpha = x has order 31
# Human misreadings accepted inside a candidate (never in the canonical form).
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})

_CANONICAL_RE = re.compile(rf"{PREFIX}[{ALPHABET}]{{{BODY_LEN + 1}}}")
_CANDIDATE_CHARS = ALPHABET + "OIL"
# Lookahead so that overlapping candidates ("TPTP...") are all tried.
_CANDIDATE_RE = re.compile(rf"(?=({PREFIX}[{_CANDIDATE_CHARS}]{{{BODY_LEN + 1}}}))")
_ALNUM_RUN_RE = re.compile(r"[A-Z0-9]+")

# A reference split once by a short separator is reassembled: " ", ".", "-",
# "_", ". ", " - " all qualify. Longer gaps are treated as real boundaries.
MAX_SPLIT_GAP = 3

# Reason tokens for extract_with_reason, best first.
EXACT = "exact"  # a whole alphanumeric token of the description
GLUED = "glued"  # inside a longer token (text glued before and/or after)
JOINED_SPLIT = "joined_split"  # reassembled across one short separator
CONFUSABLE_SUFFIX = "+confusable"  # O/I/L were read as 0/1
_RANK = {EXACT: 0, GLUED: 1, JOINED_SPLIT: 2}


def _mul_alpha(x: int) -> int:
    x <<= 1
    return x ^ _GF_POLY if x & 0b100000 else x


def _checksum(body: str) -> int:
    # Horner's rule: ((v0*a + v1)*a + ... + v7)*a = sum of v_i * a^(8-i).
    acc = 0
    for ch in body:
        acc = _mul_alpha(acc ^ _VALUE[ch])
    return acc


def check_char(body: str) -> str:
    """The check symbol for an 8-symbol ``body`` (prefix excluded).

    Raises ``ValueError`` if ``body`` has the wrong length or a symbol outside
    :data:`ALPHABET` (callers must normalise first).
    """
    if len(body) != BODY_LEN or any(ch not in _VALUE for ch in body):
        raise ValueError(f"body must be {BODY_LEN} symbols from {ALPHABET}")
    return ALPHABET[_checksum(body)]


def is_valid(ref: str) -> bool:
    """True if ``ref`` is a canonical reference: upper case, prefix, alphabet, check.

    Strict on purpose: ``tp7k...`` or a code with ``O`` for ``0`` is *not*
    valid here; use :func:`canonical` to accept what a person typed.
    """
    if not isinstance(ref, str) or not _CANONICAL_RE.fullmatch(ref):
        return False
    return ALPHABET[_checksum(ref[2:-1])] == ref[-1]


def generate(rng: random.Random | None = None) -> str:
    """A new random reference. Uses :mod:`secrets` unless ``rng`` is given.

    References containing ``TP`` after their own prefix are skipped (about 0.7%
    of draws): an inner ``TP`` would give memo scanning a second starting point
    and so a second 1/32 chance of a spurious candidate around every payment.
    Uniqueness against issued bills is the caller's job (database constraint).
    """
    while True:
        bits = rng.getrandbits(5 * BODY_LEN) if rng is not None else secrets.randbits(5 * BODY_LEN)
        body = "".join(ALPHABET[(bits >> shift) & 31] for shift in range(5 * (BODY_LEN - 1), -1, -5))
        ref = PREFIX + body + ALPHABET[_checksum(body)]
        if PREFIX not in ref[len(PREFIX) :]:
            return ref


def normalize(text: str) -> str:
    """Upper-case ``text`` and strip diacritics (``đ``/``Đ`` -> ``D``).

    Compatibility forms are folded too (full-width ``ＴＰ`` -> ``TP``). Other
    characters, including punctuation and spaces, are kept as they are.
    """
    text = text.replace("đ", "d").replace("Đ", "D").replace("Ð", "D")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def canonical(text: str) -> str | None:
    """The canonical reference a person meant by ``text``, or None.

    For search boxes and API input: case, diacritics, surrounding spaces,
    inner spaces/dots/dashes and the O/I/L confusions are forgiven; the check
    symbol must still match.
    """
    if not isinstance(text, str):
        return None
    squeezed = "".join(_ALNUM_RUN_RE.findall(normalize(text)))
    if len(squeezed) != LENGTH or not squeezed.startswith(PREFIX):
        return None
    ref = PREFIX + squeezed[len(PREFIX) :].translate(_CONFUSABLE)
    return ref if is_valid(ref) else None


@dataclass(frozen=True, slots=True)
class _Hit:
    ref: str
    start: int  # position in the normalised description, for ordering and overlap
    end: int
    reason: str

    @property
    def rank(self) -> int:
        return _RANK[self.reason.split("+", 1)[0]]


def _accept(raw: str) -> tuple[str, bool] | None:
    """Canonical form of an 11-char candidate and whether confusables were mapped."""
    body = raw[len(PREFIX) :]
    fixed = body.translate(_CONFUSABLE)
    ref = PREFIX + fixed
    if ALPHABET[_checksum(fixed[:-1])] != fixed[-1]:
        return None
    return ref, fixed != body


def extract_with_reason(description: str) -> list[tuple[str, str]]:
    """Every valid reference in a bank transfer description, with how it was found.

    Survives what banks do to descriptions: prefixes such as
    ``MBVCB.2427229823.174242.``, suffixes such as ``GD 174242-090822 15:45:46``,
    ``Trace 339176`` or ``FT25123456789``, any case, diacritics, punctuation
    turned into spaces, text glued before or after the reference
    (``THANHTOANTP7K3M9Q2XHHOCPHI``), truncation after the reference, the
    reference split once by a short separator (at most :data:`MAX_SPLIT_GAP`
    non-alphanumeric characters, e.g. ``TP7K3 M9Q2XH`` or ``T.P7K3M9Q2XH``),
    and ``O``/``I``/``L`` typed for ``0``/``1``.

    Returns ``(reference, reason)`` pairs in order of appearance, each
    reference once. ``reason`` is ``"exact"`` (a whole token), ``"glued"``
    (inside a longer token) or ``"joined_split"`` (reassembled across one
    separator), with ``"+confusable"`` appended when O/I/L were read as 0/1.
    A reference seen several times keeps its first position and its best
    reason. A candidate that needs a split is dropped when it overlaps one
    found without a split. Every returned reference passes :func:`is_valid`;
    whether it belongs to an issued bill is for the caller to check.
    """
    if not description:
        return []
    text = normalize(description)
    runs = [(m.start(), m.group()) for m in _ALNUM_RUN_RE.finditer(text)]

    whole: list[_Hit] = []
    for start, token in runs:
        if len(token) < LENGTH:
            continue
        for m in _CANDIDATE_RE.finditer(token):
            accepted = _accept(m.group(1))
            if accepted is None:
                continue
            ref, confused = accepted
            reason = EXACT if len(token) == LENGTH else GLUED
            s = start + m.start()
            whole.append(_Hit(ref, s, s + LENGTH, reason + (CONFUSABLE_SUFFIX if confused else "")))

    split: list[_Hit] = []
    for (a_start, a), (b_start, b) in zip(runs, runs[1:]):
        gap = b_start - (a_start + len(a))
        if gap > MAX_SPLIT_GAP:
            continue
        # Only the tail of `a` and the head of `b` can form a straddling candidate.
        a_tail = a[-(LENGTH - 1) :]
        joined = a_tail + b[: LENGTH - 1]
        cut = len(a_tail)
        for m in _CANDIDATE_RE.finditer(joined):
            # The split must fall strictly inside the candidate; otherwise the
            # candidate lies in one token and was handled above.
            if not (m.start() < cut < m.start() + LENGTH):
                continue
            accepted = _accept(m.group(1))
            if accepted is None:
                continue
            ref, confused = accepted
            s = a_start + len(a) - cut + m.start()
            e = b_start + (m.start() + LENGTH - cut)
            split.append(_Hit(ref, s, e, JOINED_SPLIT + (CONFUSABLE_SUFFIX if confused else "")))

    hits = whole + [h for h in split if not any(h.start < w.end and w.start < h.end for w in whole)]
    hits.sort(key=lambda h: (h.start, h.rank))

    best: dict[str, _Hit] = {}
    order: list[str] = []
    for h in hits:
        seen = best.get(h.ref)
        if seen is None:
            best[h.ref] = h
            order.append(h.ref)
        elif h.rank < seen.rank:
            best[h.ref] = _Hit(seen.ref, seen.start, seen.end, h.reason)
    return [(ref, best[ref].reason) for ref in order]


def find_references(description: str) -> list[str]:
    """The valid references in a transfer description, in order, without duplicates.

    See :func:`extract_with_reason` for what is tolerated and for the caveat
    that a found reference must still be looked up in the database.
    """
    return [ref for ref, _ in extract_with_reason(description)]
