"""consentry's PII redaction against Microsoft Presidio, side by side, on a
labelled corpus of real text (issue #12, point 4).

    apt-get install -y fortunes fortunes-de fortunes-es fortunes-it fortunes-pl fortunes-br
    pip install -e '.[bench]'        # presidio-analyzer, phonenumbers
    python benchmarks/redaction.py                       # 20,000 texts, seed 12
    python benchmarks/redaction.py --show-errors         # + consentry's misses and false positives
    python benchmarks/redaction.py --oracle-countries    # + a consentry run told each author's country
    python benchmarks/redaction.py --breakdown --repeat 3   # + consentry per kind; fastest of 3 timings
    python benchmarks/redaction.py --n 2000 --no-md      # a quick look, results file left alone
    python benchmarks/redaction.py --scale 300000        # + both on 300,000 texts as shipped

The corpus (benchmarks/redaction_corpus.py): Debian's fortune cookies, with
emails, phone numbers, IBANs and card numbers injected at known places, plus
look-alikes that must not be redacted.

consentry: `redact_texts(texts)` over the whole corpus in one call is timed
(as the snapshot build does it); `find_pii(texts)` gives the detections that
are scored. countries=None in the main run. consentry's in-process caches are
emptied before each timed run. Both are also timed on the same texts as
shipped, before injection (real text has far fewer numbers).

Presidio: presidio-analyzer's pattern recognizers, called directly, one text
at a time, the way AnalyzerEngine calls them, without an NLP engine (no spaCy
model can be downloaded here, and these four recognizers need none):
EmailRecognizer, PhoneRecognizer, IbanRecognizer, CreditCardRecognizer, each
`rec.analyze(text, entities=rec.supported_entities, nlp_artifacts=None)`,
then `EntityRecognizer.remove_duplicates` over the results as AnalyzerEngine
does, and every result kept whatever its score (AnalyzerEngine's default
threshold is 0). Presidio only analyses: the replacing that
consentry's timed call also does is not charged to it. EmailRecognizer
validates the domain with tldextract, which would try to download the public
suffix list; it is given tldextract's bundled snapshot of that list instead
(the same list, offline). PhoneRecognizer runs with its default regions
(US, GB, DE, FR, IL, IN, CA, BR) and, as a second row, with every region the
corpus's phone numbers come from.

Scoring, per kind (email, phone, iban, card):
- a labelled value is found (true positive) if a detection of the same kind
  covers it, ignoring non-alphanumeric characters at the label's ends (a
  detection may leave out a leading "+" or "(" and may take in surrounding
  spaces or punctuation);
- a detection is correct if it overlaps a labelled value of its kind, and a
  false positive otherwise; false positives are split by where they land: on
  an injected look-alike, on a labelled value of another kind (redacted, under
  the wrong placeholder), or elsewhere in the real text;
- recall = found / labelled, precision = correct / detections.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import platform
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redaction_corpus as rc

KINDS = rc.POSITIVE_KINDS
PRESIDIO_KIND = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "IBAN_CODE": "iban", "CREDIT_CARD": "card"}


@dataclass
class Det:
    row: int
    kind: str
    start: int
    end: int


# --------------------------------------------------------------------------- CPU accounting


class CpuMeter:
    """Share of the machine's CPU time used by other processes while a phase ran:
    /proc/stat's busy time across all CPUs, less this process's own CPU time,
    over the phase's wall time x CPUs."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.ncpu = os.cpu_count() or 1

    @staticmethod
    def _stat() -> tuple[int, int]:
        with open("/proc/stat") as f:
            parts = [int(x) for x in f.readline().split()[1:9]]
        total = sum(parts)
        idle = parts[3] + parts[4]
        return total, total - idle

    def start(self):
        t = os.times()
        return (time.perf_counter(), *self._stat(), t.user + t.system)

    def stop(self, s) -> dict:
        wall0, total0, busy0, own0 = s
        t = os.times()
        wall = time.perf_counter() - wall0
        total1, busy1 = self._stat()
        own = t.user + t.system - own0
        dtotal = (total1 - total0) / self.tick
        dbusy = (busy1 - busy0) / self.tick
        return {"wall": wall, "own_cpu": own, "others_share": max(0.0, dbusy - own) / dtotal if dtotal > 0 else 0.0}


# --------------------------------------------------------------------------- the two tools


