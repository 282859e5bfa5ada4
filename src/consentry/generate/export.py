"""Synthetic platform export (CONTRACT §1) plus a ledger file (CONTRACT §2).

The data is built to exercise every decision rule of CONTRACT §3 around the
reference cut-off 2024-06-26T00:00:00Z: minors, people who turn 18 just before
or after it, unknown ages, deleted accounts and items, objections (withdrawn,
rejected, at exactly the cut-off, or tied with their withdrawal), late notices,
consents, erasure requests, tags of such people, and texts with personal data.

Scale is the point: users are produced in chunks with numpy and pyarrow.compute
only (no per-user or per-item Python), each chunk is appended to open Parquet
writers and dropped, so a million users costs one chunk of memory. Each chunk
has its own Generator seeded from (seed, chunk index), which makes the output
byte-identical for the same (seed, users, chunk_users).
"""

from __future__ import annotations

import os
import shutil

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import texts as tx
from .media import write_jpeg

# --------------------------------------------------------------------------- time anchors


def _sec(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp())


def _day(iso: str) -> int:
    return (date.fromisoformat(iso) - date(1970, 1, 1)).days


CUTOFF = _sec("2024-06-26T00:00:00")  # Meta's 2024 date: the reference T
NOTICE_EDGE = _sec("2024-05-27T00:00:00")  # T minus 30 days: the last instant a notice counts
WAVE_START = _sec("2024-05-22T00:00:00")
LATE_START, LATE_END = _sec("2024-06-05T00:00:00"), _sec("2024-06-20T23:59:59")
OBJECT_END = _sec("2024-08-15T23:59:59")
SIGNUP_START = _sec("2008-01-01T00:00:00")
CONTENT_START = _sec("2010-01-01T00:00:00")
DATA_END = _sec("2024-09-30T23:59:59")  # when the export was taken
DELETE_END = _sec("2024-12-31T23:59:59")
DAY = 86_400
TURN18_DAY = _day("2006-06-26")  # born that day => exactly 18 at the cut-off
TURN13_DAY = _day("2011-06-26")
OLDEST_DAY = _day("1939-06-27")  # 85 at the cut-off
YEAR13 = int(13 * 365.2425 * DAY)

# --------------------------------------------------------------------------- vocabularies

USER_WIDTH, ITEM_WIDTH, EVENT_WIDTH = 7, 9, 9
KINDS = ("post", "photo", "caption", "comment", "story", "private_message", "video", "reel")
POST, PHOTO, CAPTION, COMMENT, STORY, PM, VIDEO, REEL = range(len(KINDS))
# Captions and comments that find no parent become posts, so they start a bit high.
KIND_P = np.array([0.29, 0.20, 0.085, 0.225, 0.08, 0.10, 0.015, 0.005])
VISIBILITIES = ("public", "friends", "private")
# Private messages (10%) are always private; the rest is drawn so that the
# overall shares land near 55 / 30 / 15.
VIS_P = np.array([0.611, 0.333, 0.056])

EVENT_TYPES = (
    "notified", "consent_given", "consent_withdrawn", "objected",
    "objection_withdrawn", "objection_rejected", "erasure_requested",
    "third_party_objected", "third_party_dismissed",
)
NOTIFIED, CONSENT, CONSENT_WD, OBJECTED, OBJ_WD, OBJ_REJ, ERASURE, TP_OBJECTED, TP_DISMISSED = range(len(EVENT_TYPES))
DISMISSAL_NOTES = (
    "The requester is not in this photo (compared with the photo they sent).",
    "The person shown is the account holder, not the requester.",
    "Only a poster is visible in the photo; no person can be recognised.",
)
CHANNELS = ("web", "email", "in_app", "api", "cli", "import")
WEB, EMAIL, IN_APP, API, CLI, IMPORT = range(len(CHANNELS))

