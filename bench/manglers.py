"""Transfer descriptions as Vietnamese banks deliver them, for the matching benchmark and its test.

Pure Python and seeded: ``MemoFactory(seed)`` yields the same memos, in the same order, on every
machine. Nothing here imports the matcher: the generator only knows what payers type and what
banks do to it, so a bug in the matcher's normalisation cannot hide in the test data.

A *genuine* memo carries the bill's reference, possibly mangled in ways the matcher is designed
to undo (see ``thuphi.billing.reference.extract_with_reason``):

* bank prefixes: ``MBVCB.2427229823.174242.``, ``IBFT ``, ``REM Tfr Ac: 1023456789 ``,
  ``TKThe :0123, tai Napas. ``, ``CT DEN:512G0020T0QHP5BT ``;
* bank-app defaults: ``NGUYEN VAN A chuyen tien``;
* suffixes: ``GD 174242-090822 15:45:46``, ``Trace 339176``, ``FT25123456789`` (spaced or
  glued), ``- Ma GD ACSP/ ab123``;
* bank transformations: upper case, diacritics stripped, dots turned into spaces, non-ASCII
  letters lost to ``?``, decomposed Unicode, one space inserted inside the reference (a line
  wrap), the reference glued to the text before/after, the text after the reference truncated;
* payer behaviour: Vietnamese free text before or after the code, ``O`` for ``0`` and ``I``/``L``
  for ``1``, the code typed in lower case.

Every mangling applied is recorded in :attr:`Memo.tags`, so a benchmark can report per mangling.

*Decoys* must not be booked to any bill: memos without a reference, a reference with one
character mistyped (substitution, adjacent transposition, one character dropped), a valid
reference of another institution's bill or of a cancelled bill, ``TP HCM``/``TPHCM`` next to
digits, phone, account and citizen-ID numbers.

*Stress* memos go beyond what the matcher promises (the reference split twice, typed in
groups); they are reported apart and are not part of the target.
"""
from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

# The reference alphabet (Crockford base 32). Duplicated on purpose: this module must not
# depend on the code it tests.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
            "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trịnh", "Lương", "Mai", "Tạ", "Chu", "Đào", "Cao"]
SURNAME_WEIGHTS = [38, 11, 9, 7, 5, 2, 4, 4, 4, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
MIDDLE_MALE = ["Văn", "Đức", "Minh", "Quang", "Hữu", "Thành", "Gia", "Công", "Xuân", "Anh", "Tuấn", "Hoàng"]
MIDDLE_FEMALE = ["Thị", "Ngọc", "Thu", "Thanh", "Bảo", "Khánh", "Minh", "Phương", "Hồng", "Mai", "Quỳnh"]
GIVEN_MALE = ["Bảo", "Hùng", "Dũng", "Huy", "Nam", "Quân", "Long", "Sơn", "Tú", "Phúc", "Khang", "Minh",
              "Đức", "Hưng", "Thắng", "Tuấn", "Việt", "Khôi", "Lâm", "Đạt", "An", "Hải", "Trung", "Kiên"]
GIVEN_FEMALE = ["Lan", "Linh", "Trang", "Hà", "Mai", "Thảo", "Vy", "Ngân", "Hương", "Hằng", "Yến", "Nhi",
                "Anh", "Châu", "Giang", "Hạnh", "Loan", "Ngọc", "Phương", "Quyên", "Tâm", "Thư", "Uyên", "My"]


def vn_name(rng: random.Random, *, female: bool | None = None) -> str:
    """A plausible Vietnamese full name (surname, middle name, given name)."""
    if female is None:
        female = rng.random() < 0.5
    surname = rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]
    middle = rng.choice(MIDDLE_FEMALE if female else MIDDLE_MALE)
    given = rng.choice(GIVEN_FEMALE if female else GIVEN_MALE)
    if rng.random() < 0.15:  # four-part names are common
        return f"{surname} {middle} {rng.choice(MIDDLE_FEMALE if female else MIDDLE_MALE)} {given}"
    return f"{surname} {middle} {given}"


