"""Chapter 5: the SNLI/MultiNLI reader, binary parses -> SHIFT/REDUCE, and the offline corpus generator."""
import json
import re

import pytest

from chapter05_sequence import nli_corpus
from chapter05_sequence.snli import (
    LABEL_TO_ID,
    LABELS,
    REDUCE,
    SHIFT,
    NLIFormatError,
    parse_binary,
    read_nli_jsonl,
    transitions_to_string,
)

S, R = SHIFT, REDUCE

# Lines in the exact schema of snli_1.0_*.jsonl (fields in the official order), sentences written for these tests:
# nested parses, punctuation (commas, possessive 's, PTB quotes), single-word sentences, and a "-" gold label.
SNLI_LINES = [
    {"annotator_labels": ["entailment", "entailment", "entailment", "entailment", "neutral"],
     "captionID": "1000000001.jpg#0", "gold_label": "entailment", "pairID": "1000000001.jpg#0r1e",
     "sentence1": "A man in a red jacket, holding a map, walks down the street.",
     "sentence1_binary_parse": "( ( ( ( A man ) ( in ( a ( red jacket ) ) ) ) ( , ( ( holding ( a map ) ) , ) ) ) "
                               "( ( walks ( down ( the street ) ) ) . ) )",
     "sentence1_parse": "(ROOT (S (NP (NP (NP (DT A) (NN man)) (PP (IN in) (NP (DT a) (JJ red) (NN jacket)))) (, ,) "
                        "(VP (VBG holding) (NP (DT a) (NN map))) (, ,)) (VP (VBZ walks) (PP (IN down) (NP (DT the) "
                        "(NN street)))) (. .)))",
     "sentence2": "A man is outdoors.",
     "sentence2_binary_parse": "( ( A man ) ( ( is outdoors ) . ) )",
     "sentence2_parse": "(ROOT (S (NP (DT A) (NN man)) (VP (VBZ is) (ADVP (RB outdoors))) (. .)))"},
    {"annotator_labels": ["contradiction"], "captionID": "1000000002.jpg#3", "gold_label": "contradiction",
     "pairID": "1000000002.jpg#3r1c",
     "sentence1": "Two children are playing with a dog's ball near the lake.",
     "sentence1_binary_parse": "( ( Two children ) ( ( are ( ( playing ( with ( ( a ( dog 's ) ) ball ) ) ) "
                               "( near ( the lake ) ) ) ) . ) )",
     "sentence1_parse": "(ROOT (S (NP (CD Two) (NNS children)) (VP (VBP are) (VP (VBG playing) (PP (IN with) (NP "
                        "(NP (DT a) (NN dog) (POS 's)) (NN ball))) (PP (IN near) (NP (DT the) (NN lake))))) (. .)))",
     "sentence2": "Sleeping.",
     "sentence2_binary_parse": "( Sleeping . )",
     "sentence2_parse": "(ROOT (FRAG (VP (VBG Sleeping)) (. .)))"},
    {"annotator_labels": ["neutral", "entailment", "contradiction", "neutral", "entailment"],
     "captionID": "1000000003.jpg#1", "gold_label": "-", "pairID": "1000000003.jpg#1r1n",
     "sentence1": "A woman sits on a bench.",
     "sentence1_binary_parse": "( ( A woman ) ( ( sits ( on ( a bench ) ) ) . ) )",
     "sentence1_parse": "(ROOT (S (NP (DT A) (NN woman)) (VP (VBZ sits) (PP (IN on) (NP (DT a) (NN bench)))) (. .)))",
     "sentence2": "The woman is waiting for a bus.",
     "sentence2_binary_parse": "( ( The woman ) ( ( is ( waiting ( for ( a bus ) ) ) ) . ) )",
     "sentence2_parse": "(ROOT (S (NP (DT The) (NN woman)) (VP (VBZ is) (VP (VBG waiting) (PP (IN for) (NP (DT a) "
                        "(NN bus))))) (. .)))"},
    {"annotator_labels": ["neutral"], "captionID": "1000000004.jpg#2", "gold_label": "neutral",
     "pairID": "1000000004.jpg#2r1n",
     "sentence1": "Kids are running through a sprinkler.",
     "sentence1_binary_parse": "( Kids ( ( are ( running ( through ( a sprinkler ) ) ) ) . ) )",
     "sentence1_parse": "(ROOT (S (NP (NNS Kids)) (VP (VBP are) (VP (VBG running) (PP (IN through) (NP (DT a) "
                        "(NN sprinkler))))) (. .)))",
     "sentence2": "Outside",
     "sentence2_binary_parse": "Outside",
     "sentence2_parse": "(ROOT (ADVP (RB Outside)))"},
    {"annotator_labels": ["entailment"], "captionID": "1000000005.jpg#4", "gold_label": "entailment",
     "pairID": "1000000005.jpg#4r1e",
     "sentence1": "A street vendor sells \"hot-dogs\" to tourists.",
     "sentence1_binary_parse": "( ( A ( street vendor ) ) ( ( ( sells ( `` ( hot-dogs '' ) ) ) ( to tourists ) ) . ) )",
     "sentence1_parse": "(ROOT (S (NP (DT A) (NN street) (NN vendor)) (VP (VBZ sells) (NP (`` ``) (NNS hot-dogs) "
                        "('' '')) (PP (TO to) (NP (NNS tourists)))) (. .)))",
     "sentence2": "Someone is selling food.",
     "sentence2_binary_parse": "( Someone ( ( is ( selling food ) ) . ) )",
     "sentence2_parse": "(ROOT (S (NP (NN Someone)) (VP (VBZ is) (VP (VBG selling) (NP (NN food)))) (. .)))"},
]
MULTINLI_LINE = {
    "annotator_labels": ["neutral"], "genre": "fiction", "gold_label": "neutral", "pairID": "777001n",
    "promptID": "777001", "sentence1": "He closed the door quietly.",
    "sentence1_binary_parse": "( He ( ( ( closed ( the door ) ) quietly ) . ) )",
    "sentence1_parse": "(ROOT (S (NP (PRP He)) (VP (VBD closed) (NP (DT the) (NN door)) (ADVP (RB quietly))) (. .)))",
    "sentence2": "He did not want to wake the baby.",
    "sentence2_binary_parse": "( He ( ( did ( not ( want ( to ( wake ( the baby ) ) ) ) ) ) . ) )",
    "sentence2_parse": "(ROOT (S (NP (PRP He)) (VP (VBD did) (RB not) (VP (VB want) (S (VP (TO to) (VP (VB wake) "
                       "(NP (DT the) (NN baby))))))) (. .)))"}


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def ptb_leaves(parse):
    return re.findall(r"\(\S+ ([^\s()]+)\)", parse)