def load_consentry():
    """consentry.snapshots.redact's find_pii and redact_texts, or None if not there (yet)."""
    try:
        mod = importlib.import_module("consentry.snapshots.redact")
        mod = importlib.reload(mod)
    except Exception as e:  # noqa: BLE001
        print(f"consentry.snapshots.redact cannot be imported: {e!r}", file=sys.stderr)
        return None
    if not (hasattr(mod, "find_pii") and hasattr(mod, "redact_texts")):
        return None
    return mod


def consentry_detections(mod, texts: list[str], countries=None) -> tuple[list[Det], int, dict]:
    """find_pii's rows as spans. A value stands for every place it occurs in
    its text (redaction replaces them all). Also returns how many values are
    not in their text, and the values per row (for the consistency check)."""
    table = mod.find_pii(texts, countries=countries)
    rows = table.column("row").to_pylist()
    kinds = table.column("kind").to_pylist()
    values = table.column("value").to_pylist()
    out: list[Det] = []
    unlocated = 0
    per_row: dict[int, list[tuple[str, str]]] = collections.defaultdict(list)
    for r, k, v in zip(rows, kinds, values):
        per_row[r].append((k, v))
        text = texts[r] or ""
        if not v or v not in text:
            unlocated += 1
            continue
        pos = text.find(v)
        while pos >= 0:
            out.append(Det(r, k, pos, pos + len(v)))
            pos = text.find(v, pos + len(v))
    return out, unlocated, per_row


def _inconsistent_rows(texts, redacted, per_row, order=("email", "iban", "card", "phone")) -> list[int]:
    """Rows where redact_texts' output is not what replacing find_pii's values
    (kind by kind, longest first, as redact.py documents) gives."""
    ph = {"email": "[email]", "phone": "[phone]", "iban": "[iban]", "card": "[card]"}
    bad = []
    for i, (a, b) in enumerate(zip(texts, redacted)):
        if a is None:
            continue
        x = a
        for kind in order:
            for v in sorted({v for k, v in per_row.get(i, []) if k == kind}, key=lambda v: (-len(v), v)):
                x = x.replace(v, ph[kind])
        if x != b:
            bad.append(i)
    return bad


def consentry_regions() -> tuple[str, ...]:
    """The regions consentry reads a number without a country code in (when no country is given)."""
    try:
        pii = importlib.import_module("consentry.snapshots.pii")
        return tuple(getattr(pii, "DEFAULT_REGIONS", ()))
    except Exception:  # noqa: BLE001
        return ()


def presidio_setup(regions: tuple[str, ...] | None):
    import logging

    import tldextract
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
    )
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    offline = tldextract.TLDExtract(suffix_list_urls=())  # the bundled public suffix list, no download
    email_recognizer.tldextract = types.SimpleNamespace(extract=offline)
    phone = PhoneRecognizer() if regions is None else PhoneRecognizer(supported_regions=list(regions))
    recs = [EmailRecognizer(), phone, IbanRecognizer(), CreditCardRecognizer()]
    return recs, EntityRecognizer.remove_duplicates


def presidio_detections(recs, dedupe, texts: list[str]) -> list[Det]:
    out: list[Det] = []
    for row, text in enumerate(texts):
        if not text:
            continue
        results = []
        for rec in recs:
            results += rec.analyze(text, entities=rec.supported_entities, nlp_artifacts=None)
        for r in dedupe(results):
            out.append(Det(row, PRESIDIO_KIND[r.entity_type], r.start, r.end))
    return out


# --------------------------------------------------------------------------- scoring


