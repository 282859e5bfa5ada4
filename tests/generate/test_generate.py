"""Tests for the synthetic export generator (CONTRACT §1-§3)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from consentry.generate import GenerateSummary, generate

USERS = 4_000
CHUNK = 1_500  # several chunks, so chunk boundaries are exercised
MEDIA = 60
SEED = 7
T = "2024-06-26T00:00:00Z"
DATA_FILES = ("users.parquet", "content.parquet", "tags.parquet", "events.jsonl")

TS = pa.timestamp("us", tz="UTC")
EXPECTED = {
    "users": [
        ("user_id", pa.string()), ("handle", pa.string()), ("email", pa.string()),
        ("birth_date", pa.date32()), ("country", pa.string()), ("language", pa.string()),
        ("created_at", TS), ("deleted_at", TS),
    ],
    "content": [
        ("item_id", pa.string()), ("user_id", pa.string()), ("kind", pa.string()),
        ("visibility", pa.string()), ("created_at", TS), ("deleted_at", TS),
        ("text", pa.string()), ("media_path", pa.string()), ("parent_id", pa.string()),
    ],
    "tags": [("item_id", pa.string()), ("tagged_user_id", pa.string())],
}
EVENT_TYPES = {
    "notified", "objected", "objection_withdrawn", "objection_rejected",
    "consent_given", "consent_withdrawn", "erasure_requested",
    "third_party_objected", "third_party_dismissed",
}
CHANNELS = {"web", "email", "in_app", "api", "cli", "import"}
EUROPE = (
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB CH"
).split()


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary, list[int]]:
    out = tmp_path_factory.mktemp("gen") / "export"
    seen: list[int] = []
    summary = generate(out, USERS, seed=SEED, media=MEDIA, chunk_users=CHUNK, progress=seen.append)
    return out, summary, seen


@pytest.fixture(scope="module")
def out(export: tuple[Path, GenerateSummary, list[int]]) -> Path:
    return export[0]


@pytest.fixture(scope="module")
def events(out: Path) -> list[dict]:
    lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def db(out: Path, events: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in ("users", "content", "tags"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{out / name}.parquet')")
    ev = pa.Table.from_pylist(events)
    con.register("ev_arrow", ev)
    con.execute(
        'CREATE TABLE ev AS SELECT event_id, user_id, type, CAST("at" AS TIMESTAMPTZ) AS t, channel, note, '
        "row_number() OVER () AS pos FROM ev_arrow"
    )
    con.execute("SET TimeZone = 'UTC'")
    return con


def one(db: duckdb.DuckDBPyConnection, sql: str) -> object:
    return db.execute(sql).fetchone()[0]


# --------------------------------------------------------------------------- API


@pytest.mark.slow
def test_summary_and_progress(export: tuple[Path, GenerateSummary, list[int]], db: duckdb.DuckDBPyConnection) -> None:
    out, s, seen = export
    assert s == GenerateSummary(
        out=out,
        users=USERS,
        items=one(db, "SELECT count(*) FROM content"),
        tags=one(db, "SELECT count(*) FROM tags"),
        events=one(db, "SELECT count(*) FROM ev"),
        media_files=MEDIA,
    )
    assert one(db, "SELECT count(*) FROM users") == USERS
    assert seen == [1_500, 3_000, 4_000]
    with pytest.raises(AttributeError):
        s.users = 1  # type: ignore[misc]


def test_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="users"):
        generate(tmp_path / "a", 0)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        generate(full, 10)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ValueError):
        generate(afile, 10)
    empty = tmp_path / "empty"
    empty.mkdir()
    s = generate(empty, 3, media=1)
    assert s.users == 3 and (empty / "users.parquet").exists()


def test_tiny_population(tmp_path: Path) -> None:
    """One or two users still give valid tags (distinct people) and mentions."""
    for users in (1, 2):
        s = generate(tmp_path / str(users), users, seed=3, chunk_users=1, media=2)
        ids = set(pq.read_table(s.out / "users.parquet").column("user_id").to_pylist())
        tags = pq.read_table(s.out / "tags.parquet").to_pylist()
        assert {t["tagged_user_id"] for t in tags} <= ids
        pairs = [(t["item_id"], t["tagged_user_id"]) for t in tags]
        assert len(pairs) == len(set(pairs))


@pytest.mark.slow
def test_deterministic_per_seed(out: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", USERS, seed=SEED, media=MEDIA, chunk_users=CHUNK)
    for name in DATA_FILES:
        assert (out / name).read_bytes() == (again.out / name).read_bytes(), name
    jpgs = sorted(p.name for p in (out / "media").iterdir())
    assert jpgs == sorted(p.name for p in (again.out / "media").iterdir())
    for name in jpgs:
        assert (out / "media" / name).read_bytes() == (again.out / "media" / name).read_bytes()

    other = generate(tmp_path / "other", USERS, seed=SEED + 1, media=MEDIA, chunk_users=CHUNK)
    for name in DATA_FILES:
        assert (out / name).read_bytes() != (other.out / name).read_bytes(), name


# --------------------------------------------------------------------------- schema and integrity


@pytest.mark.parametrize("table", ["users", "content", "tags"])
def test_schema_exact(out: Path, table: str) -> None:
    schema = pq.read_schema(out / f"{table}.parquet")
    assert [(f.name, f.type) for f in schema] == EXPECTED[table]


def test_ids_unique_and_well_formed(db: duckdb.DuckDBPyConnection) -> None:
    assert one(db, "SELECT count(DISTINCT user_id) FROM users") == USERS
    assert one(db, "SELECT count(DISTINCT handle) FROM users") == USERS
    assert one(db, "SELECT count(DISTINCT item_id) = count(*) FROM content")
    assert one(db, "SELECT count(DISTINCT event_id) = count(*) FROM ev")
    assert one(db, r"SELECT bool_and(regexp_full_match(user_id, 'u\d{7}')) FROM users")
    assert one(db, r"SELECT bool_and(regexp_full_match(handle, '[a-z]+_[a-z]\d+')) FROM users")
    assert one(db, r"SELECT bool_and(regexp_full_match(item_id, 'i\d{9}')) FROM content")
    assert one(db, r"SELECT bool_and(regexp_full_match(event_id, 'e\d{9}')) FROM ev")
    assert one(db, "SELECT bool_and(email = handle || '@' || split_part(email, '@', 2)) FROM users")
    assert one(db, "SELECT count(*) FROM users WHERE created_at IS NULL") == 0
    assert one(db, "SELECT count(*) FROM content WHERE created_at IS NULL OR kind IS NULL") == 0


def test_referential_integrity(db: duckdb.DuckDBPyConnection) -> None:
    assert one(db, "SELECT count(*) FROM content WHERE user_id NOT IN (SELECT user_id FROM users)") == 0
    assert one(db, "SELECT count(*) FROM tags WHERE item_id NOT IN (SELECT item_id FROM content)") == 0
    assert one(db, "SELECT count(*) FROM tags WHERE tagged_user_id NOT IN (SELECT user_id FROM users)") == 0
    assert one(db, "SELECT count(*) FROM ev WHERE user_id NOT IN (SELECT user_id FROM users)") == 0
    assert one(
        db,
        "SELECT count(*) FROM content WHERE parent_id IS NOT NULL "
        "AND parent_id NOT IN (SELECT item_id FROM content)",
    ) == 0
    mentions = db.execute(
        r"SELECT unnest(regexp_extract_all(text, '(?:^|\s)@([a-z]+_[a-z]\d+)', 1)) AS h FROM content"
    ).fetchall()
    assert len(mentions) > 500
    assert one(db, "SELECT count(*) FROM users") > 0
    handles = {h for (h,) in db.execute("SELECT handle FROM users").fetchall()}
    assert {h for (h,) in mentions} <= handles


def test_parents(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        """
        SELECT c.kind, p.kind AS pkind, c.created_at > p.created_at AS after, c.user_id = p.user_id AS same
        FROM content c JOIN content p ON p.item_id = c.parent_id
        """
    ).fetchall()
    comments = [r for r in rows if r[0] == "comment"]
    captions = [r for r in rows if r[0] == "caption"]
    assert len(comments) > 1000 and len(captions) > 500
    assert all(r[1] in ("post", "photo") and r[2] for r in comments)
    assert any(not r[3] for r in comments)  # people comment on others' posts
    assert all(r[1] == "photo" and r[2] and r[3] for r in captions)
    assert one(db, "SELECT count(*) FROM content WHERE kind IN ('comment', 'caption') AND parent_id IS NULL") == 0
    assert one(db, "SELECT count(*) FROM content WHERE kind NOT IN ('comment', 'caption') AND parent_id IS NOT NULL") == 0


def test_content_consistency(db: duckdb.DuckDBPyConnection) -> None:
    assert one(db, "SELECT count(*) FROM content WHERE kind = 'private_message' AND visibility <> 'private'") == 0
    assert one(
        db,
        "SELECT count(*) FROM content c JOIN users u USING (user_id) WHERE c.created_at < u.created_at",
    ) == 0
    assert one(db, "SELECT count(*) FROM content WHERE deleted_at <= created_at") == 0
    assert one(db, "SELECT count(*) FROM users WHERE deleted_at <= created_at") == 0
    assert one(db, "SELECT min(created_at) >= TIMESTAMPTZ '2010-01-01' FROM content")


def test_tags(db: duckdb.DuckDBPyConnection) -> None:
    per_item = db.execute(
        "SELECT count(*), count(DISTINCT tagged_user_id) FROM tags GROUP BY item_id"
    ).fetchall()
    assert all(n == d and 1 <= n <= 3 for n, d in per_item)
    assert {n for n, _ in per_item} == {1, 2, 3}
    share = one(
        db,
        "SELECT count(DISTINCT t.item_id) / count(DISTINCT c.item_id) FROM content c "
        "LEFT JOIN tags t USING (item_id) WHERE c.kind = 'photo'",
    )
    assert 0.25 < share < 0.35
    # Tagged people come from the whole population, minors included.
    assert one(
        db,
        "SELECT count(*) FROM tags t JOIN users u ON u.user_id = t.tagged_user_id "
        "WHERE u.birth_date > DATE '2006-06-26'",
    ) > 10


# --------------------------------------------------------------------------- events


def test_events_format(out: Path, events: list[dict]) -> None:
    first = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert list(json.loads(first)) == ["event_id", "user_id", "type", "at", "channel", "note"]
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    for e in events:
        if e["type"].startswith("third_party"):  # about an item, by someone without an account
            assert list(e) == ["event_id", "user_id", "item_id", "type", "at", "channel", "note"]
            assert e["user_id"] is None and re.fullmatch(r"i\d{9}", e["item_id"])
        else:
            assert list(e) == ["event_id", "user_id", "type", "at", "channel", "note"]
        assert iso.fullmatch(e["at"])
        assert e["note"] is None or (isinstance(e["note"], str) and e["note"])
    ats = [e["at"] for e in events]
    assert ats == sorted(ats)
    assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)
    assert {e["type"] for e in events} == EVENT_TYPES
    assert {e["channel"] for e in events} == CHANNELS
    assert all(e["note"] for e in events if e["type"] in ("objection_rejected", "third_party_dismissed"))
    assert any(e["note"] is None for e in events if e["type"] == "objected")
    assert any(e["at"] == T for e in events)
    assert max(e["at"] for e in events) <= "2024-09-30T23:59:59Z"


def test_third_party_events_name_public_photos_and_follow_their_order(out: Path, events: list[dict]) -> None:
    tp = [(i, e) for i, e in enumerate(events) if e["type"].startswith("third_party")]
    assert tp, "the generator writes third-party objections"
    con = duckdb.connect()
    photos = dict(con.execute(
        f"SELECT item_id, kind || '/' || visibility FROM read_parquet('{out / 'content.parquet'}') "
        "WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [[e["item_id"] for _, e in tp]]).fetchall())
    assert set(photos.values()) == {"photo/public"}
    first_objection = {}
    for i, e in tp:
        if e["type"] == "third_party_objected":
            first_objection.setdefault(e["item_id"], i)
        else:  # a dismissal follows an objection of the same item, in file order
            assert first_objection.get(e["item_id"], i) < i
    assert any(e["type"] == "third_party_dismissed" for _, e in tp)


def test_event_semantics(db: duckdb.DuckDBPyConnection) -> None:
    # Follow-ups come after (or at the same instant as) what they follow, and later in the file.
    for follow, first in (
        ("objection_withdrawn", "objected"),
        ("objection_rejected", "objected"),
        ("consent_withdrawn", "consent_given"),
    ):
        assert one(
            db,
            f"SELECT count(*) FROM ev f LEFT JOIN ev o ON o.user_id = f.user_id AND o.type = '{first}' "
            f"AND o.pos < f.pos WHERE f.type = '{follow}' AND o.event_id IS NULL",
        ) == 0
    # Same-instant pair: objected then withdrawn in the same second, in that file order.
    assert one(
        db,
        "SELECT count(*) FROM ev o JOIN ev w ON o.user_id = w.user_id AND o.t = w.t "
        "WHERE o.type = 'objected' AND w.type = 'objection_withdrawn' AND o.pos < w.pos",
    ) >= 1
    assert one(db, "SELECT count(*) FROM ev WHERE type = 'objected' AND t = TIMESTAMPTZ '2024-06-26 00:00:00+00'") >= 1
    # Notice period edge: exactly T-30d and one second after it.
    assert one(db, "SELECT count(*) FROM ev WHERE type = 'notified' AND t = TIMESTAMPTZ '2024-05-27 00:00:00+00'") >= 1
    assert one(db, "SELECT count(*) FROM ev WHERE type = 'notified' AND t = TIMESTAMPTZ '2024-05-27 00:00:01+00'") >= 1
    # Notices: most Europeans, a minority elsewhere; nobody twice.
    eu = ", ".join(f"'{c}'" for c in EUROPE)
    rate = db.execute(
        f"""SELECT country IN ({eu}) AS europe, avg((user_id IN (SELECT user_id FROM ev WHERE type = 'notified'))::int)
            FROM users WHERE country IS NOT NULL GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    assert 0.3 < rate[0][1] < 0.5 and 0.75 < rate[1][1] < 0.9
    assert one(db, "SELECT count(*) - count(DISTINCT user_id) FROM ev WHERE type = 'notified'") == 0
    late = one(
        db,
        f"""SELECT avg((e.t BETWEEN TIMESTAMPTZ '2024-06-05 00:00:00+00' AND TIMESTAMPTZ '2024-06-21 00:00:00+00')::int)
            FROM ev e JOIN users u USING (user_id) WHERE e.type = 'notified' AND u.country IN ({eu})
            AND u.created_at < TIMESTAMPTZ '2024-05-01 00:00:00+00'""",
    )
    assert 0.02 < late < 0.09
    objected = one(db, "SELECT count(DISTINCT user_id) FROM ev WHERE type = 'objected'") / USERS
    assert 0.04 < objected < 0.08
    consent = one(db, "SELECT count(DISTINCT user_id) FROM ev WHERE type = 'consent_given'") / USERS
    assert 0.07 < consent < 0.13


