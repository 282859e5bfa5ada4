"""The labelled corpus for `benchmarks/redaction.py`.

Base text: real, public, human-written short texts, the fortune cookies that
Debian ships as data files (`/usr/share/games/fortunes`), in English, German,
Spanish, Italian, Polish and Brazilian Portuguese:

    apt-get install -y fortunes fortunes-de fortunes-es fortunes-it fortunes-pl fortunes-br

Nothing is downloaded at run time. The offensive sections (`off/`) are not
read. Each cookie is one text; overstrike sequences (`x\\b`) are removed,
exact duplicates dropped, texts over 600 characters and ASCII art skipped.

Into a seeded sample of them, real-world formats are injected at word
boundaries, inside realistic phrasings ("call me on ...", "IBAN: ..."), and
every injected value is labelled with its exact offsets:

- positives (must be redacted): email, phone, iban, card, in many written
  forms (see the generators below);
- look-alikes (must NOT be redacted): dates, times, prices, versions, order
  numbers with leading zeros, parcel tracking numbers, patent numbers, ISBNs,
  IBANs with wrong check digits, 16-digit numbers that fail Luhn, IP
  addresses, `@2x.png` file names, social handles, large counts.

Phone numbers are generated valid with `phonenumbers` (random subscriber
digits, kept only if `is_valid_number`); IBANs get correct mod-97 check
digits; cards pass Luhn and carry a real brand prefix.

Some cookies already contain personal data of their own (an author's address
in a signature, a phone number in a joke): those are labelled too (see
source_labels() at the end); anything else in the real text that a tool flags
is a false positive "in the real text". The numbers that come with an
injected value (a card's expiry, a CVV, a BIC) are labelled look-alikes.
"""

from __future__ import annotations

import os
import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat as PNF
from phonenumbers import PhoneNumberType as PNT

FORTUNE_DIR = Path(os.environ.get("CONSENTRY_FORTUNE_DIR", "/usr/share/games/fortunes"))
APT_PACKAGES = ["fortunes", "fortunes-de", "fortunes-es", "fortunes-it", "fortunes-pl", "fortunes-br"]
INSTALL_HINT = "apt-get install -y " + " ".join(APT_PACKAGES)
POSITIVE_KINDS = ("email", "phone", "iban", "card")
LANG_COUNTRY = {"en": "US", "de": "DE", "es": "ES", "it": "IT", "pl": "PL", "pt": "BR"}
SKIP_FILES = {"ascii-art", "asciiart", "banner", "art.u8"}


class CorpusMissing(RuntimeError):
    pass


@dataclass
class Label:
    kind: str  # a positive kind ("email", ...) or a look-alike kind ("date", "bad_iban", ...)
    start: int
    end: int
    value: str
    positive: bool
    form: str  # how it is written, e.g. "phone/FR/NATIONAL", "iban/nbsp-groups"
    region: str | None = None  # phones: the number's region


@dataclass
class Item:
    text: str
    lang: str
    source: str  # package file, e.g. "de/anekdoten"
    labels: list[Label] = field(default_factory=list)
    phrases: list[list[int]] = field(default_factory=list)  # [start, end) of each inserted phrase
    original: str = ""  # the cookie as shipped, before anything was injected

    @property
    def oracle_country(self) -> str:
        """The region of the first injected phone, else the text language's country."""
        for lb in self.labels:
            if lb.positive and lb.kind == "phone" and lb.region:
                return lb.region
        return LANG_COUNTRY[self.lang]


# --------------------------------------------------------------------------- base text


def _lang_of(rel: Path) -> str:
    if len(rel.parts) > 1:
        return {"de": "de", "es": "es", "it": "it", "pl": "pl"}[rel.parts[0]]
    return "pt" if rel.name == "brasil" else "en"


def load_fortunes(root: Path = FORTUNE_DIR) -> list[tuple[str, str, str]]:
    """(text, lang, source) for every usable cookie, deduplicated, in a stable order."""
    if not root.is_dir():
        raise CorpusMissing(
            f"no fortune data files in {root}. The redaction benchmark's corpus is Debian's fortune "
            f"cookies; install them with:\n    {INSTALL_HINT}"
        )
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "off")
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.endswith(".dat"):
                continue
            real = p.resolve()
            if "off" in real.relative_to(root.resolve()).parts:
                continue
            key = str(real).removesuffix(".u8")
            u8 = Path(key + ".u8")
            src = u8 if u8.exists() and u8.stat().st_size > 0 else Path(key)
            if src.exists() and src.stat().st_size > 0:
                files[key] = src
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []
    langs_found = set()
    for key in sorted(files):
        src = files[key]
        rel = Path(key).relative_to(root.resolve())
        if rel.name in SKIP_FILES:
            continue
        raw = src.read_bytes()
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError:
            data = raw.decode("latin-1")
        lang = _lang_of(rel)
        for entry in re.split(r"\n%\n", data):
            text = re.sub(r".\x08", "", entry).replace("\r", "").strip("\n% ")
            if len(text) < 20 or len(text) > 600 or text in seen:
                continue
            visible = [c for c in text if not c.isspace()]
            if sum(c.isalpha() for c in visible) < 0.6 * len(visible):
                continue  # ASCII art, tables
            seen.add(text)
            langs_found.add(lang)
            out.append((text, lang, str(rel)))
    missing = {"en", "de", "es", "it", "pl", "pt"} - langs_found
    if missing:
        raise CorpusMissing(
            f"fortune files for {sorted(missing)} are missing from {root}; install them with:\n    {INSTALL_HINT}"
        )
    return out