EUROPE = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB CH".split()
)
# (country, weight, ((language, weight), ...)); weights are rough platform shares.
COUNTRIES: tuple[tuple[str, float, tuple[tuple[str, float], ...]], ...] = (
    ("DE", 9.0, (("de", 1),)), ("FR", 7.0, (("fr", 1),)), ("IT", 6.0, (("it", 1),)),
    ("ES", 5.5, (("es", 0.9), ("ca", 0.1))), ("NL", 4.0, (("nl", 1),)), ("PL", 4.0, (("pl", 1),)),
    ("BE", 1.8, (("nl", 0.55), ("fr", 0.45))), ("SE", 1.6, (("sv", 1),)), ("AT", 1.4, (("de", 1),)),
    ("IE", 1.2, (("en", 1),)), ("PT", 1.6, (("pt", 1),)), ("DK", 0.9, (("da", 1),)),
    ("FI", 0.8, (("fi", 0.9), ("sv", 0.1))), ("CZ", 1.2, (("cs", 1),)), ("GR", 1.2, (("el", 1),)),
    ("RO", 1.8, (("ro", 1),)), ("HU", 1.0, (("hu", 1),)), ("SK", 0.5, (("sk", 1),)),
    ("SI", 0.25, (("sl", 1),)), ("HR", 0.45, (("hr", 1),)), ("BG", 0.6, (("bg", 1),)),
    ("LT", 0.3, (("lt", 1),)), ("LV", 0.2, (("lv", 1),)), ("EE", 0.15, (("et", 1),)),
    ("LU", 0.1, (("fr", 0.5), ("de", 0.3), ("lb", 0.2))), ("CY", 0.1, (("el", 1),)),
    ("MT", 0.08, (("en", 0.6), ("mt", 0.4))), ("IS", 0.06, (("is", 1),)), ("LI", 0.03, (("de", 1),)),
    ("NO", 0.9, (("nb", 1),)), ("GB", 7.0, (("en", 1),)),
    ("CH", 1.4, (("de", 0.63), ("fr", 0.27), ("it", 0.10))),
    ("US", 12.0, (("en", 0.87), ("es", 0.13))), ("BR", 5.0, (("pt", 1),)),
    ("IN", 5.0, (("en", 0.55), ("hi", 0.45))), ("CA", 2.2, (("en", 0.78), ("fr", 0.22))),
    ("JP", 2.0, (("ja", 1),)), ("NG", 1.5, (("en", 1),)), ("MX", 2.5, (("es", 1),)),
    ("AU", 1.6, (("en", 1),)),
)
NO_COUNTRY_LANGS = (("en", 0.5), ("es", 0.2), ("fr", 0.1), ("de", 0.1), ("pt", 0.1))
COUNTRY_CODES = tuple(c for c, _, _ in COUNTRIES)
COUNTRY_P = np.array([w for _, w, _ in COUNTRIES]) / sum(w for _, w, _ in COUNTRIES)
IS_EUROPE = np.array([c in EUROPE for c in COUNTRY_CODES] + [False])  # last slot: null country
LANGS: tuple[str, ...] = tuple(
    sorted({lang for _, _, ls in COUNTRIES for lang, _ in ls} | {lang for lang, _ in NO_COUNTRY_LANGS})
)


def _lang_cdf() -> np.ndarray:
    """Cumulative language distribution per country row (last row: no country)."""
    rows = [ls for _, _, ls in COUNTRIES] + [NO_COUNTRY_LANGS]
    m = np.zeros((len(rows), len(LANGS)))
    for i, ls in enumerate(rows):
        for lang, w in ls:
            m[i, LANGS.index(lang)] = w
    m /= m.sum(axis=1, keepdims=True)
    return np.cumsum(m, axis=1)


LANG_CDF = _lang_cdf()
EN = LANGS.index("en")
# Language -> text pool (languages without a pool write English).
LANG_TO_POOL = np.array([tx.TEXT_LANGS.index(lang) if lang in tx.SENTENCES else 0 for lang in LANGS] + [0])
POOL_SIZES = np.array([len(tx.SENTENCES[lang]) for lang in tx.TEXT_LANGS])
POOL_OFFSETS = np.concatenate([[0], np.cumsum(POOL_SIZES)[:-1]])
ALL_SENTENCES = pa.array([s for lang in tx.TEXT_LANGS for s in tx.SENTENCES[lang]], pa.string())

TS = pa.timestamp("us", tz="UTC")
USERS_SCHEMA = pa.schema([
    ("user_id", pa.string()), ("handle", pa.string()), ("email", pa.string()),
    ("birth_date", pa.date32()), ("country", pa.string()), ("language", pa.string()),
    ("created_at", TS), ("deleted_at", TS),
])
CONTENT_SCHEMA = pa.schema([
    ("item_id", pa.string()), ("user_id", pa.string()), ("kind", pa.string()),
    ("visibility", pa.string()), ("created_at", TS), ("deleted_at", TS),
    ("text", pa.string()), ("media_path", pa.string()), ("parent_id", pa.string()),
])
TAGS_SCHEMA = pa.schema([("item_id", pa.string()), ("tagged_user_id", pa.string())])


@dataclass(frozen=True)
class GenerateSummary:
    """What `generate` wrote, for the CLI to report."""

    out: Path
    users: int
    items: int
    tags: int
    events: int
    media_files: int


# --------------------------------------------------------------------------- small helpers


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a stateless hash, so any user's handle can be derived from its index."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def user_ids(idx: np.ndarray) -> pa.Array:
    return tx.join("u", tx.digits_str(idx, USER_WIDTH))


def item_ids(idx: np.ndarray) -> pa.Array:
    return tx.join("i", tx.digits_str(idx, ITEM_WIDTH))