# --------------------------------------------------------------------------- media


def test_media(out: Path, db: duckdb.DuckDBPyConnection) -> None:
    paths = [p for (p,) in db.execute("SELECT media_path FROM content WHERE media_path IS NOT NULL ORDER BY item_id").fetchall()]
    assert len(paths) == MEDIA
    assert one(db, "SELECT count(*) FROM content WHERE media_path IS NOT NULL AND kind <> 'photo'") == 0
    assert one(db, "SELECT bool_and(media_path = 'media/' || item_id || '.jpg') FROM content WHERE media_path IS NOT NULL")
    # The media go to the first photos in item order.
    last = one(db, "SELECT max(item_id) FROM content WHERE media_path IS NOT NULL")
    assert one(db, f"SELECT count(*) FROM content WHERE kind = 'photo' AND item_id < '{last}' AND media_path IS NULL") == 0
    assert sorted(p.name for p in (out / "media").iterdir()) == sorted(Path(p).name for p in paths)
    gps = 0
    sizes = set()
    for p in paths:
        with Image.open(out / p) as im:
            assert im.format == "JPEG"
            im.load()
            sizes.add(im.size)
            exif = im.getexif()
            info = exif.get_ifd(0x8825)
            if info:
                gps += 1
                assert info[1] in ("N", "S") and info[3] in ("E", "W")
                assert 0 <= float(info[2][0]) <= 90 and 0 <= float(info[4][0]) <= 180
                assert exif[0x010F] and exif[0x0110] and exif[0x0132]
    assert 0.25 * MEDIA < gps < 0.75 * MEDIA
    assert len(sizes) > 1