# --------------------------------------------------------------------------- value generators
# Each returns (value, form) or, for phones, (value, form, region).

FIRST = ["john", "mary", "ana", "josé", "jürgen", "françois", "zoë", "søren", "łukasz", "maría", "giulia",
         "priya", "ahmed", "chen", "olga", "björn", "inês", "müller", "renée", "kowalski", "sam", "lee",
         "alex", "emma", "noah", "lucas", "sofia", "marco", "anna", "tom", "kate", "raj", "yuki", "pedro"]
LAST = ["smith", "garcia", "rossi", "müller", "dupont", "nowak", "silva", "jones", "schmidt", "fernández",
        "bianchi", "kumar", "brown", "martin", "kowalczyk", "santos", "o'neil", "van-dijk", "lopez", "weber"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.co.uk", "web.de", "gmx.net", "orange.fr",
           "libero.it", "wp.pl", "uol.com.br", "protonmail.ch", "icloud.com", "exemple.fr", "t-online.de",
           "mail.ru", "yandex.com", "aol.com", "btinternet.com", "free.fr", "telefonica.es", "fastmail.fm",
           "posteo.de", "onet.pl", "terra.com.br", "rediffmail.com", "bigpond.com.au"]
SUBDOMAINS = ["cs.stanford.edu", "mail.acme-corp.co.uk", "students.uni-mainz.de", "eng.example.org",
              "lists.debian.org", "dept.univ-lyon1.fr", "alumni.polimi.it", "mx.company.com.br",
              "research.ibm.com", "inf.ethz.ch"]
NEW_TLDS = ["studio.design", "hello.io", "shop.online", "me.dev", "kowalski.photography", "team.app"]
IDN_DOMAINS = ["bücher.de", "café.fr", "müller.ch"]


def _local(rng: random.Random) -> str:
    f, l = rng.choice(FIRST), rng.choice(LAST).replace("'", "")
    shape = rng.choice(["f.l", "fl", "f_l", "f-l", "f", "fl99", "f.l99", "f1l", "l.f"])
    num = str(rng.randint(1, 2005))
    return {"f.l": f"{f}.{l}", "fl": f + l, "f_l": f"{f}_{l}", "f-l": f"{f}-{l}", "f": f,
            "fl99": f + l + num, "f.l99": f"{f}.{l}{num}", "f1l": f"{f[0]}{l}", "l.f": f"{l}.{f}"}[shape]


def _ascii(s: str) -> str:
    import unicodedata
    s = s.replace("ł", "l").replace("ø", "o").replace("ß", "ss")
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()


def gen_email(rng: random.Random) -> tuple[str, str]:
    r = rng.random()
    local = _local(rng)
    dom = rng.choice(DOMAINS)
    if r < 0.30:
        return f"{_ascii(local)}@{dom}", "email/ascii"
    if r < 0.42:
        return f"{local}@{dom}", "email/non-ascii-local" if local != _ascii(local) else "email/ascii"
    if r < 0.52:
        v = f"{_ascii(local)}@{dom}"
        v = "".join(c.upper() if rng.random() < 0.3 else c for c in v) if rng.random() < 0.5 else \
            v.split("@")[0].title() + "@" + v.split("@")[1].upper()
        return v, "email/mixed-case"
    if r < 0.60:
        return f"{_ascii(local)}@{rng.choice(SUBDOMAINS)}", "email/subdomain"
    if r < 0.68:
        tag = rng.choice(["news", "shop", "spam", "2024", "amazon", "lists"])
        return f"{_ascii(local)}+{tag}@{dom}", "email/plus-tag"
    if r < 0.72:
        return f"{_ascii(local)}@{rng.choice(NEW_TLDS)}", "email/new-tld"
    if r < 0.74:
        return f"{_ascii(local)}@{rng.choice(IDN_DOMAINS)}", "email/idn-domain"
    # obfuscated
    name, d = _ascii(local), dom.split(".")
    style = rng.choice(["at-dot", "brackets", "parens", "caps", "brackets-at-only"])
    if style == "at-dot":
        return f"{name} at {' dot '.join(d)}", "email/obfuscated-at-dot"
    if style == "brackets":
        return f"{name} [at] {' [dot] '.join(d)}", "email/obfuscated-[at]-[dot]"
    if style == "parens":
        return f"{name}(at){'(dot)'.join(d)}", "email/obfuscated-(at)"
    if style == "caps":
        return f"{name} AT {' DOT '.join(d)}", "email/obfuscated-AT-DOT"
    return f"{name}[at]{dom}", "email/obfuscated-[at]"


PHONE_REGIONS = ["US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "ES", "PT", "IT", "PL", "SE",
                 "BR", "MX", "IN", "AU", "ZA"]
LANG_PHONE_REGIONS = {"en": ["US", "US", "US", "GB", "GB", "IN", "CA", "AU", "IE"], "de": ["DE", "DE", "AT", "CH"],
                      "es": ["ES", "ES", "MX"], "it": ["IT"], "pl": ["PL"], "pt": ["BR", "BR", "PT"]}
US_AREAS = ["617", "212", "646", "718", "415", "312", "202", "305", "512", "914", "713", "206", "404", "503",
            "702", "617", "978", "857", "303", "619"]


