"""Agreement of our spaCy attribute extractor with the stored utopiansky2022 (stanza) feature bags.

    MEDIAML_DATA_DIR=../shared/data python experiments/personas_extraction.py --out experiments/personas_extraction.md

(`--out` replaces the block between the `<!-- results -->` / `<!-- /results -->` markers of that file, or
writes the file if it has none; `--limit N` = first N movies only; ~1 min on one free core.)

Movies: the 123 of personas_extra/cyberbab00shka_persona_testset (the only real plot summaries we have).
Each movie title -> CMU wiki id(s) via movie.metadata; when a title has several ids with feature rows, the id
whose stored character names occur most often in the summary is kept. Characters: every stored row of that
wiki id in char_features_realigned_all.tsv.gz (names as stored, read as in `mediaml.tasks.personas.data`), and
separately the 129 gold characters (the test set's full names) matched to a stored row by a shared name token.

Per role, micro-averaged precision / recall / F1 of our bag against the stored bag, as multisets (counts
matter, min of counts is the overlap) and as sets (per character). Two word forms: `surface` (our lower-case
surface forms vs the stored words, which are unlemmatised) and `lemma` (ours lemmatised; each stored word
lemmatised by the lemma spaCy gave that word in the same summary, else kept). Variants: verb-conjunct
propagation on/off; name matching restricted to spaCy PERSON entities (ner on) or not.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mediaml.tasks.personas.extraction import DEFAULT_MODEL, extract_from_doc, load_parser  # noqa: E402
from mediaml.tasks.personas.data import ROLES, name_tokens, parse_list, read_movie_titles, tokens  # noqa: E402

TESTSET = "personas_extra/cyberbab00shka_persona_testset/persona_identification_testset.csv"
FEATURES = "personas_extra/utopiansky2022_plot_nlp_char_features/char_features_realigned_all.tsv.gz"
METADATA = "cmu_movie_summary/movie.metadata.tsv.gz"


def stored_bags(df: pd.DataFrame) -> list[dict[str, list[str]]]:
    return [{"adj": tokens(r.attributes.split()),
             "active": tokens(parse_list(r.agent_verbs, f"row {i} agent_verbs")),
             "patient": tokens(parse_list(r.patient_verbs, f"row {i} patient_verbs"))}
            for i, r in enumerate(df.itertuples(index=False))]


def pick_movies(test: pd.DataFrame, feats: pd.DataFrame, meta: pd.DataFrame) -> tuple[dict[str, str], Counter]:
    """movie title -> wiki id with feature rows (the one whose stored names occur most in the summary)."""
    ids_by_title = meta.groupby("title")["wiki_id"].apply(list).to_dict()
    names_by_id = feats.groupby("wiki_id")["character"].apply(list).to_dict()
    summary = test.groupby("movie_name")["movie_summary"].first().to_dict()
    chosen, how = {}, Counter()
    for title, text in summary.items():
        cands = [w for w in ids_by_title.get(title, []) if w in names_by_id]
        if not cands:
            how["no wiki id with feature rows"] += 1
            continue
        low = text.lower()
        share = {w: sum(n.lower() in low for n in names_by_id[w]) / len(names_by_id[w]) for w in cands}
        chosen[title] = max(cands, key=share.get)
        how["one id" if len(cands) == 1 else f"{len(cands)} ids -> best name share"] += 1
    return chosen, how


def prf(pairs, as_set: bool) -> dict[str, float]:
    tp = fp = fn = 0
    for ours, theirs in pairs:
        a, b = (Counter(set(ours)), Counter(set(theirs))) if as_set else (Counter(ours), Counter(theirs))
        inter = sum((a & b).values())
        tp, fp, fn = tp + inter, fp + sum(a.values()) - inter, fn + sum(b.values()) - inter
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"P": p, "R": r, "F1": 2 * p * r / max(p + r, 1e-12), "ours": tp + fp, "stored": tp + fn}


def lemma_map(doc) -> dict[str, str]:
    out: dict[str, Counter] = {}
    for t in doc:
        out.setdefault(t.lower_, Counter())[t.lemma_.lower()] += 1
    return {w: c.most_common(1)[0][0] for w, c in out.items()}


def score(docs, groups, stored, names_of, lemmatize: bool, conjuncts: bool, **options) -> dict:
    """groups: per doc, list of (name we extract for, index into stored). -> {role: {multiset:..., set:...}}"""
    pairs = {r: [] for r in ROLES}
    for doc, group in zip(docs, groups):
        bags = extract_from_doc(doc, names_of(group), lemmatize=lemmatize, conjuncts=conjuncts, **options)
        lm = lemma_map(doc) if lemmatize else {}
        for name, k in group:
            for r in ROLES:
                pairs[r].append((bags[name][r], [lm.get(w, w) for w in stored[k][r]]))
    out = {r: {"multiset": prf(pairs[r], False), "set": prf(pairs[r], True)} for r in ROLES}
    out["all"] = {m: prf([p for r in ROLES for p in pairs[r]], m == "set") for m in ("multiset", "set")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N movies (0 = all)")
    ap.add_argument("--out", default="", help="write the markdown tables here")
    args = ap.parse_args()
    data = Path(os.environ.get("MEDIAML_DATA_DIR", "../shared/data"))
    test = pd.read_csv(data / TESTSET)
    feats = pd.read_csv(data / FEATURES, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    meta = read_movie_titles(data / METADATA)
    chosen, how = pick_movies(test, feats, meta)
    titles = sorted(chosen)[: args.limit or None]
    summaries = test.groupby("movie_name")["movie_summary"].first()
    texts = [summaries[t] for t in titles]
    sub = feats[feats["wiki_id"].isin({chosen[t] for t in titles})].reset_index(drop=True)
    stored = stored_bags(sub)
    rows_by_id = sub.groupby("wiki_id").groups

    # all stored characters of each movie, under their stored names
    all_groups = [[(sub.at[k, "character"], k) for k in rows_by_id[chosen[t]]] for t in titles]
    # gold characters under their full test-set names -> the stored row sharing a name token (most words wins)
    gold_groups, n_gold, n_gold_matched = [], 0, 0
    n_words = [sum(len(b[r]) for r in ROLES) for b in stored]
    for t in titles:
        g = []
        for name in test.loc[test["movie_name"] == t, "character_name"]:
            n_gold += 1
            hits = [k for k in rows_by_id[chosen[t]] if name_tokens(name) & name_tokens(sub.at[k, "character"])]
            if hits:
                n_gold_matched += 1
                g.append((name, max(hits, key=lambda k: n_words[k])))
        gold_groups.append(g)

    def names_of(group):
        return list(dict.fromkeys(n for n, _ in group))

    results, timing = {}, {}
    for exclude, label in ((("ner",), "ner off"), ((), "ner on")):
        nlp = load_parser(DEFAULT_MODEL, exclude)
        nlp(texts[0])  # warm-up
        t0 = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=16))
        timing[label] = (time.perf_counter() - t0) / len(texts)
        if label == "ner on":  # name tokens must also be inside a spaCy PERSON entity
            results["surface, conjuncts off, PERSON-only mentions"] = score(
                docs, all_groups, stored, names_of, False, False, person_only=True)
            continue
        for lem in (False, True):
            for conj in (False, True):
                key = f"{'lemma' if lem else 'surface'}, conjuncts {'on' if conj else 'off'}"
                results[key] = score(docs, all_groups, stored, names_of, lem, conj)
        results["surface, conjuncts off, no dobj (stored's patient definition)"] = score(
            docs, all_groups, stored, names_of, False, False, direct_objects=False)
        results["surface, conjuncts off, no dobj, possessions (closest to stored)"] = score(
            docs, all_groups, stored, names_of, False, False, direct_objects=False, possessions=True)
        results["gold: lemma, conjuncts on"] = score(docs, gold_groups, stored, names_of, True, True)
        results["gold: surface, conjuncts off"] = score(docs, gold_groups, stored, names_of, False, False)

    n_chars = sum(len(g) for g in all_groups)
    header = [f"movies: {len(titles)} of {summaries.size} test-set titles ({dict(how)})",
              f"stored characters compared: {n_chars}; gold characters: {n_gold_matched} of {n_gold} matched",
              f"time per summary (nlp.pipe, 1 process, mean {sum(map(len, texts)) / len(texts):.0f} chars): "
              + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timing.items())]
    lines = header + ["", "| variant | role | multiset P | R | F1 | set P | R | F1 | words ours / stored |",
                      "|---|---|---|---|---|---|---|---|---|"]
    for key, res in results.items():
        for r in (*ROLES, "all"):
            m, s = res[r]["multiset"], res[r]["set"]
            lines.append(f"| {key} | {r} | {m['P']:.3f} | {m['R']:.3f} | {m['F1']:.3f} | {s['P']:.3f} | "
                         f"{s['R']:.3f} | {s['F1']:.3f} | {m['ours']} / {m['stored']} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_block(Path(args.out), text)


def write_block(path: Path, text: str, start: str = "<!-- results -->", end: str = "<!-- /results -->") -> None:
    old = path.read_text() if path.exists() else ""
    if start in old and end in old:
        text = old[: old.index(start) + len(start)] + "\n" + text + "\n" + old[old.index(end):]
    path.write_text(text + ("" if text.endswith("\n") else "\n"))


if __name__ == "__main__":
    main()