# --------------------------------------------------------------------------- realism


def test_user_shares(db: duckdb.DuckDBPyConnection) -> None:
    r = db.execute(
        """SELECT avg((email IS NULL)::int), avg((birth_date IS NULL)::int), avg((country IS NULL)::int),
                  avg((language IS NULL)::int), avg((deleted_at IS NOT NULL)::int),
                  avg((birth_date > DATE '2006-08-25')::int),
                  avg((birth_date BETWEEN DATE '2006-04-27' AND DATE '2006-08-25')::int)
           FROM users"""
    ).fetchone()
    email_null, birth_null, country_null, lang_null, deleted, minors, edge = r
    assert 0.05 < email_null < 0.11
    assert 0.03 < birth_null < 0.07
    assert 0.01 < country_null < 0.035
    assert 0.015 < lang_null < 0.05
    assert 0.01 < deleted < 0.035
    assert 0.04 < minors < 0.08
    assert 0.008 < edge < 0.025
    assert one(db, "SELECT min(birth_date) >= DATE '1939-06-26' AND max(birth_date) <= DATE '2011-06-26' FROM users")
    # Deletions before and after the cut-off.
    assert one(db, f"SELECT count(*) FROM users WHERE deleted_at < TIMESTAMPTZ '{T}'") > 5
    assert one(db, f"SELECT count(*) FROM users WHERE deleted_at > TIMESTAMPTZ '{T}'") > 5
    # Language follows country.
    assert one(db, "SELECT avg((language = 'de')::int) FROM users WHERE country = 'DE' AND language IS NOT NULL") > 0.85
    assert one(db, "SELECT avg((language IN ('nl', 'fr'))::int) FROM users WHERE country = 'BE' AND language IS NOT NULL") > 0.85
    countries = {c for (c,) in db.execute("SELECT DISTINCT country FROM users").fetchall()}
    assert {"DE", "FR", "NL", "IE", "GB", "CH", "US", "BR", "IN", "JP", "NO"} <= countries