def _valid_number(rng: random.Random, region: str) -> tuple[phonenumbers.PhoneNumber, str]:
    types = [PNT.MOBILE, PNT.MOBILE, PNT.FIXED_LINE, PNT.FIXED_LINE, PNT.TOLL_FREE]
    for _ in range(200):
        t = rng.choice(types)
        ex = phonenumbers.example_number_for_type(region, t)
        if ex is None:
            continue
        nsn = str(ex.national_number)
        if region in ("US", "CA") and t != PNT.TOLL_FREE:
            nsn = (rng.choice(US_AREAS) if region == "US" else rng.choice(["416", "604", "514", "613", "403"])) \
                + str(rng.randint(2, 9)) + "".join(rng.choices(string.digits, k=6))
        else:
            k = min(len(nsn) - 2, rng.randint(4, 7))
            nsn = nsn[:-k] + "".join(rng.choices(string.digits, k=k))
        n = phonenumbers.PhoneNumber(country_code=ex.country_code, national_number=int(nsn))
        if ex.italian_leading_zero:
            n.italian_leading_zero = True
        if phonenumbers.is_valid_number(n) and phonenumbers.region_code_for_number(n) == region:
            return n, {PNT.MOBILE: "mobile", PNT.FIXED_LINE: "fixed", PNT.TOLL_FREE: "tollfree"}[t]
    raise RuntimeError(f"no valid number for {region}")


def gen_phone(rng: random.Random, region: str) -> tuple[str, str, str]:
    n, t = _valid_number(rng, region)
    nat = phonenumbers.format_number(n, PNF.NATIONAL)
    intl = phonenumbers.format_number(n, PNF.INTERNATIONAL)
    e164 = phonenumbers.format_number(n, PNF.E164)
    cc = str(n.country_code)
    nat_digits = re.sub(r"\D", "", nat)
    forms: list[tuple[str, str]] = [
        (nat, "NATIONAL"), (nat, "NATIONAL"), (intl, "INTERNATIONAL"), (intl, "INTERNATIONAL"), (e164, "E164"),
        ("00" + intl[1:], "00-INTERNATIONAL"),
        (re.sub(r"[ \-]", ".", nat.replace("(", "").replace(")", "")), "NATIONAL-dots"),
        (re.sub(r"[ ]", "-", nat.replace("(", "").replace(") ", "-").replace(")", "")), "NATIONAL-dashes"),
        (nat_digits, "NATIONAL-compact"),
        (re.sub(r"[ \-]", "-", intl), "INTERNATIONAL-dashes"),
    ]
    if region in ("US", "CA"):
        a, b, c = nat_digits[:3], nat_digits[3:6], nat_digits[6:]
        forms += [(f"{a}-{b}-{c}", "US-dashes"), (f"({a}) {b}-{c}", "US-parens"), (f"{a}{b}{c}", "US-10digits"),
                  (f"{a}.{b}.{c}", "US-dots"), (f"1-{a}-{b}-{c}", "US-1-dashes"), (f"+1 ({a}) {b}-{c}", "US-+1-parens"),
                  (f"+1 {a} {b} {c}", "US-+1-spaces"), (f"{a} {b} {c}", "US-spaces")] * 2
    elif region in ("GB", "DE", "AT", "CH", "FR", "BE", "NL", "IE", "AU", "ZA") and nat.startswith("0"):
        forms += [(f"+{cc} (0){nat[1:]}", "+CC-(0)-NATIONAL")]
    if region == "IN" and t == "mobile":
        d = nat_digits.lstrip("0")
        forms += [(f"{d[:5]} {d[5:]}", "IN-mobile-5-5"), (f"+91 {d[:5]} {d[5:]}", "IN-+91-5-5"),
                  (f"+91-{d}", "IN-+91-dash"), (d, "IN-10digits"), (f"0{d}", "IN-0-10digits")] * 2
    if region == "IT" and t == "mobile":
        d = nat_digits
        forms += [(f"{d[:3]} {d[3:6]} {d[6:]}", "IT-mobile-3-3-4"), (f"{d[:3]}-{d[3:]}", "IT-mobile-dash"),
                  (f"{d[:3]}/{d[3:]}", "IT-mobile-slash")] * 2
    if region == "FR":
        d = nat_digits
        forms += [(" ".join(d[i:i + 2] for i in range(0, 10, 2)), "FR-pairs"),
                  (".".join(d[i:i + 2] for i in range(0, 10, 2)), "FR-pairs-dots")] * 2
    if region == "DE" and nat.startswith("0"):
        area, rest = nat.split(" ", 1) if " " in nat else (nat[:4], nat[4:])
        forms += [(f"{area}/{rest.replace(' ', '')}", "DE-slash"), (f"({area}) {rest}", "DE-parens-area"),
                  (f"{area}-{rest.replace(' ', '')}", "DE-dash")]
    if region == "NL" and t == "mobile":
        d = nat_digits
        forms += [(f"06-{d[2:]}", "NL-06-dash"), (f"06 {d[2:4]} {d[4:6]} {d[6:8]} {d[8:]}", "NL-06-pairs")]
    if region == "ES":
        d = nat_digits
        forms += [(f"{d[:3]} {d[3:6]} {d[6:]}", "ES-3-3-3"), (f"+34 {d[:3]} {d[3:6]} {d[6:]}", "ES-+34-3-3-3")]
    if region == "PL":
        d = nat_digits
        forms += [(f"{d[:3]}-{d[3:6]}-{d[6:]}", "PL-3-3-3-dash"), (f"+48 {d[:3]}-{d[3:6]}-{d[6:]}", "PL-+48-dash")]
    if region == "BR":
        forms += [(nat.replace("(", "").replace(")", ""), "BR-no-parens"), ("+55 " + nat.replace("(", "").replace(")", ""), "BR-+55")]
    if region == "GB" and t == "mobile":
        d = nat_digits
        forms += [(f"{d[:5]} {d[5:8]} {d[8:]}", "GB-mobile-5-3-3"), (f"+44 {d[1:5]} {d[5:]}", "GB-+44-4-6")]
    v, form = rng.choice(forms)
    return v, f"phone/{region}/{t}/{form}", region