def test_book_example():
    tokens, transitions = parse_binary("( ( A man ) ( is sleeping ) )")
    assert tokens == ["A", "man", "is", "sleeping"]
    assert transitions_to_string(transitions) == "S S R S S R R"


@pytest.mark.parametrize("parse, tokens, transitions", [
    ("Outside", ["Outside"], [S]),
    ("( Sleeping . )", ["Sleeping", "."], [S, S, R]),
    ("( ( ( A man ) . ) )", ["A", "man", "."], [S, S, R, S, R]),  # a unary bracket adds no REDUCE
    ("( A ( b ( c d ) ) )", list("Abcd"), [S, S, S, S, R, R, R]),
])
def test_parse_binary_cases(parse, tokens, transitions):
    assert parse_binary(parse) == (tokens, transitions)


@pytest.mark.parametrize("parse, message", [
    ("( ( A man ) ( is sleeping )", "never closed"),
    ("( A man ) )", "without"),
    ("( A man is )", "binary"),
    ("( )", "binary"),
    ("A man", "top-level"),
    ("", "empty"),
])
def test_parse_binary_rejects_malformed(parse, message):
    with pytest.raises(ValueError, match=message):
        parse_binary(parse)


def test_reader_on_snli_sample_lines(tmp_path):
    path = write_jsonl(tmp_path / "snli_1.0_dev.jsonl", SNLI_LINES)
    examples = read_nli_jsonl(path)
    kept = [r for r in SNLI_LINES if r["gold_label"] != "-"]
    assert [e.pair_id for e in examples] == [r["pairID"] for r in kept]  # the "-" row is dropped
    assert [LABELS[e.label] for e in examples] == [r["gold_label"] for r in kept]
    for ex, row in zip(examples, kept):
        for tokens, trans, key in ((ex.premise, ex.premise_transitions, "sentence1"),
                                   (ex.hypothesis, ex.hypothesis_transitions, "sentence2")):
            assert tokens == ptb_leaves(row[f"{key}_parse"])  # same words as the full parse
            assert len(trans) == 2 * len(tokens) - 1 and trans.count(S) == len(tokens)
    assert examples[0].premise[6] == "," and len(examples[0].premise) == 16
    assert examples[1].premise[6:8] == ["dog", "'s"]
    assert (examples[1].hypothesis, examples[1].hypothesis_transitions) == (["Sleeping", "."], [S, S, R])
    assert (examples[2].hypothesis, examples[2].hypothesis_transitions) == (["Outside"], [S])
    assert examples[3].premise[4:7] == ["``", "hot-dogs", "''"]
    assert len(read_nli_jsonl(path, keep_unlabeled=True)) == len(SNLI_LINES)
    assert read_nli_jsonl(path, keep_unlabeled=True)[2].label == -1
    assert len(read_nli_jsonl(path, max_examples=2)) == 2