def test_content_shares(db: duckdb.DuckDBPyConnection) -> None:
    per_user = one(db, "SELECT count(*) / (SELECT count(*) FROM users) FROM content")
    assert 16 < per_user < 24
    assert one(db, "SELECT count(*) FROM users WHERE user_id NOT IN (SELECT user_id FROM content)") > 0
    kinds = dict(db.execute("SELECT kind, count(*) / sum(count(*)) OVER () FROM content GROUP BY kind").fetchall())
    expected = {"post": 0.30, "photo": 0.20, "caption": 0.08, "comment": 0.22, "story": 0.08,
                "private_message": 0.10, "video": 0.015, "reel": 0.005}
    assert set(kinds) == set(expected)
    for k, share in expected.items():
        assert abs(kinds[k] - share) < max(0.3 * share, 0.004), k
    vis = dict(db.execute("SELECT visibility, count(*) / sum(count(*)) OVER () FROM content GROUP BY 1").fetchall())
    assert abs(vis["public"] - 0.55) < 0.05 and abs(vis["friends"] - 0.30) < 0.05 and abs(vis["private"] - 0.15) < 0.04
    after = one(db, f"SELECT avg((created_at > TIMESTAMPTZ '{T}')::int) FROM content")
    assert 0.01 < after < 0.08
    deleted = one(db, "SELECT avg((deleted_at IS NOT NULL)::int) FROM content")
    assert 0.02 < deleted < 0.04
    assert one(db, f"SELECT count(*) FROM content WHERE deleted_at > TIMESTAMPTZ '{T}'") > 10
    assert one(db, "SELECT avg((text IS NULL)::int) FROM content WHERE kind = 'photo'") > 0.6
    assert one(db, "SELECT avg((text IS NULL)::int) FROM content WHERE kind IN ('post', 'comment', 'private_message')") < 0.05