def _luhn_ok(d: str) -> bool:
    s = 0
    for i, ch in enumerate(reversed(d)):
        x = int(ch)
        if i % 2 == 1:
            x = x * 2 - 9 if x > 4 else x * 2
        s += x
    return s % 10 == 0


def _luhn_complete(prefix_and_body: str) -> str:
    for c in string.digits:
        if _luhn_ok(prefix_and_body + c):
            return prefix_and_body + c
    raise AssertionError


CARD_BRANDS = [  # brand, prefixes, length, weight
    ("visa", ["4"], 16, 30), ("visa13", ["4"], 13, 1), ("mastercard", ["51", "52", "53", "54", "55", "2221", "2720", "23", "25"], 16, 22),
    ("amex", ["34", "37"], 15, 12), ("discover", ["6011", "644", "65"], 16, 8), ("diners", ["36", "300", "305"], 14, 4),
    ("jcb", ["3528", "3530", "3566", "3589"], 16, 5), ("unionpay", ["62"], 16, 4), ("unionpay19", ["62"], 19, 2),
    ("maestro", ["6759", "5018", "6304"], 19, 2),
]
TEST_CARDS = ["4111111111111111", "4242424242424242", "5555555555554444", "378282246310005", "6011111111111117",
              "4012888888881881", "5105105105105100", "371449635398431"]


def _card_number(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.08:
        d = rng.choice(TEST_CARDS)
        return d, "test-number"
    brand, prefixes, length, _ = rng.choices(CARD_BRANDS, weights=[b[3] for b in CARD_BRANDS])[0]
    p = rng.choice(prefixes)
    body = p + "".join(rng.choices(string.digits, k=length - len(p) - 1))
    return _luhn_complete(body), brand


def _group(d: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for s in sizes:
        out.append(d[i:i + s])
        i += s
    if i < len(d):
        out.append(d[i:])
    return sep.join(x for x in out if x)


def _card_groupings(d: str) -> list[list[int]]:
    if len(d) == 15:
        return [[4, 6, 5]]
    if len(d) == 14:
        return [[4, 6, 4]]
    if len(d) == 19:
        return [[4, 4, 4, 4, 3], [6, 13]]
    if len(d) == 13:
        return [[4, 3, 3, 3], [4, 4, 5]]
    return [[4, 4, 4, 4]]


def gen_card(rng: random.Random) -> tuple[str, str]:
    d, brand = _card_number(rng)
    sizes = rng.choice(_card_groupings(d))
    style = rng.choices(["spaces", "dashes", "compact", "nbsp"], weights=[50, 20, 25, 5])[0]
    sep = {"spaces": " ", "dashes": "-", "compact": "", "nbsp": "\u00a0"}[style]
    return _group(d, sizes, sep), f"card/{brand}/{style}"


IBAN_BBAN = {  # country: BBAN structure (n digits, a upper letters, c alphanumeric), from the IBAN registry
    "DE": "18n", "GB": "4a14n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c", "NL": "4a10n", "BE": "12n",
    "AT": "16n", "CH": "5n12c", "PL": "24n", "PT": "21n", "IE": "4a14n", "SE": "20n", "DK": "14n", "NO": "11n",
    "FI": "14n", "LU": "3n13c", "BR": "23n1a1c", "GR": "7n16c", "CZ": "20n", "RO": "4a16c", "HU": "24n",
    "TR": "6n16c", "AE": "19n", "SA": "2n18c", "MT": "4a5n18c", "HR": "17n", "SK": "20n", "SI": "15n",
}
BANK_CODES = {"GB": ["NWBK", "BARC", "LOYD", "HBUK", "MIDL"], "NL": ["ABNA", "INGB", "RABO", "TRIO", "KNAB"],
              "IE": ["AIBK", "BOFI"], "RO": ["RNCB", "BTRL", "INGB"], "MT": ["MALT", "VALL"]}
BICS = ["COBADEFFXXX", "DEUTDEFF", "BNPAFRPP", "NWBKGB2L", "INGBNL2A", "BSCHESMM", "UNCRITMM", "PKOPPLPW"]


def _iban_check(country: str, bban: str) -> str:
    s = bban + country + "00"
    num = "".join(str(int(ch, 36)) for ch in s)
    return f"{98 - int(num) % 97:02d}"


def _bban(rng: random.Random, country: str) -> str:
    out = ""
    for count, kind in re.findall(r"(\d+)([nac])", IBAN_BBAN[country]):
        count = int(count)
        if kind == "a" and country in BANK_CODES and count == 4 and not out:
            out += rng.choice(BANK_CODES[country])
            continue
        for _ in range(count):
            if kind == "n" or (kind == "c" and rng.random() < 0.85):
                out += rng.choice(string.digits)
            else:
                out += rng.choice(string.ascii_uppercase)
    return out


def iban_compact(rng: random.Random, country: str | None = None, *, valid: bool = True) -> str:
    country = country or rng.choice(list(IBAN_BBAN))
    bban = _bban(rng, country)
    check = _iban_check(country, bban)
    if not valid:
        bad = f"{(int(check) + rng.randint(1, 96)) % 97 + 2:02d}"
        check = bad if bad != check else f"{(int(check) + 1) % 97 + 2:02d}"
    return country + check + bban


def _iban_forms(rng: random.Random, compact: str) -> tuple[str, str]:
    style = rng.choices(["groups", "compact", "lower-groups", "lower-compact", "nbsp-groups", "nnbsp-groups", "dash-groups"],
                        weights=[45, 20, 6, 6, 10, 8, 5])[0]
    grouped = lambda sep: sep.join(compact[i:i + 4] for i in range(0, len(compact), 4))
    v = {"groups": grouped(" "), "compact": compact, "lower-groups": grouped(" ").lower(), "lower-compact": compact.lower(),
         "nbsp-groups": grouped("\u00a0"), "nnbsp-groups": grouped("\u202f"), "dash-groups": grouped("-")}[style]
    return v, style


def gen_iban(rng: random.Random) -> tuple[str, str]:
    weights = {c: 1 for c in IBAN_BBAN} | {"DE": 8, "GB": 6, "FR": 6, "ES": 5, "IT": 5, "NL": 5, "BE": 3, "PL": 3, "BR": 2}
    country = rng.choices(list(weights), weights=list(weights.values()))[0]
    compact = iban_compact(rng, country)
    v, style = _iban_forms(rng, compact)
    return v, f"iban/{country}/{style}"


# --------------------------------------------------------------------------- look-alikes


def _isbn13(rng: random.Random) -> str:
    body = rng.choice(["978", "979"]) + "".join(rng.choices(string.digits, k=9))
    s = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body))
    return body + str((10 - s % 10) % 10)