def test_reader_accepts_multinli(tmp_path):
    path = write_jsonl(tmp_path / "multinli_1.0_dev_matched.jsonl", [MULTINLI_LINE])
    (ex,) = read_nli_jsonl(path)
    assert ex.genre == "fiction" and ex.label == LABEL_TO_ID["neutral"]
    assert ex.hypothesis[:4] == ["He", "did", "not", "want"]


@pytest.mark.parametrize("bad_line, message", [
    ('{"gold_label": "neutral", "sentence1": ', "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({k: v for k, v in SNLI_LINES[0].items() if k != "sentence2_binary_parse"}), "sentence2_binary_parse"),
    (json.dumps({**SNLI_LINES[0], "gold_label": "maybe"}), "unknown gold_label"),
    (json.dumps({**SNLI_LINES[0], "sentence1_binary_parse": "( ( A man ) ( is sleeping )"}), "unbalanced"),
])
def test_reader_errors_name_file_and_line(tmp_path, bad_line, message):
    path = write_jsonl(tmp_path / "snli_1.0_train.jsonl", [SNLI_LINES[0], "", bad_line])
    with pytest.raises(NLIFormatError, match=rf"snli_1.0_train.jsonl:3: .*{message}"):
        read_nli_jsonl(path)


def test_reader_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"snli_1.0.zip"):
        read_nli_jsonl(tmp_path / "snli_1.0_train.jsonl")


# ---- the offline corpus ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    sizes = {"train": 1500, "dev": 300, "test": 600}
    return out, nli_corpus.generate_corpus(out, seed=3, sizes=sizes), sizes


def test_corpus_is_deterministic(small_corpus, tmp_path):
    _, paths, sizes = small_corpus
    again = nli_corpus.generate_corpus(tmp_path, seed=3, sizes=sizes)
    for split in paths:
        assert paths[split].read_bytes() == again[split].read_bytes()
    other = nli_corpus.generate_corpus(tmp_path / "other", seed=4, sizes=sizes)
    assert other["train"].read_bytes() != paths["train"].read_bytes()