@dataclass(frozen=True, slots=True)
class Person:
    """Who a bill is for, as the payer would write it."""

    name: str  # student or patient
    guardian: str  # parent or relative; the usual sender
    class_name: str = ""  # "3A" for a pupil, "" for a patient
    sector: str = "education"


def random_person(rng: random.Random, *, sector: str = "education") -> Person:
    surname = rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]
    child = vn_name(rng)
    child = surname + child[child.index(" "):]  # children carry the father's surname
    guardian = vn_name(rng, female=rng.random() < 0.6)
    cls = f"{rng.randint(1, 5)}{rng.choice('ABCDE')}" if sector == "education" else ""
    return Person(name=child, guardian=guardian, class_name=cls, sector=sector)


def strip_diacritics(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


@dataclass(frozen=True, slots=True)
class Memo:
    text: str
    kind: str  # "genuine", a decoy kind (see DECOY_KINDS) or a stress kind (see STRESS_KINDS)
    tags: tuple[str, ...]  # manglings applied, for the per-mangling breakdown
    ref: str | None = None  # the reference the payer meant (genuine, stress, typo decoys)


# Decoy kinds and their share of the decoys.
DECOY_KINDS: dict[str, float] = {
    "random_memo": 0.20,
    "typo_substitution": 0.14,
    "typo_transposition": 0.14,
    "typo_dropped_char": 0.14,
    "other_institution_ref": 0.14,
    "cancelled_bill_ref": 0.06,
    "tphcm_digits": 0.12,
    "phone_account_numbers": 0.06,
}
#: Decoys that carry a reference the payer meant; the other kinds carry none.
TYPO_KINDS = ("typo_substitution", "typo_transposition", "typo_dropped_char")
#: Beyond the matcher's promise (one split at most): reported apart, not in the target.
STRESS_KINDS = ("stress_double_split", "stress_grouped_typing")

# Probabilities of each genuine mangling (independent draws).
P = {
    "payer_text_vi": 0.55,
    "app_default": 0.20,
    "payer_confusable": 0.10,
    "payer_lower": 0.10,
    "split_space": 0.20,
    "glued_before": 0.15,
    "glued_after": 0.15,
    "truncated_after": 0.15,
    "upper": 0.60,
    "strip_diacritics": 0.65,
    "dots_to_spaces": 0.25,
    "non_ascii_lost": 0.04,
    "nfd_unicode": 0.04,
}

PREFIXES = {  # name -> (weight, maker)
    "none": 30,
    "prefix_mbvcb": 20,
    "prefix_ibft": 12,
    "prefix_rem_tfr": 10,
    "prefix_napas_card": 8,
    "prefix_ct_den": 10,
}
SUFFIXES = {
    "none": 35,
    "suffix_gd_time": 18,
    "suffix_trace": 15,
    "suffix_ft": 12,
    "suffix_ft_glued": 5,
    "suffix_ma_gd_acsp": 10,
}
GLUE_BEFORE = ["NOPTIEN", "HOCPHI", "THANHTOAN", "CK", "DONGTIEN", "TIENAN", "Nộptiền", "thanhtoán"]
GLUE_AFTER = ["HOCPHI", "TIENAN", "VIENPHI", "THANG11", "NOPTIEN", "BANTRU", "họcphí", "tiềnăn"]


class MemoFactory:
    """Seeded generator of genuine, decoy and stress memos."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    # --- pieces -----------------------------------------------------------------------

    def _digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def _prefix(self) -> tuple[str, str]:
        rng = self.rng
        name = rng.choices(list(PREFIXES), list(PREFIXES.values()))[0]
        if name == "prefix_mbvcb":
            return name, f"MBVCB.{self._digits(10)}.{self._digits(6)}."
        if name == "prefix_ibft":
            return name, "IBFT "
        if name == "prefix_rem_tfr":
            return name, f"REM Tfr Ac: {self._digits(10)} "
        if name == "prefix_napas_card":
            return name, f"TKThe :{self._digits(4)}, tai Napas. "
        if name == "prefix_ct_den":
            alnum = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
            txn = self._digits(3) + "".join(rng.choice(alnum) for _ in range(13))
            return name, f"CT DEN:{txn} "
        return name, ""

    def _suffix(self) -> tuple[str, str]:
        rng = self.rng
        name = rng.choices(list(SUFFIXES), list(SUFFIXES.values()))[0]
        if name == "suffix_gd_time":
            t = self._digits(6)
            return name, (f" GD {t}-{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}{rng.randint(22, 26)} "
                          f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")
        if name == "suffix_trace":
            return name, f" Trace {self._digits(6)}"
        if name == "suffix_ft":
            return name, f" FT{rng.randint(22, 26)}{self._digits(9)}"
        if name == "suffix_ft_glued":
            return name, f"FT{rng.randint(22, 26)}{self._digits(9)}"
        if name == "suffix_ma_gd_acsp":
            tail = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2)) + self._digits(3)
            return name, f" - Ma GD ACSP/ {tail}"
        return name, ""

    def _app_default(self, person: Person) -> str:
        sender = strip_diacritics(person.guardian).upper()
        return self.rng.choice([f"{sender} chuyen tien", f"{sender} chuyen khoan", f"{sender} Chuyen tien",
                                f"{sender} CHUYEN KHOAN"])

    def payer_text(self, person: Person) -> str:
        """What a payer types around (or instead of) the code, in Vietnamese."""
        rng = self.rng
        m = rng.randint(1, 12)
        name = person.name
        given = name.rsplit(" ", 1)[-1]
        if person.sector == "education":
            templates = [
                f"Nộp tiền ăn tháng {m} cho cháu {name} lớp {person.class_name}",
                f"Đóng học phí học kỳ {rng.randint(1, 2)} cho con {name}",
                f"{name} lớp {person.class_name} nộp tiền bán trú",
                f"Phụ huynh em {name} nộp tiền",
                f"tiền ăn bán trú T{m} bé {given}",
                f"nộp BHYT học sinh {name} {person.class_name}",
                f"Mẹ cháu {given} lớp {person.class_name} gửi tiền học",
                f"{person.guardian} nộp tiền cho con",
            ]
        else:
            templates = [
                f"Thanh toán viện phí cho {name}",
                f"Tạm ứng viện phí BN {name}",
                f"nộp tiền khám bệnh cho bố {name}",
                f"{person.guardian} đóng viện phí cho mẹ",
                f"Thanh toán chi phí điều trị {name} khoa Nội",
            ]
        return rng.choice(templates)

    # --- assembly -----------------------------------------------------------------------

    def _assemble(self, typed: str | None, person: Person, tags: list[str], *, text_prob: float) -> str:
        """Put the typed code (or none) into payer text, bank prefix/suffix and transformations."""
        rng = self.rng
        left = right = ""
        if typed is None or rng.random() < text_prob:
            tags.append("payer_text_vi")
            text = self.payer_text(person)
            if typed is None or rng.random() < 0.5:
                left = text + " "
            else:
                right = " " + text
        if rng.random() < P["app_default"]:
            tags.append("app_default")
            sep = rng.choice([" ", "."])
            right = right + sep + self._app_default(person)
        if typed is not None and rng.random() < P["glued_before"]:
            tags.append("glued_before")
            words = left.split()
            if words:
                k = rng.randint(1, min(3, len(words)))
                left = " ".join(words[:-k] + ["".join(words[-k:])])
            else:
                left = rng.choice(GLUE_BEFORE)
        if typed is not None and rng.random() < P["glued_after"]:
            tags.append("glued_after")
            words = right.replace(".", " ").split() if right.startswith(".") else right.split()
            if words:
                k = rng.randint(1, min(3, len(words)))
                right = "".join(words[:k]) + (" " + " ".join(words[k:]) if words[k:] else "")
            else:
                right = rng.choice(GLUE_AFTER)
        pname, prefix = self._prefix()
        sname, suffix = self._suffix()
        if pname != "none":
            tags.append(pname)
        if sname != "none":
            tags.append(sname)
        core = typed or ""
        head = prefix + left + core
        tail = right + suffix
        if typed is not None and tail and rng.random() < P["truncated_after"]:
            tags.append("truncated_after")
            tail = tail[: rng.randrange(len(tail))]
        text = head + tail
        # Bank-side transformations of the whole description (length-preserving ones first).
        if rng.random() < P["strip_diacritics"]:
            tags.append("strip_diacritics")
            text = strip_diacritics(text)
        elif rng.random() < P["non_ascii_lost"] / (1 - P["strip_diacritics"]):
            tags.append("non_ascii_lost")
            text = "".join(ch if ord(ch) < 128 else "?" for ch in text)
        if rng.random() < P["upper"]:
            tags.append("upper")
            text = text.upper()
        if rng.random() < P["dots_to_spaces"]:
            tags.append("dots_to_spaces")
            text = text.replace(".", " ")
        if rng.random() < P["nfd_unicode"]:
            tags.append("nfd_unicode")
            text = unicodedata.normalize("NFD", text)
        return text

    def _confuse(self, ref: str) -> str | None:
        """The payer reads 0 as O and 1 as I or L (the matcher accepts these), or None if no 0/1."""
        rng = self.rng
        body = list(ref[2:])
        spots = [i for i, ch in enumerate(body) if ch in "01"]
        if not spots:
            return None
        chosen = [i for i in spots if rng.random() < 0.7] or [rng.choice(spots)]
        for i in chosen:
            body[i] = "O" if body[i] == "0" else rng.choice("IL")
        return ref[:2] + "".join(body)

    def _typed(self, ref: str, tags: list[str]) -> str:
        rng = self.rng
        typed = ref
        if rng.random() < P["payer_confusable"]:
            confused = self._confuse(typed)
            if confused is not None:
                tags.append("payer_confusable")
                typed = confused
        if rng.random() < P["payer_lower"]:
            tags.append("payer_lower")
            typed = typed.lower()
        if rng.random() < P["split_space"]:
            tags.append("split_space")
            cut = rng.randint(1, len(typed) - 1)
            typed = typed[:cut] + " " + typed[cut:]
        return typed

    # --- public -------------------------------------------------------------------------

    def genuine(self, ref: str, person: Person) -> Memo:
        tags: list[str] = []
        typed = self._typed(ref, tags)
        text = self._assemble(typed, person, tags, text_prob=P["payer_text_vi"])
        return Memo(text=text, kind="genuine", tags=tuple(tags) or ("plain",), ref=ref)

    def typo(self, kind: str, ref: str, person: Person) -> Memo:
        """A reference with one character wrong, in the same surroundings as a genuine memo.

        A memo that still contains the intended reference (dropping the last symbol and gluing
        a word that starts with that symbol rebuilds it) is not a decoy: it is drawn again.
        """
        rng = self.rng
        for _ in range(100):
            if kind == "typo_substitution":
                i = rng.randrange(len(ref))
                wrong = ref[:i] + rng.choice([c for c in ALPHABET if c != ref[i]]) + ref[i + 1:]
            elif kind == "typo_transposition":
                spots = [i for i in range(len(ref) - 1) if ref[i] != ref[i + 1]]
                i = rng.choice(spots)
                wrong = ref[:i] + ref[i + 1] + ref[i] + ref[i + 2:]
            elif kind == "typo_dropped_char":
                i = rng.randrange(len(ref))
                wrong = ref[:i] + ref[i + 1:]
            else:
                raise ValueError(kind)
            tags = [kind]
            if rng.random() < P["payer_lower"]:
                tags.append("payer_lower")
                wrong = wrong.lower()
            text = self._assemble(wrong, person, tags, text_prob=P["payer_text_vi"])
            if ref not in _squeeze(text):
                return Memo(text=text, kind=kind, tags=tuple(tags), ref=ref)
        raise RuntimeError("could not draw a typo decoy")

    def with_foreign_ref(self, kind: str, ref: str, person: Person) -> Memo:
        """A valid reference that is not ours to book (another institution's, a cancelled bill's)."""
        tags = [kind]
        typed = self._typed(ref, tags)
        return Memo(text=self._assemble(typed, person, tags, text_prob=P["payer_text_vi"]), kind=kind,
                    tags=tuple(tags), ref=ref)

    def random_memo(self, person: Person) -> Memo:
        rng = self.rng
        tags = ["random_memo"]
        choice = rng.random()
        if choice < 0.5:
            text = self._assemble(None, person, tags, text_prob=1.0)
        else:
            other = rng.choice([
                "Chuyen tien", "Ung ho dong bao mien Trung", "tra no", "Chuyen tien mua hang",
                f"{strip_diacritics(person.guardian).upper()} chuyen tien", "Gui tien tiet kiem",
                "Nộp học phí trường TH TP Bắc Ninh", "thanh toan hoa don dien T11", "Tien nha thang 11",
                "QR - Thanh toán", "Hoàn tiền đặt cọc", "CHUYEN TIEN TU THIEN",
            ])
            pname, prefix = self._prefix()
            sname, suffix = self._suffix()
            tags += [t for t in (pname, sname) if t != "none"]
            text = prefix + other + suffix
            if rng.random() < 0.5:
                text = strip_diacritics(text).upper()
        return Memo(text=text, kind="random_memo", tags=tuple(tags))

    def tphcm_digits(self) -> Memo:
        rng = self.rng
        d = self._digits
        text = rng.choice([
            f"CHUYEN TIEN TPHCM{d(10)}",
            f"Chuyen tien tu TP HCM {d(10)}",
            f"TP HCM {d(8)} {d(3)}",
            f"TP. HCM {d(8)} {d(3)}",
            f"tp.hcm {d(12)}",
            f"CN TPHCM STK {d(13)} nop hoc phi",
            f"TPHCM{d(6)}{rng.choice('ABCDEFGH')}{d(4)}",
            f"VCB TPHCM{d(9)} GD {d(6)}",
            f"Nop tien hoc TPHCM {d(4)}{d(5)}",
            f"TP {d(9)} CT TPHN{d(11)}",
            f"BV DA KHOA TP {d(2)} {d(10)}",
        ])
        if rng.random() < 0.3:
            text = text.replace(" ", "", rng.randint(1, 3))
        return Memo(text=text, kind="tphcm_digits", tags=("tphcm_digits",))

    def phone_account_numbers(self, person: Person) -> Memo:
        rng = self.rng
        d = self._digits
        sender = strip_diacritics(person.guardian).upper()
        text = rng.choice([
            f"SDT 09{d(8)} nop tien hoc",
            f"{sender} 0{rng.choice('35789')}{d(8)} chuyen tien",
            f"Chuyen tien tu TK {d(10)} {sender}",
            f"CCCD 0{d(11)} nop vien phi",
            f"REM Tfr Ac: {d(10)} {sender} Trace {d(6)}",
            f"TK {d(13)} tai Napas {d(6)}",
            f"MBVCB.{d(10)}.{d(6)}.{sender} chuyen tien.CT tu {d(13)} toi {d(10)}",
            f"BHYT HS40{d(11)} nop tien the",
        ])
        return Memo(text=text, kind="phone_account_numbers", tags=("phone_account_numbers",))

    def stress(self, kind: str, ref: str, person: Person) -> Memo:
        rng = self.rng
        if kind == "stress_double_split":
            a, b = sorted(rng.sample(range(1, len(ref)), 2))
            typed = f"{ref[:a]} {ref[a:b]} {ref[b:]}"
        elif kind == "stress_grouped_typing":
            typed = f"{ref[:2]} {ref[2:5]} {ref[5:8]} {ref[8:]}"
        else:
            raise ValueError(kind)
        tags = [kind]
        return Memo(text=self._assemble(typed, person, tags, text_prob=P["payer_text_vi"]), kind=kind,
                    tags=tuple(tags), ref=ref)

    def decoy_kind(self) -> str:
        return self.rng.choices(list(DECOY_KINDS), list(DECOY_KINDS.values()))[0]


def _squeeze(text: str) -> str:
    """Letters and digits only, upper case, O/I/L read as 0/1: a superset of what a matcher reads."""
    plain = strip_diacritics(unicodedata.normalize("NFKC", text)).upper()
    return "".join(ch for ch in plain if ch.isascii() and ch.isalnum()).translate(
        str.maketrans({"O": "0", "I": "1", "L": "1"}))