def _isbn10(rng: random.Random) -> str:
    body = "".join(rng.choices(string.digits, k=9))
    s = sum(int(c) * (10 - i) for i, c in enumerate(body))
    check = (11 - s % 11) % 11
    return body + ("X" if check == 10 else str(check))


def gen_negative(rng: random.Random) -> tuple[str, str, str]:
    """(value, kind, form) of something that must not be redacted."""
    kind = rng.choices(
        ["date", "time", "price", "version", "order", "tracking", "patent", "isbn", "bad_iban", "non_luhn", "ip",
         "file@2x", "handle", "count", "coords", "timestamp"],
        weights=[12, 5, 10, 8, 8, 8, 7, 7, 8, 8, 4, 3, 3, 5, 2, 2])[0]
    y, m, d = rng.randint(1950, 2030), rng.randint(1, 12), rng.randint(1, 28)
    if kind == "date":
        v, f = rng.choice([(f"{m:02d}.{d:02d}.{y}", "mm.dd.yyyy"), (f"{y}-{m:02d}-{d:02d}", "iso"), (f"{d:02d}/{m:02d}/{y}", "dd/mm/yyyy"),
                           (f"{d:02d}.{m:02d}.{y}", "dd.mm.yyyy"), (f"{m}/{d}/{y % 100:02d}", "m/d/yy"), (f"{y}/{m:02d}/{d:02d}", "yyyy/mm/dd"),
                           (f"{y}{m:02d}{d:02d}", "yyyymmdd"), (f"{y}-{m:02d}-{d:02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00", "iso-datetime"),
                           (f"{d:02d}-{m:02d}-{y}", "dd-mm-yyyy"), (f"{y - rng.randint(1, 30)}-{y}", "year-range")])
    elif kind == "time":
        v, f = rng.choice([(f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", "hh:mm"), (f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} pm", "h:mm pm"),
                           (f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}", "hh:mm:ss"),
                           (f"{rng.randint(0, 23)}.{rng.randint(0, 59):02d} Uhr", "h.mm Uhr")])
    elif kind == "price":
        a = rng.randint(1, 99999)
        c = rng.randint(0, 99)
        v, f = rng.choice([(f"${a:,}.{c:02d}", "$1,234.56"), (f"{a:,}.{c:02d} €".replace(",", "X").replace(".", ",").replace("X", "."), "1.234,56 €"),
                           (f"EUR {a:,}".replace(",", " "), "EUR 12 500"), (f"R$ {a:,},{c:02d}".replace(",", ".", a >= 1000), "R$ 1.299,90"),
                           (f"£{a:,}.{c:02d}", "£2,499.99"), (f"{a:,},{c:02d} zł".replace(",", " ", 1) if a >= 1000 else f"{a},{c:02d} zł", "zł"),
                           (f"USD {rng.randint(1, 9)},{rng.randint(0, 999):03d},{rng.randint(0, 999):03d}", "USD millions")])
    elif kind == "version":
        v, f = rng.choice([(f"10.0.{rng.randint(10000, 22999)}.{rng.randint(1, 3000)}", "windows-build"),
                           (f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}", "semver"),
                           (f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}", "v-semver"),
                           (f"1.2.840.{rng.randint(10000, 999999)}.1.{rng.randint(1, 20)}", "OID"),
                           (f"{rng.randint(5, 6)}.{rng.randint(0, 19)}.{rng.randint(0, 200)}-{rng.randint(1, 40)}-amd64", "kernel")])
    elif kind == "order":
        n = rng.randint(1, 99_999_999)
        v, f = rng.choice([(f"#{n:012d}", "#000123456789"), (f"{n:010d}", "0000458812"), (f"{n:08d}", "00012345"),
                           (f"{rng.randint(100, 999)}-{rng.randint(1000000, 9999999)}-{rng.randint(1000000, 9999999)}", "amazon-order"),
                           (f"INV-{y}-{n % 100000:05d}", "INV-2015-00042")])
    elif kind == "tracking":
        v, f = rng.choice([
            ("1Z" + "".join(rng.choices(string.digits + string.ascii_uppercase[:6], k=6)) + "".join(rng.choices(string.digits, k=10)), "UPS"),
            (" ".join(x for x in re.findall(r".{1,4}", "9400" + "".join(rng.choices(string.digits, k=18)))), "USPS-22-grouped"),
            ("9205" + "".join(rng.choices(string.digits, k=18)), "USPS-22"),
            ("7" + "".join(rng.choices(string.digits, k=11)), "FedEx-12"),
            ("".join(rng.choices(string.digits, k=4)) + " " + "".join(rng.choices(string.digits, k=4)) + " " + "".join(rng.choices(string.digits, k=4)), "FedEx-12-grouped"),
            ("RR" + "".join(rng.choices(string.digits, k=9)) + rng.choice(["DE", "PL", "FR", "CN", "IT"]), "UPU-S10"),
            ("JJD" + "".join(rng.choices(string.digits, k=18)), "DHL-JJD"),
        ])
    elif kind == "patent":
        n = rng.randint(4_000_000, 11_999_999)
        v, f = rng.choice([(f"US {n:,}", "US 7,654,321"), (f"US {n:,} B2", "US 7,654,321 B2"), (f"EP{rng.randint(1000000, 3999999)}", "EP1234567"),
                           (f"EP {rng.randint(1, 3)} {rng.randint(100, 999)} {rng.randint(100, 999)} A1", "EP 1 234 567 A1"),
                           (f"US {y}/{rng.randint(0, 999999):07d} A1", "US 2015/0123456 A1"), (f"WO {y}/{rng.randint(0, 999999):06d}", "WO 2019/123456"),
                           (f"DE 10 {y} {rng.randint(0, 999):03d} {rng.randint(0, 999):03d} A1", "DE 10 2015 012 345 A1")])
    elif kind == "isbn":
        i13, i10 = _isbn13(rng), _isbn10(rng)
        v, f = rng.choice([(f"{i13[:3]}-{i13[3]}-{i13[4:6]}-{i13[6:12]}-{i13[12]}", "isbn13-dashes"), (i13, "isbn13"),
                           (f"{i10[0]}-{i10[1:4]}-{i10[4:9]}-{i10[9]}", "isbn10-dashes"), (i10, "isbn10")])
    elif kind == "bad_iban":
        v, f = _iban_forms(rng, iban_compact(rng, valid=False))
    elif kind == "non_luhn":
        while True:
            d, brand = _card_number(rng)
            d = d[:-1] + str((int(d[-1]) + rng.randint(1, 9)) % 10)
            if not _luhn_ok(d):
                break
        style = rng.choice(["spaces", "compact", "dashes"])
        v, f = _group(d, _card_groupings(d)[0], {"spaces": " ", "compact": "", "dashes": "-"}[style]), f"{brand}-{style}"
    elif kind == "ip":
        v, f = rng.choice([(f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "ipv4-private"),
                           (f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "ipv4")])
    elif kind == "file@2x":
        v, f = f"{rng.choice(['icon', 'logo', 'avatar', 'banner', 'btn_close'])}@{rng.choice(['2x', '3x'])}.{rng.choice(['png', 'jpg', 'webp'])}", "retina-asset"
    elif kind == "handle":
        v, f = f"@{_ascii(rng.choice(FIRST))}_{rng.randint(1, 99)}", "social-handle"
    elif kind == "count":
        v, f = rng.choice([(f"{rng.randint(1, 999)},{rng.randint(0, 999):03d},{rng.randint(0, 999):03d}", "1,234,567"),
                           (f"{rng.randint(1, 999)}.{rng.randint(0, 999):03d}.{rng.randint(0, 999):03d}", "1.234.567"),
                           (f"{rng.randint(1, 999)} {rng.randint(0, 999):03d} {rng.randint(0, 999):03d}", "1 234 567"),
                           (str(rng.randint(1_000_000, 9_999_999)), "7-digit-count")])
    elif kind == "timestamp":
        v, f = str(rng.randint(946_684_800, 1_900_000_000)), "unix-seconds"
    else:  # coords
        v, f = f"{rng.uniform(-80, 80):.4f}, {rng.uniform(-170, 170):.4f}", "lat,lon"
    return v, kind, f"{kind}/{f}"