def test_texts_in_author_language(db: duckdb.DuckDBPyConnection) -> None:
    # Characteristic words of a few pools must only show up for authors of that language.
    assert one(db, "SELECT count(*) FROM content c JOIN users u USING (user_id) WHERE u.language = 'de' AND c.text LIKE '%Käsespätzle%'") > 0
    assert one(db, "SELECT count(*) FROM content c JOIN users u USING (user_id) WHERE u.language = 'nl' AND c.text LIKE '%Käsespätzle%'") == 0
    for lang in ("en", "de", "fr", "nl", "es", "it", "pl", "pt"):
        assert one(db, f"SELECT count(*) FROM content c JOIN users u USING (user_id) WHERE u.language = '{lang}' AND c.text IS NOT NULL") > 50


def _iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    digits = "".join(str(int(ch, 36)) for ch in s[4:] + s[:4])
    return int(digits) % 97 == 1


def _luhn_ok(number: str) -> bool:
    d = [int(c) for c in number.replace(" ", "")][::-1]
    return sum(x if i % 2 == 0 else (2 * x - 9 if x > 4 else 2 * x) for i, x in enumerate(d)) % 10 == 0


@pytest.mark.slow
def test_personal_data_in_texts(db: duckdb.DuckDBPyConnection) -> None:
    texts = [t for (t,) in db.execute("SELECT text FROM content WHERE text IS NOT NULL").fetchall()]
    n = len(texts)
    found = {
        "email": re.compile(r"[a-z]+\.[a-z]+\d*@[a-z.]+example|[a-z]+\.[a-z]+\d*@example\.[a-z]+"),
        "phone": re.compile(r"\+\d{1,3} \d{1,4} \d{4,8}|0\d{1,4}[- ]\d{6,8}"),
        "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        "card": re.compile(r"(?<![0-9A-Z] )\b[45]\d{3}(?: ?\d{4}){3}\b(?! \d)"),
    }
    hits = {k: [m.group(0) for t in texts for m in [rx.search(t)] if m] for k, rx in found.items()}
    for k, share in (("email", 0.02), ("phone", 0.02), ("iban", 0.01), ("card", 0.005)):
        assert 0.4 * share * n < len(hits[k]) < 3 * share * n, k
    assert all(_iban_ok(i) for i in hits["iban"])
    assert all(_luhn_ok(c) for c in hits["card"])
    assert any(" " in i for i in hits["iban"]) and any(" " not in i for i in hits["iban"])
    assert _iban_ok("NL91ABNA0417164300") and _iban_ok("DE89370400440532013000")