def _core(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and not text[a].isalnum():
        a += 1
    while b > a and not text[b - 1].isalnum():
        b -= 1
    return a, b


def score(items: list[rc.Item], dets: list[Det]) -> dict:
    by_row: dict[int, list[Det]] = collections.defaultdict(list)
    for d in dets:
        by_row[d.row].append(d)
    found = collections.Counter()
    found_any = collections.Counter()
    labelled = collections.Counter()
    n_det = collections.Counter()
    correct = collections.Counter()
    overlong = collections.Counter()
    fp_where = {k: collections.Counter() for k in KINDS}
    fp_lookalike = collections.Counter()
    misses: list[tuple[rc.Item, rc.Label, list[Det]]] = []
    fps: list[tuple[rc.Item, Det, str]] = []
    form_total = collections.Counter()
    form_found = collections.Counter()
    for row, item in enumerate(items):
        ds = by_row.get(row, [])
        for lb in item.labels:
            if not lb.positive:
                continue
            labelled[lb.kind] += 1
            fam = _form_family(lb.form)
            form_total[fam] += 1
            a, b = _core(item.text, lb.start, lb.end)
            hit = [d for d in ds if d.kind == lb.kind and d.start <= a and d.end >= b]
            if hit:
                found[lb.kind] += 1
                form_found[fam] += 1
                extra = item.text[hit[0].start:lb.start] + item.text[lb.end:hit[0].end]
                if any(c.isalnum() for c in extra):
                    overlong[lb.kind] += 1
            else:
                misses.append((item, lb, [d for d in ds if d.start < lb.end and d.end > lb.start]))
            if any(d.start <= a and d.end >= b for d in ds):
                found_any[lb.kind] += 1
        for d in ds:
            over = [lb for lb in item.labels if lb.start < d.end and lb.end > d.start]
            if any(lb.positive and lb.kind == d.kind for lb in over):
                n_det[d.kind] += 1
                correct[d.kind] += 1
                continue
            if any(lb.kind == "neutral" for lb in over):
                continue  # a Message-ID or user@IP in the real text: neither right nor wrong
            n_det[d.kind] += 1
            if any(not lb.positive for lb in over):
                fp_lookalike[next(lb.kind for lb in over if not lb.positive)] += 1
                where = "look-alike:" + next(lb.kind for lb in over if not lb.positive)
            elif over:
                where = "other-kind:" + over[0].kind
            else:
                where = "real-text"
            fp_where[d.kind][where.split(":")[0]] += 1
            fps.append((item, d, where))
    return {"found": found, "found_any": found_any, "labelled": labelled, "n_det": n_det, "correct": correct,
            "overlong": overlong, "fp_where": fp_where, "fp_lookalike": fp_lookalike, "misses": misses, "fps": fps,
            "form_total": form_total, "form_found": form_found}


def _form_family(form: str) -> str:
    parts = form.split("/")
    if parts[0] == "phone" and len(parts) == 4:  # phone/REGION/type/FORMAT -> phone/REGION/FORMAT
        return f"phone/{parts[1]}/{parts[3]}"
    if parts[0] == "card":
        return "card/" + "/".join(p for p in parts[1:] if p in ("spaces", "dashes", "compact", "nbsp") or "expiry" in p) \
            + ("+expiry" if "expiry" in form and not parts[-1].endswith("expiry") else "")
    if parts[0] == "iban":
        return "iban/" + parts[-1]
    return form


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "–"


def summary(s: dict) -> dict:
    tot_found = sum(s["found"].values())
    tot_lab = sum(s["labelled"].values())
    tot_correct = sum(s["correct"].values())
    tot_det = sum(s["n_det"].values())
    return {"recall": tot_found / tot_lab if tot_lab else 0, "precision": tot_correct / tot_det if tot_det else 0,
            "found": tot_found, "labelled": tot_lab, "correct": tot_correct, "detections": tot_det}


# --------------------------------------------------------------------------- reporting


def _show(text: str, a: int, b: int, ctx: int = 40) -> str:
    left = text[max(0, a - ctx):a].replace("\n", "⏎")
    right = text[b:b + ctx].replace("\n", "⏎")
    mid = text[a:b].replace("\u00a0", "⍽").replace("\u202f", "⍽")
    return f"…{left}⟦{mid}⟧{right}…"


def print_errors(name: str, s: dict, limit: int) -> None:
    print(f"\n=== {name}: misses (first {limit} of {len(s['misses'])}) ===")
    # spread over kinds and forms: round-robin over form families
    by_fam: dict[str, list] = collections.defaultdict(list)
    for m in s["misses"]:
        by_fam[_form_family(m[1].form)].append(m)
    shown = 0
    fams = sorted(by_fam, key=lambda f: -len(by_fam[f]))
    i = 0
    while shown < limit and any(i < len(by_fam[f]) for f in fams):
        for f in fams:
            if i < len(by_fam[f]) and shown < limit:
                item, lb, near = by_fam[f][i]
                got = ", ".join(f"{d.kind}:{item.text[d.start:d.end]!r}" for d in near) or "nothing"
                print(f"- [{lb.kind} {lb.form}] {lb.value!r}  got {got}\n    {_show(item.text, lb.start, lb.end)}")
                shown += 1
        i += 1
    print(f"\n=== {name}: false positives (first {limit} of {len(s['fps'])}) ===")
    by_where: dict[str, list] = collections.defaultdict(list)
    for fp in s["fps"]:
        by_where[fp[2]].append(fp)
    shown, i = 0, 0
    wheres = sorted(by_where, key=lambda w: -len(by_where[w]))
    while shown < limit and any(i < len(by_where[w]) for w in wheres):
        for w in wheres:
            if i < len(by_where[w]) and shown < limit:
                item, d, where = by_where[w][i]
                print(f"- [{d.kind} on {where}] {item.text[d.start:d.end]!r}  ({item.source})\n    {_show(item.text, d.start, d.end)}")
                shown += 1
        i += 1
    print(f"\n=== {name}: recall by written form (families with misses) ===")
    rows = [(f, s["form_found"][f], s["form_total"][f]) for f in s["form_total"] if s["form_found"][f] < s["form_total"][f]]
    for f, a, b in sorted(rows, key=lambda r: (r[0].split("/")[0], r[1] / r[2])):
        print(f"  {f:45s} {a:5d}/{b:<5d} {_pct(a, b)}")


WARM_UP = ["call me on +1 617-653-3040 or (617) 653-3040", "IBAN DE89 3704 0044 0532 0130 00", "mail a.b@example.org",
           "card 4111 1111 1111 1111 03/27", "ruf an: 030 1234567, 06 12 34 56 78, 98765 43210", None]


def clear_consentry_caches() -> None:
    """Empty consentry's in-process caches of answers about texts, so that no
    timed run reads answers an earlier run computed. (libphonenumber's metadata
    turned into patterns, in `consentry.snapshots.phones`, is kept, as
    Presidio keeps its recognizers and their compiled patterns.)"""
    for name in ("consentry.snapshots.pii", "consentry.snapshots.redact", "consentry.snapshots.mentions"):
        m = sys.modules.get(name)
        for obj in vars(m).values() if m else ():
            if callable(getattr(obj, "cache_clear", None)):
                obj.cache_clear()


def consentry_breakdown(mod, meter: CpuMeter, texts, repeat: int) -> dict[str, float]:
    """redact_texts' time with one kind of redaction switched on at a time (and none)."""
    from consentry.policy import Transforms

    out = {}
    flags = {"email": "redact_emails", "phone": "redact_phones", "iban": "redact_ibans", "card": "redact_cards"}
    for name, on in [("nothing", None)] + [(k, f) for k, f in flags.items()]:
        t = Transforms(**{f: (f == on) for f in flags.values()}, mentions=False)
        _, cpu = timed(meter, repeat, lambda t=t: mod.redact_texts(texts, transforms=t), before=clear_consentry_caches)
        out[name] = cpu["wall"]
    return out


def timed(meter: CpuMeter, repeat: int, fn, before=None):
    """fn's result and the CPU record of its fastest of `repeat` runs."""
    best = None
    for _ in range(max(1, repeat)):
        if before:
            before()
        s = meter.start()
        result = fn()
        cpu = meter.stop(s)
        if best is None or cpu["wall"] < best["wall"]:
            best = cpu
    return result, best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="texts in the corpus (default 20000)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--show-errors", action="store_true", help="print consentry's misses and false positives")
    ap.add_argument("--show-presidio-errors", action="store_true", help="the same for Presidio (default regions)")
    ap.add_argument("--errors-limit", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=1, help="time each contender this many times, keep the fastest (default 1)")
    ap.add_argument("--oracle-countries", action="store_true",
                    help="also run consentry with countries= each text's injected phone region (else its language's country)")
    ap.add_argument("--no-presidio-consentry-regions", action="store_true",
                    help="skip the Presidio run whose PhoneRecognizer gets consentry's regions")
    ap.add_argument("--presidio-corpus-regions", action="store_true",
                    help="also run Presidio with every region the corpus's phone numbers come from")
    ap.add_argument("--presidio-only", action="store_true", help="do not run consentry")
    ap.add_argument("--no-clean-timing", action="store_true",
                    help="skip timing both on the texts as shipped, before injection")
    ap.add_argument("--breakdown", action="store_true", help="also time consentry with one kind of redaction at a time")
    ap.add_argument("--write-md", type=Path, default=None,
                    help="also write the markdown section to this file (the figures live in benchmarks/README.md)")
    ap.add_argument("--no-md", action="store_true")
    ap.add_argument("--scale", type=int, default=0,
                    help="also time both on the cookies as shipped, repeated to this many texts (e.g. 300000)")
    args = ap.parse_args()

    try:
        import phonenumbers  # noqa: F401
        import presidio_analyzer  # noqa: F401
    except ImportError as e:
        print(f"{e}. Install the bench extra: pip install -e '.[bench]' (presidio-analyzer, phonenumbers)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        items = rc.build_corpus(args.n, args.seed)
    except rc.CorpusMissing as e:
        print(e, file=sys.stderr)
        return 2
    texts = [it.text for it in items]
    n = len(texts)
    n_chars = sum(len(t) for t in texts)
    lab = collections.Counter(lb.kind for it in items for lb in it.labels if lb.positive)
    neg = collections.Counter(lb.kind for it in items for lb in it.labels if not lb.positive and lb.kind != "neutral")
    neutral = sum(1 for it in items for lb in it.labels if lb.kind == "neutral")
    in_source = collections.Counter(lb.kind for it in items for lb in it.labels if lb.positive and lb.form.endswith("in-source-text"))
    langs = collections.Counter(it.lang for it in items)
    clean = sum(1 for it in items if not it.labels)
    print(f"corpus: {n} texts ({n_chars / n:.0f} chars on average; {clean} with nothing injected) built in "
          f"{time.perf_counter() - t0:.1f}s; languages {dict(langs)}")
    print(f"labelled positives {dict(lab)} (of which already in the real text: {dict(in_source)}); "
          f"look-alikes {sum(neg.values())} {dict(neg)}; neutral (Message-IDs, user@IP) {neutral}")

    meter = CpuMeter()
    runs: dict[str, dict] = {}

    mod = None if args.presidio_only else load_consentry()
    if mod is None and not args.presidio_only:
        print("consentry.snapshots.redact has no find_pii/redact_texts yet: running Presidio only", file=sys.stderr)
    if mod is not None:
        mod.redact_texts(WARM_UP)  # imports, phonenumbers' metadata, a first DuckDB connection
        redacted, cpu = timed(meter, args.repeat, lambda: mod.redact_texts(texts), before=clear_consentry_caches)
        clear_consentry_caches()
        s2 = meter.start()
        dets, unlocated, per_row = consentry_detections(mod, texts)
        cpu_find = meter.stop(s2)
        assert len(redacted) == n
        mismatched = len(_inconsistent_rows(texts, redacted, per_row))
        runs["consentry"] = {"label": "consentry (countries=None)", "dets": dets, "cpu": cpu, "unlocated": unlocated,
                             "find_pii_s": cpu_find["wall"], "mismatched": mismatched}
        print(f"consentry redact_texts: {cpu['wall']:.2f}s, {n / cpu['wall']:,.0f} texts/s; find_pii {cpu_find['wall']:.2f}s; "
              f"other processes {100 * cpu['others_share']:.1f}% of the CPU; {unlocated} find_pii values not in their text; "
              f"{mismatched} rows where redact_texts differs from replacing find_pii's values")
        if args.breakdown:
            runs_bd = consentry_breakdown(mod, meter, texts, args.repeat)
            for k, sec in runs_bd.items():
                print(f"  consentry redact_texts with only {k}: {sec:.2f}s")
            runs["consentry"]["breakdown"] = runs_bd
        if args.oracle_countries:
            countries = [it.oracle_country for it in items]
            _, cpu_o = timed(meter, args.repeat, lambda: mod.redact_texts(texts, countries=countries), before=clear_consentry_caches)
            dets_o, unl_o, _ = consentry_detections(mod, texts, countries=countries)
            runs["consentry-oracle"] = {"label": "consentry (countries = each text's phone region, else its language's country)",
                                        "dets": dets_o, "cpu": cpu_o, "unlocated": unl_o}
            print(f"consentry with countries: {cpu_o['wall']:.2f}s, {n / cpu_o['wall']:,.0f} texts/s")

    recs, dedupe = presidio_setup(None)
    presidio_detections(recs, dedupe, WARM_UP)  # phonenumbers' metadata, tldextract's list
    dets_p, cpu_p = timed(meter, args.repeat, lambda: presidio_detections(recs, dedupe, texts))
    regions_default = tuple(recs[1].supported_regions)
    runs["presidio"] = {"label": f"Presidio, default phone regions ({', '.join(regions_default)})", "dets": dets_p, "cpu": cpu_p}
    print(f"presidio (default regions): {cpu_p['wall']:.2f}s, {n / cpu_p['wall']:,.0f} texts/s; "
          f"other processes {100 * cpu_p['others_share']:.1f}% of the CPU")
    extra_regions = []
    if not args.no_presidio_consentry_regions:
        regions_c = consentry_regions()
        if regions_c:
            extra_regions.append(("presidio-same", regions_c, f"Presidio, phone regions = consentry's {len(regions_c)} ({', '.join(regions_c)})"))
    if args.presidio_corpus_regions:
        extra_regions.append(("presidio-all", tuple(rc.PHONE_REGIONS), f"Presidio, phone regions = all {len(rc.PHONE_REGIONS)} corpus regions"))
    for key, regions, label in extra_regions:
        recs2, _ = presidio_setup(regions)
        presidio_detections(recs2, dedupe, WARM_UP)
        dets_p2, cpu_p2 = timed(meter, args.repeat, lambda recs2=recs2: presidio_detections(recs2, dedupe, texts))
        runs[key] = {"label": label, "dets": dets_p2, "cpu": cpu_p2}
        print(f"{label}: {cpu_p2['wall']:.2f}s, {n / cpu_p2['wall']:,.0f} texts/s")

    if not args.no_clean_timing:
        originals = [it.original for it in items]
        if mod is not None:
            _, c1 = timed(meter, args.repeat, lambda: mod.redact_texts(originals), before=clear_consentry_caches)
            runs["consentry"]["clean"] = c1
        _, c2 = timed(meter, args.repeat, lambda: presidio_detections(recs, dedupe, originals))
        runs["presidio"]["clean"] = c2
        print(f"the same {n} texts as shipped (nothing injected): "
              + (f"consentry {c1['wall']:.2f}s, " if mod is not None else "") + f"Presidio {c2['wall']:.2f}s")

    for r in runs.values():
        r["score"] = score(items, r["dets"])
        r["sum"] = summary(r["score"])

    md = render_md(args, items, n, n_chars, lab, neg, langs, clean, runs, in_source, neutral)
    print()
    print(md)
    if args.show_errors and "consentry" in runs:
        print_errors("consentry (countries=None)", runs["consentry"]["score"], args.errors_limit)
    if args.show_presidio_errors:
        print_errors("Presidio (default regions)", runs["presidio"]["score"], args.errors_limit)
    if args.write_md and not args.no_md:
        args.write_md.write_text(md)
        print(f"\nwritten to {args.write_md}")
    if args.scale and mod is not None:
        scale_run(mod, meter, recs, dedupe, args.scale, args.repeat)
    return 0


def scale_run(mod, meter: "CpuMeter", recs, dedupe, n: int, repeat: int = 1) -> None:
    """Both on the cookies as shipped, repeated to n texts: a build hands consentry
    a whole column at once, so its fixed cost per call (compiling libphonenumber's
    patterns) weighs less than on 20,000 texts."""
    base = [t for t, _, _ in rc.load_fortunes(rc.FORTUNE_DIR)]
    texts = (base * (n // len(base) + 1))[:n]
    import pyarrow as pa

    column = pa.array(texts, pa.string())  # what a build hands the engine: a column, not Python strings
    _, c1 = timed(meter, repeat, lambda: mod.redact_texts(texts), before=clear_consentry_caches)
    _, c0 = timed(meter, repeat, lambda: mod.redact_texts(column), before=clear_consentry_caches)
    _, c2 = timed(meter, repeat, lambda: presidio_detections(recs, dedupe, texts))
    print(f"\nscale (fastest of {repeat}): {n:,} texts as shipped ({len(base):,} cookies repeated): consentry {c1['wall']:.2f}s "
          f"{n / c1['wall']:,.0f} texts/s (given an Arrow column: {c0['wall']:.2f}s, {c2['wall'] / c0['wall']:.1f}x); "
          f"Presidio (default regions) {c2['wall']:.2f}s {n / c2['wall']:,.0f} texts/s; "
          f"{c2['wall'] / c1['wall']:.1f}x; other processes {100 * c1['others_share']:.1f}% / {100 * c2['others_share']:.1f}% of the CPU")


def render_md(args, items, n, n_chars, lab, neg, langs, clean, runs, in_source, neutral) -> str:
    cmd = "python benchmarks/redaction.py " + " ".join(sys.argv[1:])
    out = ["## `redaction.py`: PII redaction against Presidio", ""]
    out.append(f"```bash\n{cmd.strip()}\n```\n")
    out.append(
        f"Corpus: {n:,} real texts, Debian's fortune cookies (`apt-get install -y {' '.join(rc.APT_PACKAGES)}`; "
        f"languages: " + ", ".join(f"{k} {v:,}" for k, v in langs.most_common()) + f"; {n_chars / n:.0f} characters on average), "
        f"sampled with seed {args.seed}. Injected at word boundaries in realistic phrasings: "
        + ", ".join(f"{v:,} {k}" for k, v in lab.items()) + " labelled values (of which "
        + ", ".join(f"{v:,} {k}" for k, v in in_source.items()) + " were already in the real text, written by real people), "
        f"and {sum(neg.values()):,} look-alikes that must not be redacted ({', '.join(f'{k} {v}' for k, v in neg.most_common())}); "
        f"{neutral} Message-IDs and user@IP hostmasks in the real text count neither way; {clean:,} texts have nothing injected. "
        "See `benchmarks/redaction_corpus.py` for every written form.\n")
    names = [k for k in ("consentry", "presidio", "presidio-same", "presidio-all", "consentry-oracle") if k in runs]
    hdr = "| kind | labelled | " + " | ".join(f"{_short(k)} recall | {_short(k)} precision" for k in names) + " |"
    out.append(hdr)
    out.append("|---|---:|" + "---:|---:|" * len(names))
    for kind in KINDS:
        row = f"| {kind} | {lab[kind]:,} |"
        for k in names:
            s = runs[k]["score"]
            row += f" {_pct(s['found'][kind], s['labelled'][kind])} | {_pct(s['correct'][kind], s['n_det'][kind])} |"
        out.append(row)
    row = f"| **overall** | **{sum(lab[k] for k in KINDS):,}** |"
    for k in names:
        sm = runs[k]["sum"]
        row += f" **{100 * sm['recall']:.1f}%** | **{100 * sm['precision']:.1f}%** |"
    out.append(row)
    out.append("")
    if "consentry" in runs:
        out.append(goals_md(runs, n))
    out.append(f"Timing: fastest of {max(1, args.repeat)} run(s) each, after a warm-up on a few texts outside the corpus; "
               "consentry's in-process caches, if any, are emptied before every timed run (libphonenumber's metadata, turned into tables of keys once per process, is kept, as Presidio keeps its compiled patterns).\n")
    out.append("| run | seconds | texts/s | × Presidio (default regions) | other processes' CPU | false positives: look-alike / other kind / real text | over-long hits |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    base = runs["presidio"]["cpu"]["wall"]
    for k in names:
        r = runs[k]
        w = r["cpu"]["wall"]
        fw = collections.Counter()
        for kind in KINDS:
            fw.update(r["score"]["fp_where"][kind])
        out.append(f"| {r['label']} | {w:.2f} | {n / w:,.0f} | {base / w:.1f}× | {100 * r['cpu']['others_share']:.1f}% | "
                   f"{fw['look-alike']} / {fw['other-kind']} / {fw['real-text']} | {sum(r['score']['overlong'].values())} |")
    out.append("")
    if "clean" in runs["presidio"]:
        pc = runs["presidio"]["clean"]
        row = f"On the same {n:,} texts as shipped, before anything is injected (real text: few numbers, fewer addresses): Presidio "
        row += f"(default regions) {pc['wall']:.2f} s, {n / pc['wall']:,.0f} texts/s"
        if "consentry" in runs and "clean" in runs["consentry"]:
            cc = runs["consentry"]["clean"]
            row += (f"; consentry {cc['wall']:.2f} s, {n / cc['wall']:,.0f} texts/s, {pc['wall'] / cc['wall']:.1f}× Presidio "
                    f"(other processes' CPU {100 * cc['others_share']:.1f}% / {100 * pc['others_share']:.1f}%)")
        out.append(row + ".\n")
    if "consentry" in runs:
        c = runs["consentry"]
        out.append(f"consentry's `find_pii` over the same texts (caches emptied first) took {c['find_pii_s']:.2f} s. Consistency: {c['unlocated']} "
                   f"find_pii values are not in their text; in {c['mismatched']} rows `redact_texts` differs from "
                   "replacing find_pii's values kind by kind (email, iban, card, phone; longest first).\n")
        if "breakdown" in c:
            out.append("consentry's `redact_texts` with one kind switched on at a time (seconds): "
                       + ", ".join(f"{k} {v:.2f}" for k, v in c["breakdown"].items()) + ".\n")
    out.append("False positives on the look-alikes, by kind:\n")
    out.append("| look-alike | n | " + " | ".join(_short(k) for k in names) + " |")
    out.append("|---|---:|" + "---:|" * len(names))
    for kind, cnt in neg.most_common():
        out.append(f"| {kind} | {cnt:,} | " + " | ".join(str(runs[k]["score"]["fp_lookalike"][kind]) for k in names) + " |")
    out.append("")
    out.append(
        "consentry is timed on `redact_texts(texts)`, the whole corpus in one call (it also replaces; Presidio only "
        "analyses); its detections come from `find_pii(texts)`. Presidio is its four pattern recognizers (Email, Phone, "
        "Iban, CreditCard) called directly per text with `nlp_artifacts=None`, then `remove_duplicates` as AnalyzerEngine "
        "does, no score threshold, no spaCy model; EmailRecognizer's tldextract uses its bundled public suffix list. "
        "The default-regions row is Presidio as shipped; the consentry-regions row gives its PhoneRecognizer the regions "
        "consentry itself tries for a number written without a country code (`consentry.snapshots.pii.DEFAULT_REGIONS`), "
        "which is the like-for-like comparison: both then know the same countries, and neither is told the author's "
        "(countries=None). The corpus's numbers come from " + ", ".join(rc.PHONE_REGIONS) + ".")
    out.append("")
    out.append(
        "A labelled value counts as found if a detection of the same kind covers it, ignoring non-alphanumeric "
        "characters at the label's ends; a detection is a false positive if it overlaps no labelled value of its kind. "
        "\"Over-long hits\" are found values whose detection also took in letters or digits beyond the label (e.g. a "
        "card's expiry date). \"Other processes' CPU\" is /proc/stat's busy time on all CPUs less this process's "
        f"own, over the phase's wall time × {os.cpu_count()} CPUs. Machine: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}.")
    out.append("")
    return "\n".join(out)


def goals_md(runs: dict, n: int) -> str:
    """Issue #12's goals, checked against this run."""
    c = runs["consentry"]["score"]
    rec = lambda s, k: s["found"][k] / s["labelled"][k] if s["labelled"][k] else 0
    lines = ["Against the goals (consentry, countries=None):", ""]
    for key in ("presidio", "presidio-same"):
        if key not in runs:
            continue
        p = runs[key]["score"]
        worse = [f"{k} {100 * rec(c, k):.1f}% < {100 * rec(p, k):.1f}%" for k in KINDS if rec(c, k) < rec(p, k)]
        lines.append(f"- recall ≥ {_short(key)} per kind: " + ("yes" if not worse else "no (" + "; ".join(worse) + ")"))
    sm = runs["consentry"]["sum"]
    lines.append(f"- overall recall ≥ 97%: {'yes' if sm['recall'] >= 0.97 else 'no'} ({100 * sm['recall']:.1f}%)")
    lines.append(f"- precision ≥ 95%: {'yes' if sm['precision'] >= 0.95 else 'no'} ({100 * sm['precision']:.1f}%)")
    ratio = runs["presidio"]["cpu"]["wall"] / runs["consentry"]["cpu"]["wall"]
    lines.append(f"- ≥ 100× Presidio's speed: {'yes' if ratio >= 100 else 'no'} ({ratio:.1f}× on the labelled corpus"
                 + (f", {runs['presidio']['clean']['wall'] / runs['consentry']['clean']['wall']:.1f}× on the texts as shipped"
                    if "clean" in runs["consentry"] else "") + ")")
    return "\n".join(lines) + "\n"


def _short(k: str) -> str:
    return {"consentry": "consentry", "presidio": "Presidio", "presidio-same": "Presidio consentry-regions",
            "presidio-all": "Presidio corpus-regions",
            "consentry-oracle": "consentry+countries"}[k]


if __name__ == "__main__":
    sys.exit(main())