# --------------------------------------------------------------------------- phrasings

POS_TEMPLATES = {
    "email": {
        "en": ["email me at {}", "write to {}", "contact: {}", "my email is {}.", "reach me at {} anytime", "({})",
               "send it to <{}>", "mailto:{}", "mail {} for details", "ping {},", "address {} -"],
        "de": ["schreib mir an {}", "E-Mail: {}", "Kontakt: {}.", "meine Adresse ist {}"],
        "es": ["escríbeme a {}", "correo: {}", "mi email es {}."], "it": ["scrivimi a {}", "email: {}", "contatto {}."],
        "pl": ["pisz na {}", "mail: {}", "kontakt: {}."], "pt": ["me manda um email: {}", "e-mail {}", "contato: {}."],
    },
    "phone": {
        "en": ["call me on {}", "call me at {}.", "my number is {}", "text me {}!", "phone: {}", "tel. {}", "ph {},", "WhatsApp {}",
               "ring {} after 6", "({})", "cell: {}", "mobile {} -", "reach us on {}."],
        "de": ["ruf mich an: {}", "Tel.: {}", "Handy {}", "meine Nummer ist {}."], "es": ["llámame al {}", "tel: {}", "mi móvil es {}."],
        "it": ["chiamami al {}", "cell. {}", "il mio numero è {}."], "pl": ["zadzwoń pod {}", "tel. {}", "mój numer to {}."],
        "pt": ["me liga no {}", "tel: {}", "meu celular é {}."],
    },
    "iban": {
        "en": ["IBAN: {}", "pay to IBAN {}", "account {}", "transfer to {}.", "IBAN {}, BIC {bic}", "IBAN {} BIC {bic}", "bank details: {}"],
        "de": ["IBAN: {}", "Kontonummer {}", "bitte überweisen an {}."], "es": ["IBAN: {}", "cuenta {}", "transferir a {}."],
        "it": ["IBAN: {}", "conto {}", "bonifico su {}."], "pl": ["IBAN: {}", "numer konta {}", "przelew na {}."],
        "pt": ["IBAN: {}", "conta {}", "transferência para {}."],
    },
    "card": {
        "en": ["my card {}", "card no. {}", "cc: {}", "card {} exp {exp}", "{} {exp}", "{} {exp} cvv {cvv}", "visa {}", "paid with {}.",
               "order {ref}: card {} qty 2", "card {} (ref {ref})", "2x {}", "charged to {} on {exp}"],
        "de": ["meine Karte {}", "Kreditkarte: {}", "Karte {} gültig bis {exp}"], "es": ["mi tarjeta {}", "tarjeta: {} cad. {exp}"],
        "it": ["la mia carta {}", "carta: {} scad. {exp}"], "pl": ["moja karta {}", "karta: {} ważna do {exp}"],
        "pt": ["meu cartão {}", "cartão: {} val. {exp}"],
    },
}
NEG_TEMPLATES = {
    "date": ["on {}", "since {}", "dated {}", "({})", "{}:"], "time": ["at {}", "from {}", "{} -"],
    "price": ["for {}", "costs {}", "paid {}", "only {}!"], "version": ["version {}", "build {}", "upgraded to {}", "(v. {})"],
    "order": ["order {}", "ref. {}", "invoice {}", "ticket {}"], "tracking": ["tracking: {}", "parcel {}", "tracking number {}"],
    "patent": ["see patent {}", "patent {}", "cf. {}"], "isbn": ["ISBN {}", "ISBN: {}", "(ISBN {})"],
    "bad_iban": ["IBAN: {}", "account {}", "IBAN {}"], "non_luhn": ["serial {}", "card {}", "ref {}", "voucher {}"],
    "ip": ["server {}", "IP {}", "ping {}"], "file@2x": ["see {}", "uploaded {}", "file {}"], "handle": ["follow {}", "cc {}", "h/t {}"],
    "count": ["about {} people", "{} views", "population {}"], "coords": ["at {}", "GPS {}"],
    "timestamp": ["time() = {}", "mtime {}", "ts={}"],
}