def test_every_rule_is_exercised(db: duckdb.DuckDBPyConnection) -> None:
    """Each person/content rule of CONTRACT §3 has public, pre-cut-off, live items that hit it."""
    live = f"c.visibility = 'public' AND c.created_at <= TIMESTAMPTZ '{T}' AND (c.deleted_at IS NULL OR c.deleted_at > TIMESTAMPTZ '{T}')"
    db.execute(f"CREATE OR REPLACE TEMP VIEW live AS SELECT c.*, u.birth_date, u.country, u.deleted_at AS u_deleted FROM content c JOIN users u USING (user_id) WHERE {live}")
    eu = ", ".join(f"'{c}'" for c in EUROPE)
    checks = {
        "kind_not_allowed": "SELECT count(*) FROM content WHERE kind IN ('video', 'reel') AND visibility = 'public'",
        "after_cutoff": f"SELECT count(*) FROM content WHERE visibility = 'public' AND created_at > TIMESTAMPTZ '{T}'",
        "content_deleted": f"SELECT count(*) FROM content WHERE visibility = 'public' AND deleted_at <= TIMESTAMPTZ '{T}'",
        "account_deleted": f"SELECT count(*) FROM live WHERE u_deleted <= TIMESTAMPTZ '{T}'",
        "erasure": f"SELECT count(*) FROM live WHERE user_id IN (SELECT user_id FROM ev WHERE type = 'erasure_requested' AND t <= TIMESTAMPTZ '{T}')",
        "age_unknown": "SELECT count(*) FROM live WHERE birth_date IS NULL",
        "minor": "SELECT count(*) FROM live WHERE birth_date > DATE '2006-06-26'",
        "minor_at_posting": "SELECT count(*) FROM live WHERE birth_date <= DATE '2006-06-26' AND created_at < birth_date + INTERVAL 18 YEAR",
        "turned_18_exactly": "SELECT count(*) FROM users WHERE birth_date = DATE '2006-06-26'",
        "objected": f"SELECT count(*) FROM live WHERE user_id IN (SELECT user_id FROM ev WHERE type = 'objected' AND t <= TIMESTAMPTZ '{T}')",
        "objection_lifted": f"SELECT count(*) FROM live WHERE user_id IN (SELECT user_id FROM ev WHERE type IN ('objection_withdrawn', 'objection_rejected') AND t <= TIMESTAMPTZ '{T}')",
        "consent": f"SELECT count(*) FROM live WHERE user_id IN (SELECT user_id FROM ev WHERE type = 'consent_given' AND t <= TIMESTAMPTZ '{T}')",
        "not_notified": f"SELECT count(*) FROM live WHERE country IN ({eu}) AND user_id NOT IN (SELECT user_id FROM ev WHERE type = 'notified' AND t <= TIMESTAMPTZ '2024-05-27 00:00:00+00')",
        "tagged_minor": "SELECT count(*) FROM live l JOIN tags t USING (item_id) JOIN users u ON u.user_id = t.tagged_user_id WHERE u.birth_date > DATE '2006-06-26'",
        "tagged_objector": "SELECT count(*) FROM live l JOIN tags t USING (item_id) WHERE t.tagged_user_id IN (SELECT user_id FROM ev WHERE type = 'objected')",
    }
    for rule, sql in checks.items():
        assert one(db, sql) > 0, rule