def handles(idx: np.ndarray, seed: int) -> pa.Array:
    """Handle of user number `idx` (1-based), e.g. "anna_k1".

    A pure function of (idx, seed) rather than a stored draw, so a chunk can
    @mention or tag users of chunks it never saw and still name real handles;
    the numeric suffix makes them unique.
    """
    salt = _mix64(np.array([seed], dtype=np.uint64))[0]
    h = _mix64(idx.astype(np.uint64) ^ salt)
    first = pc.take(pa.array(tx.FIRST_NAMES), pa.array((h % np.uint64(len(tx.FIRST_NAMES))).astype(np.int64)))
    letters = pa.array([chr(97 + i) for i in range(26)])
    letter = pc.take(letters, pa.array(((h >> np.uint64(32)) % np.uint64(26)).astype(np.int64)))
    return tx.join(first, "_", letter, pc.cast(pa.array(idx, pa.int64()), pa.string()))


def _ts(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    mask = None if valid is None else ~valid
    return pa.array(seconds.astype(np.int64) * 1_000_000, type=TS, mask=mask)


def _choice(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(np.cumsum(p), rng.random(n) * p.sum(), side="right").clip(0, len(p) - 1)


def _take_str(pool: tuple[str, ...], codes: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    mask = None if valid is None else ~valid
    return pc.take(pa.array(pool, pa.string()), pa.array(codes.astype(np.int64), mask=mask))


def _exp_days(rng: np.random.Generator, mean_days: float, n: int) -> np.ndarray:
    return (rng.exponential(mean_days * DAY, n)).astype(np.int64)


# --------------------------------------------------------------------------- users


@dataclass
class _Users:
    """Per-chunk user attributes the content and events need (local index order)."""

    gidx: np.ndarray  # 1-based global index
    country: np.ndarray  # index into COUNTRY_CODES, len(COUNTRY_CODES) = null
    lang: np.ndarray  # index into LANGS, -1 = null
    has_email: np.ndarray
    created: np.ndarray  # seconds
    deleted: np.ndarray  # seconds, DELETE_END + 1 when not deleted
    is_deleted: np.ndarray
    table: pa.Table


def _users(rng: np.random.Generator, start: int, n: int, seed: int) -> _Users:
    gidx = np.arange(start + 1, start + n + 1, dtype=np.int64)
    handle = handles(gidx, seed)

    has_email = rng.random(n) < 0.92
    domain = tx.pick(("example.org", "example.org", "example.com", "example.net"), rng, n)
    email = pc.if_else(pa.array(has_email), tx.join(handle, "@", domain), pa.nulls(n, pa.string()))

    # Birth dates: unknown, minors, the 18th-birthday boundary (±60 days of the cut-off), adults.
    group = _choice(rng, np.array([0.05, 0.06, 0.015, 0.875]), n)
    birth = np.empty(n, dtype=np.int64)
    minors = group == 1
    birth[minors] = rng.integers(TURN18_DAY + 61, TURN13_DAY + 1, minors.sum())
    edge = group == 2
    offs = rng.integers(-60, 61, edge.sum())
    offs[rng.random(edge.sum()) < 0.05] = 0  # born exactly 18 years before the cut-off
    birth[edge] = TURN18_DAY + offs
    adults = group == 3
    span = (TURN18_DAY - 61) - OLDEST_DAY
    birth[adults] = (TURN18_DAY - 61) - (rng.beta(1.5, 3.5, adults.sum()) * span).astype(np.int64)
    birth[group == 0] = 0
    has_birth = group != 0

    country = _choice(rng, COUNTRY_P, n)
    country[rng.random(n) < 0.02] = len(COUNTRY_CODES)
    lang = (rng.random(n)[:, None] > LANG_CDF[country]).sum(axis=1).clip(0, len(LANGS) - 1)
    lang[rng.random(n) < 0.04] = EN  # expats and English UIs
    lang[rng.random(n) < 0.03] = -1

    # Sign-ups lean towards the platform's early years (u**1.5), so most accounts
    # have a long history and only a few percent of content is after the cut-off.
    created = SIGNUP_START + ((DATA_END - SIGNUP_START) * rng.random(n) ** 1.5).astype(np.int64)
    # Nobody signs up before 13; minors therefore have recent accounts.
    thirteen = birth * DAY + YEAR13 + rng.integers(0, 60 * DAY, n)
    created = np.where(has_birth, np.maximum(created, thirteen), created).clip(max=DATA_END)

    is_deleted = rng.random(n) < 0.02
    before = rng.random(n) < 0.5
    base = np.maximum(created, CUTOFF)
    deleted = np.where(
        before & (created < CUTOFF),
        created + (rng.random(n) * (CUTOFF - created)).astype(np.int64),
        base + (rng.random(n) * (DELETE_END - base)).astype(np.int64),
    )
    deleted = np.where(is_deleted, np.maximum(deleted, created + 1), DELETE_END + 1)

    country_codes = COUNTRY_CODES + ("",)
    table = pa.Table.from_arrays(
        [
            user_ids(gidx),
            handle,
            email,
            pa.array(birth.astype(np.int32), type=pa.date32(), mask=~has_birth),
            _take_str(country_codes, country, country < len(COUNTRY_CODES)),
            _take_str(LANGS, lang.clip(0), lang >= 0),
            _ts(created),
            _ts(deleted, is_deleted),
        ],
        schema=USERS_SCHEMA,
    )
    return _Users(gidx, country, lang, has_email, created, deleted, is_deleted, table)


# --------------------------------------------------------------------------- content


def _texts(
    rng: np.random.Generator, kind: np.ndarray, pool: np.ndarray, total_users: int, seed: int
) -> pa.Array:
    """Item texts in the author's language, some carrying personal data or @mentions."""
    n = len(kind)
    p_text = np.array([0.97, 0.2, 1.0, 1.0, 0.6, 1.0, 0.7, 0.8])[kind]
    pos = np.flatnonzero(rng.random(n) < p_text)
    k, pl = kind[pos], pool[pos]
    m = len(pos)

    # Up to three distinct sentences from the author's pool (offsets d2 != d3, both != 0).
    size = POOL_SIZES[pl]
    r1 = (rng.random(m) * size).astype(np.int64)
    d2 = 1 + (rng.random(m) * (size - 1)).astype(np.int64)
    d3 = 1 + (rng.random(m) * (size - 2)).astype(np.int64)
    d3 = d3 + (d3 >= d2)

    def sentence(r: np.ndarray, present: np.ndarray) -> pa.Array:
        return pc.take(ALL_SENTENCES, pa.array(POOL_OFFSETS[pl] + r % size, mask=~present))

    p2 = np.array([0.5, 0.0, 0.3, 0.2, 0.0, 0.4, 0.0, 0.0])[k]
    p3 = np.array([0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])[k]
    has2 = rng.random(m) < p2
    s1 = sentence(r1, np.ones(m, bool))
    s2 = sentence(r1 + d2, has2)
    s3 = sentence(r1 + d3, has2 & (rng.random(m) < p3 / np.maximum(p2, 1e-9)))

    # Personal data: one fragment at most; private messages carry three times more.
    scale = np.where(k == PM, 3.0, 1.0)
    u = rng.random(m)
    pii_kind = np.full(m, -1)
    for j, cum in enumerate((0.02, 0.04, 0.05, 0.055)):
        pii_kind[(pii_kind < 0) & (u < cum * scale)] = j
    frags, frag_pos = [], []
    for j, build in enumerate((tx.emails, tx.phones, tx.ibans, tx.cards)):
        at = np.flatnonzero(pii_kind == j)
        if len(at) == 0:
            continue
        labels = pa.array([tx.PII_LABELS[lang][j] for lang in tx.TEXT_LANGS])
        frags.append(tx.join(pc.take(labels, pa.array(pl[at])), build(rng, len(at)), sep=" "))
        frag_pos.append(at)
    pii = (
        tx.scatter(pa.concat_arrays(frags), np.concatenate(frag_pos), m)
        if frags
        else pa.nulls(m, pa.string())
    )

    # @mentions name real users anywhere in the population.
    p_mention = np.array([0.08, 0.03, 0.15, 0.25, 0.05, 0.05, 0.03, 0.03])[k]
    mpos = np.flatnonzero(rng.random(m) < p_mention)
    targets = rng.integers(1, total_users + 1, (len(mpos), 2))
    second = rng.random(len(mpos)) < 0.2
    h1 = tx.join("@", handles(targets[:, 0], seed))
    h2 = pc.if_else(pa.array(second), tx.join("@", handles(targets[:, 1], seed)), pa.nulls(len(mpos), pa.string()))
    mention = tx.scatter(tx.join(h1, h2, sep=" "), mpos, m)
    lead = pa.array(k == COMMENT)
    none = pa.nulls(m, pa.string())
    pre = pc.if_else(lead, mention, none)
    post = pc.if_else(lead, none, mention)

    text = tx.join(pre, s1, s2, s3, pii, post, sep=" ")
    return tx.scatter(text, pos, n)


@dataclass
class _Content:
    table: pa.Table
    tags: pa.Table
    media: list[tuple[str, int, str | None]]  # (item_id, created_at seconds, author country)


def _content(
    rng: np.random.Generator,
    users: _Users,
    item_start: int,
    total_users: int,
    media_left: int,
    seed: int,
) -> _Content:
    n = len(users.gidx)
    # Activity grows with the length of an account's active life (mean ~20 items).
    ustart = np.maximum(users.created, CONTENT_START)
    uend = np.maximum(np.minimum(users.deleted, DATA_END), ustart + 1)
    span = (uend - ustart).astype(np.float64)
    mean = 20.0 * (0.2 + 0.8 * span / span.mean())
    counts = np.minimum(rng.negative_binomial(1.1, 1.1 / (1.1 + mean)), 2_000)
    au = np.repeat(np.arange(n), counts)  # author, local index
    total = len(au)
    kind = _choice(rng, KIND_P, total)

    start, end = ustart[au], uend[au]
    created = start + ((end - start) * rng.random(total)).astype(np.int64)

    vis = _choice(rng, VIS_P, total)
    vis[kind == PM] = 2
    parent = np.full(total, -1, dtype=np.int64)

    # Captions belong to a photo of the same author, written just after it.
    photos = np.flatnonzero(kind == PHOTO)  # authors ascending since au is
    caps = np.flatnonzero(kind == CAPTION)
    lo = np.searchsorted(au[photos], au[caps], "left")
    cnt = np.searchsorted(au[photos], au[caps], "right") - lo
    ok = cnt > 0
    chosen = photos[lo[ok] + (rng.random(ok.sum()) * cnt[ok]).astype(np.int64)]
    parent[caps[ok]] = chosen
    created[caps[ok]] = np.minimum(
        created[chosen] + rng.integers(1, 600, ok.sum()), np.maximum(created[chosen] + 1, DATA_END)
    )
    vis[caps[ok]] = vis[chosen]
    kind[caps[~ok]] = POST

    # Comments answer a post or photo (anyone's in this chunk) published shortly before.
    cand = np.flatnonzero((kind == POST) | (kind == PHOTO))
    cand = cand[np.argsort(created[cand], kind="stable")]
    ctimes = created[cand]
    coms = np.flatnonzero(kind == COMMENT)
    before = np.searchsorted(ctimes, created[coms], "left")  # strictly earlier candidates
    ok = before > 0
    window = np.minimum(before[ok], 2_000)
    pick = before[ok] - 1 - (rng.random(ok.sum()) * window).astype(np.int64)
    parent[coms[ok]] = cand[pick]
    kind[coms[~ok]] = POST

    # Order by author then time, so item ids read like an export; remap parents.
    order = np.lexsort((created, au))
    inv = np.empty(total, dtype=np.int64)
    inv[order] = np.arange(total)
    au, kind, created, vis = au[order], kind[order], created[order], vis[order]
    parent = parent[order]
    parent = np.where(parent >= 0, inv[np.maximum(parent, 0)], -1)

    is_del = rng.random(total) < 0.03
    deleted = created + 1 + (rng.random(total) * (np.maximum(DELETE_END - created, 1))).astype(np.int64)

    gitem = np.arange(item_start + 1, item_start + total + 1, dtype=np.int64)
    iid = item_ids(gitem)
    has_parent = parent >= 0
    parent_id = pc.take(iid, pa.array(np.maximum(parent, 0), mask=~has_parent))

    pool = LANG_TO_POOL[users.lang[au]]  # lang -1 hits the trailing "no language" slot
    text = _texts(rng, kind, pool, total_users, seed)

    photo_pos = np.flatnonzero(kind == PHOTO)
    with_media = photo_pos[: max(media_left, 0)]
    media_path = tx.scatter(
        tx.join("media/", pc.take(iid, pa.array(with_media)), ".jpg"), with_media, total
    )
    codes = COUNTRY_CODES + (None,)
    media = [
        (iid[int(p)].as_py(), int(created[p]), codes[int(users.country[au[p]])]) for p in with_media
    ]

    table = pa.Table.from_arrays(
        [
            iid,
            pc.take(users.table.column("user_id"), pa.array(au)),
            _take_str(KINDS, kind),
            _take_str(VISIBILITIES, vis),
            _ts(created),
            _ts(deleted, is_del),
            text,
            media_path,
            parent_id,
        ],
        schema=CONTENT_SCHEMA,
    )
    return _Content(table, _tags(rng, iid, photo_pos, total_users), media)


def _tags(rng: np.random.Generator, iid: pa.Array, photo_pos: np.ndarray, total_users: int) -> pa.Table:
    """1-3 distinct people tagged on ~30% of photos, drawn from the whole population."""
    tagged = photo_pos[rng.random(len(photo_pos)) < 0.3]
    m = len(tagged)
    k = np.minimum(_choice(rng, np.array([0.6, 0.3, 0.1]), m) + 1, total_users)
    a = rng.integers(0, total_users, m)
    # Distinct by construction: b and c are distinct non-zero offsets from a.
    o1 = rng.integers(1, max(total_users, 2), m)
    o2 = rng.integers(1, max(total_users - 1, 2), m)
    o2 = o2 + (o2 >= o1)
    who = np.stack([a, (a + o1) % total_users, (a + o2) % total_users], axis=1) + 1
    keep = np.arange(3)[None, :] < k[:, None]
    rows = np.repeat(tagged, k)
    return pa.Table.from_arrays(
        [pc.take(iid, pa.array(rows)), user_ids(who[keep])], schema=TAGS_SCHEMA
    )


# --------------------------------------------------------------------------- events


class _EventBuf:
    """Columnar event accumulator: events are only ordered and numbered at the end."""

    def __init__(self) -> None:
        self.parts: list[pa.Table] = []

    def add(
        self,
        user: np.ndarray,
        etype: int,
        at: np.ndarray,
        channel: np.ndarray,
        note: pa.Array | None,
        until: np.ndarray,
        item: pa.Array | None = None,
    ) -> None:
        """`user` is -1 for third-party events, which name an `item` instead."""
        n = len(user)
        if n == 0:
            return
        table = pa.table({
            "user": pa.array(user, pa.int64()),
            "item": item if item is not None else pa.nulls(n, pa.string()),
            "type": pa.array(np.full(n, etype, dtype=np.int8)),
            "at": pa.array(at.astype(np.int64)),
            "channel": pa.array(channel.astype(np.int8)),
            "note": note if note is not None else pa.nulls(n, pa.string()),
        })
        # Nothing happens after the export was taken, nor after the account was deleted.
        self.parts.append(table.filter(pa.array((at <= DATA_END) & (at < until))))


def _maybe_note(rng: np.random.Generator, pool: tuple[str, ...], n: int, share: float) -> pa.Array:
    return pc.if_else(pa.array(rng.random(n) < share), tx.pick(pool, rng, n), pa.nulls(n, pa.string()))


def _events(rng: np.random.Generator, users: _Users, buf: _EventBuf) -> None:
    n = len(users.gidx)
    g, created = users.gidx, users.created
    europe = IS_EUROPE[users.country]
    alive_at_wave = ~(users.is_deleted & (users.deleted < WAVE_START))

    def emit(sel: np.ndarray, etype: int, at: np.ndarray, channel: np.ndarray, note: pa.Array | None = None) -> None:
        buf.add(g[sel], etype, at, channel, note, users.deleted[sel])

    def after_signup(at: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Nobody acts before their account exists; late sign-ups act shortly after."""
        return np.maximum(at, created[sel] + rng.integers(60, 2 * DAY, len(at)))

    # Notices: the May 2024 wave in Europe (a few late), a looser one elsewhere.
    notified = alive_at_wave & (rng.random(n) < np.where(europe, 0.85, 0.40))
    sel = np.flatnonzero(notified)
    eu = europe[sel]
    late = eu & (rng.random(len(sel)) < 0.05)
    at = np.where(
        eu,
        WAVE_START + rng.integers(0, 5 * DAY, len(sel)),
        WAVE_START + rng.integers(0, 70 * DAY, len(sel)),
    )
    at = np.where(late, rng.integers(LATE_START, LATE_END, len(sel)), at)
    # The notice-period boundary: exactly T-30d counts, one second later does not.
    edge = rng.random(len(sel))
    on_time = eu & ~late
    at = np.where(on_time & (edge < 0.002), NOTICE_EDGE, at)
    at = np.where(on_time & (edge > 0.998), NOTICE_EDGE + 1, at)
    first_eu = np.flatnonzero(on_time & (created[sel] < WAVE_START) & (users.deleted[sel] > CUTOFF))
    if len(first_eu) >= 2:
        at[first_eu[0]], at[first_eu[1]] = NOTICE_EDGE, NOTICE_EDGE + 1
    at = np.where(created[sel] > at, created[sel] + rng.integers(60, 3600, len(sel)), at)  # notice at sign-up
    channel = np.where(users.has_email[sel] & (rng.random(len(sel)) < 0.6), EMAIL, IN_APP)
    emit(sel, NOTIFIED, at, channel)

    # Consent (opt-in): some migrated from a legacy system, most given in the 2024 campaign.
    sel = np.flatnonzero(rng.random(n) < 0.10)
    m = len(sel)
    legacy = rng.random(m) < 0.15
    at = np.where(
        legacy,
        rng.integers(_sec("2023-01-01T00:00:00"), WAVE_START, m),
        rng.integers(WAVE_START, DATA_END, m),
    )
    at = np.where(rng.random(m) < 0.01, CUTOFF, at)
    at = after_signup(at, sel)
    channel = np.where(legacy, IMPORT, np.array([WEB, IN_APP, API])[_choice(rng, np.array([0.45, 0.45, 0.1]), m)])
    emit(sel, CONSENT, at, channel)
    wd = rng.random(m) < 0.2
    wd_at = at[wd] + 3600 + _exp_days(rng, 30, wd.sum())
    emit(sel[wd], CONSENT_WD, wd_at, np.array([WEB, IN_APP, EMAIL])[rng.integers(0, 3, wd.sum())])

    # Objections: mostly right after the notices, a tail up to mid-August, a few at exactly T.
    sel = np.flatnonzero(rng.random(n) < np.where(europe, 0.075, 0.03))
    m = len(sel)
    at = np.where(
        rng.random(m) < 0.65,
        WAVE_START + np.minimum(_exp_days(rng, 12, m), OBJECT_END - WAVE_START),
        rng.integers(WAVE_START, OBJECT_END, m),
    )
    at = after_signup(at, sel)
    can = (created[sel] < CUTOFF) & (users.deleted[sel] > CUTOFF)
    exact = (rng.random(m) < 0.01) & can
    if can.any():  # at least one objection at exactly T per chunk
        exact[np.flatnonzero(can)[0]] = True
    at = np.where(exact, CUTOFF, at)
    channel = np.array([WEB, EMAIL, IN_APP, API])[_choice(rng, np.array([0.5, 0.15, 0.3, 0.05]), m)]
    emit(sel, OBJECTED, at, channel, _maybe_note(rng, tx.OBJECTION_NOTES, m, 0.3))

    fate = rng.random(m)
    wd = fate < 0.15
    same = rng.random(m) < 0.05  # withdrawn within the same second: ties go by ledger order
    if wd.any():
        same[np.flatnonzero(wd)[0]] = True
    delay = np.where(same, 0, 60 + _exp_days(rng, 10, m))
    w = np.flatnonzero(wd)
    emit(
        sel[w], OBJ_WD, at[w] + delay[w],
        np.array([WEB, IN_APP, EMAIL])[rng.integers(0, 3, len(w))],
        _maybe_note(rng, tx.WITHDRAWAL_NOTES, len(w), 0.3),
    )
    r = np.flatnonzero((fate >= 0.15) & (fate < 0.20))
    ticket = pc.cast(pa.array(rng.integers(1000, 100_000, len(r))), pa.string())
    note = tx.join(tx.pick(tx.REJECTION_NOTES, rng, len(r)), " (ticket ADM-", ticket, ")")
    emit(
        sel[r], OBJ_REJ, at[r] + rng.integers(DAY, 20 * DAY, len(r)),
        np.where(rng.random(len(r)) < 0.8, CLI, WEB), note,
    )

    # Erasure requests.
    sel = np.flatnonzero(rng.random(n) < 0.005)
    m = len(sel)
    at = after_signup(rng.integers(_sec("2024-03-01T00:00:00"), DATA_END, m), sel)
    at = np.where((rng.random(m) < 0.02) & (created[sel] < CUTOFF), CUTOFF, at)
    channel = np.array([WEB, EMAIL, API, CLI])[_choice(rng, np.array([0.5, 0.2, 0.1, 0.2]), m)]
    emit(sel, ERASURE, at, channel, _maybe_note(rng, tx.ERASURE_NOTES, m, 0.3))


def _third_party_events(rng: np.random.Generator, content: pa.Table, buf: _EventBuf) -> None:
    """People without an account object to ~1% of public photos after the notice
    wave; an administrator dismisses a quarter of those later (a few within the
    same second: ties go by ledger order)."""
    photos = content.filter(
        pc.and_(pc.equal(content.column("kind"), "photo"), pc.equal(content.column("visibility"), "public"))
    )
    pick = np.flatnonzero(rng.random(photos.num_rows) < 0.01)
    m = len(pick)
    if m == 0:
        return
    items = pc.take(photos.column("item_id"), pa.array(pick))
    created = pc.take(photos.column("created_at"), pa.array(pick)).cast(pa.int64()).to_numpy() // 1_000_000
    at = np.maximum(rng.integers(WAVE_START, DATA_END, m), created + rng.integers(3600, 30 * DAY, m))
    never = np.full(m, np.iinfo(np.int64).max)
    buf.add(np.full(m, -1), TP_OBJECTED, at, np.full(m, WEB), None, never, items)
    d = np.flatnonzero(rng.random(m) < 0.25)
    if len(d):
        same = rng.random(len(d)) < 0.1
        same[0] = True
        d_at = at[d] + np.where(same, 0, rng.integers(DAY, 20 * DAY, len(d)))
        note = tx.pick(DISMISSAL_NOTES, rng, len(d))
        buf.add(np.full(len(d), -1), TP_DISMISSED, d_at, np.full(len(d), WEB), note, never[d], pc.take(items, pa.array(d)))


def _write_events(path: Path, buf: _EventBuf) -> int:
    """Sort by time (ties: user, then the natural order of event types) and write JSON lines."""
    if not buf.parts:
        path.write_bytes(b"")
        return 0
    ev = pa.concat_tables(buf.parts)
    at = ev.column("at").to_numpy()
    seq = ev.column("user").to_numpy() * 16 + ev.column("type").to_numpy()
    ev = ev.take(pa.array(np.lexsort((seq, at))))
    n = ev.num_rows
    at_s = pc.strftime(
        pc.cast(ev.column("at"), pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%SZ"
    )
    user = ev.column("user").to_numpy()
    # Third-party events have no user: "user_id":null and the item they concern.
    who = pc.if_else(
        pa.array(user >= 0),
        tx.join('"user_id":"', user_ids(np.maximum(user, 0)), '"'),
        tx.join('"user_id":null,"item_id":"', pc.fill_null(ev.column("item"), ""), '"'),
    )
    line = tx.join(
        '{"event_id":"e', tx.digits_str(np.arange(1, n + 1), EVENT_WIDTH),
        '",', who,
        ',"type":"', pc.take(pa.array(EVENT_TYPES), ev.column("type")),
        '","at":"', at_s,
        '","channel":"', pc.take(pa.array(CHANNELS), ev.column("channel")),
        '","note":', tx.json_string(ev.column("note")),
        "}\n",
    )
    chunks = line.chunks if isinstance(line, pa.ChunkedArray) else [line]
    with path.open("wb") as f:
        # Every line ends in "\n", so the string data buffer *is* the file content.
        for chunk in chunks:
            for s in range(0, len(chunk), 500_000):
                part = pa.concat_arrays([chunk.slice(s, 500_000)])  # fresh buffers, offset 0
                offsets = np.frombuffer(part.buffers()[1], dtype=np.int32, count=len(part) + 1)
                f.write(memoryview(part.buffers()[2])[offsets[0] : offsets[-1]])
    return n


# --------------------------------------------------------------------------- entry point


def generate(
    out: Path,
    users: int,
    seed: int = 0,
    media: int = 200,
    chunk_users: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> GenerateSummary:
    """Write a synthetic export (users/content/tags Parquet, events.jsonl, media/) into `out`.

    Refuses a non-empty `out` so an existing export is never mixed with or
    overwritten by generated data. The same (seed, users, chunk_users) gives
    byte-identical Parquet and JSONL files and identical JPEGs.
    """
    out = Path(out)
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")
    if chunk_users < 1:
        raise ValueError(f"chunk_users must be at least 1, got {chunk_users}")
    if media < 0:
        raise ValueError(f"media must be 0 or more, got {media}")
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"{out} exists and is not a folder; choose a new or empty folder")
        if any(out.iterdir()):
            raise ValueError(f"{out} is not empty; choose a new or empty folder (nothing was written)")
    # Build in a hidden sibling and rename into place: an interrupted run
    # leaves no half export that could be mistaken for a real one.
    out.parent.mkdir(parents=True, exist_ok=True)
    final, out = out, out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    try:
        out.mkdir()
        (out / "media").mkdir()

        buf = _EventBuf()
        n_items = n_tags = n_media = 0
        opts = {"compression": "zstd"}
        with (
            pq.ParquetWriter(out / "users.parquet", USERS_SCHEMA, **opts) as uw,
            pq.ParquetWriter(out / "content.parquet", CONTENT_SCHEMA, **opts) as cw,
            pq.ParquetWriter(out / "tags.parquet", TAGS_SCHEMA, **opts) as tw,
        ):
            for chunk, start in enumerate(range(0, users, chunk_users)):
                rng = np.random.default_rng([seed, 0, chunk])
                u = _users(rng, start, min(chunk_users, users - start), seed)
                c = _content(rng, u, n_items, users, media - n_media, seed)
                _events(rng, u, buf)
                _third_party_events(np.random.default_rng([seed, 2, chunk]), c.table, buf)
                uw.write_table(u.table)
                cw.write_table(c.table)
                tw.write_table(c.tags)
                for item_id, taken_at, country in c.media:
                    mrng = np.random.default_rng([seed, 1, n_media])
                    write_jpeg(out / "media" / f"{item_id}.jpg", mrng, taken_at, country)
                    n_media += 1
                n_items += c.table.num_rows
                n_tags += c.tags.num_rows
                if progress is not None:
                    progress(start + u.table.num_rows)
        n_events = _write_events(out / "events.jsonl", buf)
        if final.exists():
            final.rmdir()  # checked empty above
        os.replace(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return GenerateSummary(final, users, n_items, n_tags, n_events, n_media)