EXTRA_KIND = {"exp": "expiry", "cvv": "cvv", "ref": "order", "bic": "bic"}


def _fill(rng: random.Random, template: str, value: str) -> tuple[str, int, list[tuple[int, str, str]]]:
    """The phrase with the value in it, the value's offset in the phrase, and
    the phrase's other numbers (expiry, CVV, reference, BIC) as (offset,
    value, look-alike kind): they must not be redacted as phones."""
    exp = f"{rng.randint(1, 12):02d}/{rng.randint(24, 31)}" if rng.random() < 0.8 else f"{rng.randint(1, 12):02d}/20{rng.randint(24, 31)}"
    extras = {"exp": exp, "cvv": f"{rng.randint(0, 999):03d}", "ref": str(rng.randint(1000, 99999)), "bic": rng.choice(BICS)}
    pre, post = template.split("{}", 1)
    phrase, found = "", []
    for part in re.split(r"(\{\w+\})", pre) + [None] + re.split(r"(\{\w+\})", post):
        if part is None:
            off = len(phrase)
            phrase += value
        elif part.startswith("{") and part.endswith("}"):
            v = extras[part[1:-1]]
            found.append((len(phrase), v, EXTRA_KIND[part[1:-1]]))
            phrase += v
        else:
            phrase += part
    return phrase, off, found