def test_corpus_has_snli_schema_and_splits_do_not_overlap(small_corpus):
    _, paths, sizes = small_corpus
    rows = {split: [json.loads(line) for line in p.read_text().splitlines()] for split, p in paths.items()}
    assert {s: len(r) for s, r in rows.items()} == sizes
    for row in rows["train"][:50]:
        assert set(SNLI_LINES[0]) <= set(row) and row["gold_label"] in LABELS
        for key in ("sentence1", "sentence2"):
            tokens, _ = parse_binary(row[f"{key}_binary_parse"])
            assert tokens == ptb_leaves(row[f"{key}_parse"])
            assert " ".join(tokens[:-1]) + "." == row[key]
    pairs = {split: {(r["sentence1"], r["sentence2"]) for r in rs} for split, rs in rows.items()}
    assert not pairs["train"] & pairs["test"] and not pairs["train"] & pairs["dev"] and not pairs["dev"] & pairs["test"]


def test_corpus_labels_are_balanced_and_follow_the_rules(small_corpus):
    _, paths, _ = small_corpus
    examples = read_nli_jsonl(paths["train"])
    counts = [sum(e.label == i for e in examples) for i in range(3)]
    assert max(counts) - min(counts) <= 1
    by_rule = {}
    for e in examples:
        by_rule.setdefault(e.genre, []).append(e)
    for label, rules in nli_corpus.RULES.items():
        for rule in rules:
            assert by_rule[rule] and all(LABELS[e.label] == label for e in by_rule[rule]), rule
    assert all("not" in e.hypothesis and "not" not in e.premise for e in by_rule["negation"])
    assert all(e.premise == e.hypothesis for e in by_rule["same"])
    for e in by_rule["role_swap"]:
        assert sorted(w.lower() for w in e.premise) == sorted(w.lower() for w in e.hypothesis)
        assert e.premise != e.hypothesis
    parents = {**nli_corpus.NOUN_PARENT, **nli_corpus.VERB_PARENT}
    for e in by_rule["hypernym"]:  # some word of the hypothesis is a hypernym of a premise word
        assert any(w in nli_corpus.ancestors(p, parents) for w in e.hypothesis for p in e.premise)


def test_hypernym_tree():
    assert nli_corpus.ancestors("boy", nli_corpus.NOUN_PARENT) == ["child", "person"]
    assert nli_corpus.related("poodle", "animal", nli_corpus.NOUN_PARENT)
    assert not nli_corpus.related("man", "woman", nli_corpus.NOUN_PARENT)


def test_scene_rendering_matches_snli_style():
    scene = nli_corpus.Scene("man", "playing", subject_adj="old", obj="guitar", place="park", negated=True)
    record = nli_corpus.pair_record(scene, scene, "entailment", "same", "x.jpg#0")
    assert record["sentence1"] == "An old man is not playing a guitar in the park."
    assert record["sentence1_binary_parse"] == ("( ( An ( old man ) ) ( ( is ( not ( ( playing ( a guitar ) ) "
                                                "( in ( the park ) ) ) ) ) . ) )")
    assert record["sentence1_parse"].startswith("(ROOT (S (NP (DT An) (JJ old) (NN man)) (VP (VBZ is) (RB not)")


def test_corpus_paths_prefers_real_snli(tmp_path, monkeypatch):
    import handson

    monkeypatch.setattr(handson, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"snli_1.0_train.jsonl is missing: download .*snli_1.0.zip"):
        nli_corpus.corpus_paths("snli")
    with pytest.raises(ValueError, match="auto, snli or synthetic"):
        nli_corpus.corpus_paths("glue")
    (tmp_path / "snli_1.0").mkdir()
    for split in ("train", "dev", "test"):
        write_jsonl(tmp_path / "snli_1.0" / f"snli_1.0_{split}.jsonl", SNLI_LINES)
    source, paths = nli_corpus.corpus_paths("auto")
    assert source == "snli" and len(read_nli_jsonl(paths["test"])) == 4