def test_an_interrupted_run_leaves_nothing_behind(tmp_path):
    from consentry.generate import generate

    def boom(done: int) -> None:
        raise KeyboardInterrupt

    target = tmp_path / "export"
    with pytest.raises(KeyboardInterrupt):
        generate(target, users=300, seed=1, media=2, chunk_users=100, progress=boom)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "words"), [
    (["--users", "-5"], "users must be at least 1, got -5"),
    (["--users", "10", "--media", "-1"], "media must be 0 or more, got -1"),
])
def test_the_command_refuses_bad_arguments_before_it_draws_a_progress_bar(tmp_path: Path, args, words) -> None:
    """The bar used to appear first ("generating people 0/-5"), then the refusal."""
    from cli_kit import cli

    r = cli("generate", "--out", tmp_path / "g", *args)
    assert r.exit_code == 2 and words in r.stderr, r.output
    assert "generating people" not in r.output and not (tmp_path / "g").exists()


def test_the_progress_bar_shows_words_not_markup(tmp_path: Path) -> None:
    """The consoles print as is (no rich markup), so a bar column given as a
    markup string showed "[progress.description]generating people"."""
    from cli_kit import cli

    r = cli("generate", "--out", tmp_path / "g", "--users", "5", "--media", "0")
    assert r.exit_code == 0, r.output
    assert "generating people" in r.stderr and "[progress" not in r.stderr, r.stderr
    r = cli("generate", "--out", tmp_path / "one", "--users", "1", "--media", "1")
    assert r.exit_code == 0 and " ".join(r.stdout.split()).startswith("wrote 1 user, "), r.output  # not "1 users"