def _insert(item: Item, phrase: str, offset_in_phrase: int, value: str, rng: random.Random) -> int:
    """Insert the phrase at a word boundary outside the existing labels; returns the value's start."""
    text = item.text
    cands = [0, len(text)] + [m.start() for m in re.finditer(r"\s", text)]
    cands = [c for c in cands if not any(a - 1 <= c <= b for a, b in item.phrases)
             and not any(lb.start - 1 <= c <= lb.end for lb in item.labels)]
    pos = rng.choice(cands) if cands else len(text)  # (a text that is all labels: append, after a space)
    left = "" if pos == 0 else " "
    right = "" if pos == len(text) else " "
    ins = left + phrase + right
    if pos < len(text) and text[pos].isspace():  # replace one whitespace char: keep a single space either side
        ins = left + phrase
        right_text = text[pos:]
    else:
        right_text = text[pos:]
    new = text[:pos] + ins + right_text
    shift = len(new) - len(text)
    for lb in item.labels:
        if lb.start >= pos:
            lb.start += shift
            lb.end += shift
    for ph in item.phrases:
        if ph[0] >= pos:
            ph[0] += shift
            ph[1] += shift
    item.text = new
    item.phrases.append([pos + len(left), pos + len(left) + len(phrase)])
    start = pos + len(left) + offset_in_phrase
    assert new[start:start + len(value)] == value
    return start


# --------------------------------------------------------------------------- building


def build_corpus(n: int = 20_000, seed: int = 12, root: Path = FORTUNE_DIR) -> list[Item]:
    base = load_fortunes(root)
    rng = random.Random(seed)
    picks = rng.sample(range(len(base)), min(n, len(base)))
    items: list[Item] = []
    for idx in picks:
        text, lang, source = base[idx]
        item = Item(text=text, lang=lang, source=source, original=text)
        item.labels.extend(source_labels(text))
        r = rng.random()
        n_pos = 0 if r < 0.35 else (1 if r < 0.85 else 2)
        n_neg = 1 if rng.random() < 0.35 else 0
        kinds = rng.choices(POSITIVE_KINDS, weights=[25, 40, 17, 18], k=n_pos)
        jobs = [("pos", k) for k in kinds] + [("neg", None)] * n_neg
        rng.shuffle(jobs)
        for what, kind in jobs:
            if what == "pos":
                region = None
                if kind == "email":
                    value, form = gen_email(rng)
                elif kind == "phone":
                    region = rng.choice(LANG_PHONE_REGIONS[lang]) if rng.random() < 0.6 else rng.choice(PHONE_REGIONS)
                    value, form, region = gen_phone(rng, region)
                elif kind == "iban":
                    value, form = gen_iban(rng)
                else:
                    value, form = gen_card(rng)
                tpl_lang = lang if rng.random() < 0.6 else "en"
                tpl = rng.choice(POS_TEMPLATES[kind][tpl_lang])
                if kind == "card" and "{exp}" in tpl:
                    form += "+expiry"
                positive = True
            else:
                value, kind, form = gen_negative(rng)
                tpl = rng.choice(NEG_TEMPLATES[kind])
                positive, region = False, None
            phrase, off, extras = _fill(rng, tpl, value)
            start = _insert(item, phrase, off, value, rng)
            item.labels.append(Label(kind, start, start + len(value), value, positive, form, region))
            for x_off, x_val, x_kind in extras:
                a = start - off + x_off
                item.labels.append(Label(x_kind, a, a + len(x_val), x_val, False, f"{x_kind}/in-phrase"))
        for lb in item.labels:
            assert item.text[lb.start:lb.end] == lb.value, (item.text, lb)
        items.append(item)
    return items


# ----------------------------------------------------------------------------- personal data already in the cookies
#
# Email addresses: every addr-spec in the real text (signatures, "From:"
# lines, IRC hostmasks user@host.domain) is a labelled email, found with the
# regex below. Usenet Message-IDs (`<199801141725.JAA07555@wall.org>`,
# `<1991Nov13.194420.28091@netlabs.com>`, `<11393@jpl-devvax.JPL.NASA.GOV>`)
# and IRC hostmasks on a bare IP (`~user@217.89.81.34`) are "neutral":
# neither to be found nor a false positive if flagged.
#
# Phone numbers: the ones below were found by reading every digit run of 7+
# digits in all the cookies (years, IPs, counts and dates are not phones).
SOURCE_EMAIL_RX = re.compile(r"[\w.+%'~-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
SOURCE_HOSTMASK_IP_RX = re.compile(r"[\w.+~-]+@\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
SOURCE_PHONES = ["(713) 438-5018", "02/68.35.20", "962-7873", "555-0129", "+48.126241919", "908-949-0705",
                 "(511) 338-0959", "444-44-44", "222-22-22"]


def _is_message_id(local: str) -> bool:
    return bool(local.isdigit() or re.match(r"\d{6,}\.", local) or re.match(r"\d{4}[A-Z][a-z]{2}\d", local))


def source_labels(text: str) -> list[Label]:
    out = []
    for m in SOURCE_EMAIL_RX.finditer(text):
        v = m.group().lstrip("~+-'.")
        a = m.end() - len(v)
        if _is_message_id(v.split("@")[0]):
            out.append(Label("neutral", a, m.end(), v, False, "neutral/message-id"))
        else:
            out.append(Label("email", a, m.end(), v, True, "email/in-source-text"))
    for m in SOURCE_HOSTMASK_IP_RX.finditer(text):
        out.append(Label("neutral", m.start(), m.end(), m.group(), False, "neutral/hostmask-ip"))
    for p in SOURCE_PHONES:
        for m in re.finditer(re.escape(p), text):
            out.append(Label("phone", m.start(), m.end(), p, True, "phone/in-source-text"))
    return out
