"""An offline NLI corpus in the exact SNLI jsonl format, generated from English words, templates and rules.

SNLI itself (570k pairs, 90 MB zipped) is not shipped with the repository. This module writes a stand-in that the same
reader (``chapter05_sequence.snli.read_nli_jsonl``) loads: every line has SNLI's fields (``gold_label``,
``sentence1``, ``sentence1_binary_parse``, ``sentence1_parse``, ..., ``annotator_labels``, ``captionID``,
``pairID``) plus MultiNLI's ``genre`` field, which here names the rule that produced the label.

A premise describes a scene, ``A young boy is chasing a dog in the park .``; the hypothesis is the premise edited by
one rule, and the rule decides the label:

=============  ===================  ===========================================================================
label          rule                 hypothesis
=============  ===================  ===========================================================================
entailment     ``hypernym``         a noun or verb replaced by a more general one (boy -> child -> person)
entailment     ``drop_modifier``    an adjective or the place dropped
entailment     ``same``             the premise unchanged (only for scenes with two animate roles)
neutral        ``hyponym``          a noun or verb replaced by a more specific one (person -> woman)
neutral        ``add_modifier``     an adjective or a place added
contradiction  ``negation``         ``is`` -> ``is not``
contradiction  ``other_verb``       an incompatible activity (sleeping vs running)
contradiction  ``other_subject``    a disjoint subject (man vs woman, dog vs cat)
contradiction  ``antonym``          an opposite adjective, another colour or another place
contradiction  ``role_swap``        subject and object exchanged (same words, different order)
=============  ===================  ===========================================================================

Entailment-preserving edits (hypernyms, dropped modifiers) are sometimes added on other words on top of the rule's
edit, so that a model must compose them. ``same`` and ``role_swap`` share their words: a bag-of-words model cannot
tell them apart, an order-aware encoder can. Dev and test pairs never occur in the training file.

Book: chapter 5 (the SNLI task); the corpus itself is this repository's addition so that the chapter runs offline.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path

import handson
from chapter05_sequence.snli import LABELS, missing_snli_message, snli_paths

CORPUS_VERSION = 1
GENERATED_DIR = ("generated", "snli_synth")
SPLIT_SIZES = {"train": 40_000, "dev": 2_000, "test": 4_000}

# ---- lexicon: every word is English; the trees give hypernyms (child -> parent) -----------------------------------
NOUN_PARENT = {
    "man": "person", "woman": "person", "child": "person", "boy": "child", "girl": "child",
    "dog": "animal", "cat": "animal", "horse": "animal", "poodle": "dog", "terrier": "dog", "kitten": "cat",
    "guitar": "instrument", "piano": "instrument", "violin": "instrument", "drum": "instrument",
    "fruit": "food", "sandwich": "food", "pizza": "food", "apple": "fruit", "banana": "fruit", "orange": "fruit",
    "bicycle": "vehicle", "motorcycle": "vehicle",
    "football": "ball", "basketball": "ball", "baseball": "ball",
    "newspaper": "paper",
}
VERB_PARENT = {
    "running": "moving", "walking": "moving", "swimming": "moving", "dancing": "moving", "jumping": "moving",
    "sprinting": "running", "jogging": "running", "strolling": "walking",
    "sleeping": "resting", "sitting": "resting", "napping": "sleeping",
    "devouring": "eating", "chasing": "following",
}
PERSONS = ["person", "man", "woman", "child", "boy", "girl"]
ANIMALS = ["animal", "dog", "cat", "horse", "poodle", "terrier", "kitten"]
ANIMATE = PERSONS + ANIMALS
INTRANSITIVE = ["moving", "running", "walking", "swimming", "dancing", "jumping", "sprinting", "jogging", "strolling",
                "resting", "sleeping", "sitting", "napping"]
# transitive verb -> (who can do it, what it takes as object)
TRANSITIVE = {
    "playing": (PERSONS, ["instrument", "guitar", "piano", "violin", "drum"]),
    "eating": (ANIMATE, ["food", "fruit", "sandwich", "pizza", "apple", "banana", "orange"]),
    "devouring": (ANIMATE, ["food", "fruit", "sandwich", "pizza", "apple", "banana", "orange"]),
    "riding": (PERSONS, ["vehicle", "bicycle", "motorcycle", "horse"]),
    "kicking": (ANIMATE, ["ball", "football", "basketball", "baseball"]),
    "throwing": (PERSONS, ["ball", "football", "basketball", "baseball"]),
    "reading": (PERSONS, ["book", "magazine", "paper", "newspaper"]),
    # verbs whose object is animate too: their scenes can swap roles
    "chasing": (ANIMATE, ANIMATE), "following": (ANIMATE, ANIMATE),
    "pushing": (PERSONS, ANIMATE), "hugging": (PERSONS, ANIMATE), "watching": (ANIMATE, ANIMATE),
}
ROLE_VERBS = ["chasing", "following", "pushing", "hugging", "watching"]
SUBJECT_ADJECTIVES = {"young": "old", "old": "young", "happy": "sad", "sad": "happy", "big": "small", "small": "big"}
COLOURS = ["red", "blue", "green", "yellow", "black", "white"]
PLACES = {"park": "in", "beach": "on", "kitchen": "in", "street": "on", "field": "in", "garden": "in"}
SLEEPING = ["sleeping", "napping"]  # incompatible with every transitive activity
MASS_NOUNS = {"food", "fruit"}  # no article: "eating fruit"

RULES = {
    "entailment": {"hypernym": 4, "drop_modifier": 3, "same": 2},
    "neutral": {"hyponym": 1, "add_modifier": 1},
    "contradiction": {"negation": 1, "other_verb": 1, "other_subject": 1, "antonym": 1, "role_swap": 1},
}


def ancestors(word: str, parent: dict[str, str]) -> list[str]:
    """Every more general word: ``ancestors("boy", NOUN_PARENT) == ["child", "person"]``."""
    out = []
    while word in parent:
        word = parent[word]
        out.append(word)
    return out


def descendants(word: str, parent: dict[str, str], among: list[str]) -> list[str]:
    """Words of ``among`` that are strictly more specific than ``word``."""
    return [w for w in among if word in ancestors(w, parent)]


def related(a: str, b: str, parent: dict[str, str]) -> bool:
    """True when ``a == b`` or one is a hypernym of the other."""
    return a == b or a in ancestors(b, parent) or b in ancestors(a, parent)


@dataclass(frozen=True)
class Scene:
    """A sentence ``Det [adj] subject is [not] verb [Det [colour] object] [in the place] .``"""

    subject: str
    verb: str
    subject_adj: str = ""
    obj: str = ""
    obj_adj: str = ""
    place: str = ""
    negated: bool = False


# ---- rendering: a labelled tree, then the sentence, the PTB parse and the binary parse ----------------------------
def _article(next_word: str, capital: bool) -> str:
    word = "an" if next_word[0] in "aeiou" else "a"
    return word.capitalize() if capital else word


def _noun_phrase(adj: str, noun: str, capital: bool, det: str | None = None) -> tuple:
    det = det or ("" if noun in MASS_NOUNS else _article(adj or noun, capital))
    return ("NP", ([("DT", det)] if det else []) + ([("JJ", adj)] if adj else []) + [("NN", noun)])


def scene_tree(s: Scene) -> tuple:
    """The constituency tree of a scene as nested ``(label, children)`` tuples; leaves are ``(tag, word)``."""
    vp = ("VP", [("VBG", s.verb)] + ([_noun_phrase(s.obj_adj, s.obj, False)] if s.obj else []))
    if s.place:
        vp = ("VP", [vp, ("PP", [("IN", PLACES[s.place]), _noun_phrase("", s.place, False, det="the")])])
    aux = [("VBZ", "is")] + ([("RB", "not")] if s.negated else [])
    return ("ROOT", [("S", [_noun_phrase(s.subject_adj, s.subject, True), ("VP", aux + [vp]), (".", ".")])])


def _is_leaf(node: tuple) -> bool:
    return isinstance(node[1], str)


def words(node: tuple) -> list[str]:
    """The words under a tree node, left to right."""
    return [node[1]] if _is_leaf(node) else [w for child in node[1] for w in words(child)]


def ptb_parse(node: tuple) -> str:
    """SNLI's ``sentence1_parse`` style: ``(ROOT (S (NP (DT A) (NN man)) ...))``."""
    if _is_leaf(node):
        return f"({node[0]} {node[1]})"
    return f"({node[0]} " + " ".join(ptb_parse(c) for c in node[1]) + ")"


def binary_parse(node: tuple) -> str:
    """SNLI's ``sentence1_binary_parse`` style: unlabelled, right-binarised, unary nodes removed."""
    if _is_leaf(node):
        return node[1]
    parts = [binary_parse(c) for c in node[1]]
    while len(parts) > 1:  # right-binarise: [a, b, c] -> a ( b c )
        parts[-2:] = [f"( {parts[-2]} {parts[-1]} )"]
    return parts[0]


# ---- sampling premises and applying rules --------------------------------------------------------------------------
def sample_premise(rng: random.Random, role_verb: bool = False) -> Scene:
    """A random premise; ``role_verb=True`` forces a verb whose object is animate (chasing, hugging...)."""
    if role_verb or rng.random() < 0.55:
        verb = rng.choice(ROLE_VERBS) if role_verb else rng.choice(sorted(TRANSITIVE))
        subjects, objects = TRANSITIVE[verb]
        subject = rng.choice(subjects)
        obj = rng.choice([o for o in objects if not related(o, subject, NOUN_PARENT)])
    else:
        verb, subject, obj = rng.choice(INTRANSITIVE), rng.choice(ANIMATE), ""
    subject_adj = rng.choice(sorted(SUBJECT_ADJECTIVES)) if rng.random() < 0.35 else ""
    obj_adj = rng.choice(COLOURS) if obj and obj not in ANIMATE and rng.random() < 0.35 else ""
    place = rng.choice(sorted(PLACES)) if rng.random() < 0.35 else ""
    return Scene(subject, verb, subject_adj, obj, obj_adj, place)


def _generalize(rng: random.Random, s: Scene, slot: str) -> Scene | None:
    """One entailment-preserving edit on ``slot`` (subject, verb, obj, subject_adj, obj_adj, place), or None."""
    if slot in ("subject", "obj"):
        up = ancestors(getattr(s, slot), NOUN_PARENT) if getattr(s, slot) else []
        if slot == "obj" and s.verb in TRANSITIVE:  # keep the object a thing the verb takes
            up = [w for w in up if w in TRANSITIVE[s.verb][1]]
        return replace(s, **{slot: rng.choice(up)}) if up else None
    if slot == "verb":
        up = [v for v in ancestors(s.verb, VERB_PARENT) if (v in TRANSITIVE) == (s.verb in TRANSITIVE)]
        if up and s.verb in TRANSITIVE:
            up = [v for v in up if s.obj in TRANSITIVE[v][1] and s.subject in TRANSITIVE[v][0]]
        return replace(s, verb=rng.choice(up)) if up else None
    return replace(s, **{slot: ""}) if getattr(s, slot) else None  # drop a modifier


def _specialize(rng: random.Random, s: Scene, slot: str) -> Scene | None:
    """One edit that makes the hypothesis more specific than the premise (neutral), or None."""
    if slot == "subject":
        down = descendants(s.subject, NOUN_PARENT, ANIMATE)
        if s.verb in TRANSITIVE:
            down = [w for w in down if w in TRANSITIVE[s.verb][0] and not related(w, s.obj, NOUN_PARENT)]
        return replace(s, subject=rng.choice(down)) if down else None
    if slot == "obj":
        down = descendants(s.obj, NOUN_PARENT, TRANSITIVE[s.verb][1]) if s.obj else []
        down = [w for w in down if not related(w, s.subject, NOUN_PARENT)]
        return replace(s, obj=rng.choice(down)) if down else None
    if slot == "verb":
        pool = sorted(TRANSITIVE) if s.verb in TRANSITIVE else INTRANSITIVE
        down = descendants(s.verb, VERB_PARENT, pool)
        if s.verb in TRANSITIVE:
            down = [v for v in down if s.obj in TRANSITIVE[v][1] and s.subject in TRANSITIVE[v][0]]
        return replace(s, verb=rng.choice(down)) if down else None
    if slot == "subject_adj":
        return None if s.subject_adj else replace(s, subject_adj=rng.choice(sorted(SUBJECT_ADJECTIVES)))
    if slot == "obj_adj":
        ok = s.obj and s.obj not in ANIMATE and not s.obj_adj
        return replace(s, obj_adj=rng.choice(COLOURS)) if ok else None
    return None if s.place else replace(s, place=rng.choice(sorted(PLACES)))


def _contradict(rng: random.Random, s: Scene, rule: str) -> Scene | None:
    """One edit that makes the hypothesis incompatible with the premise, or None when the rule does not apply."""
    if rule == "negation":
        return replace(s, negated=True)
    if rule == "other_verb":
        if s.verb in TRANSITIVE:
            return replace(s, verb=rng.choice(SLEEPING), obj="", obj_adj="")
        return replace(s, verb=rng.choice([v for v in INTRANSITIVE if not related(v, s.verb, VERB_PARENT)]))
    if rule == "other_subject":
        pool = TRANSITIVE[s.verb][0] if s.verb in TRANSITIVE else ANIMATE
        pool = [w for w in pool if not related(w, s.subject, NOUN_PARENT) and not related(w, s.obj, NOUN_PARENT)]
        return replace(s, subject=rng.choice(pool)) if pool else None
    if rule == "antonym":
        options = []
        if s.subject_adj:
            options.append(replace(s, subject_adj=SUBJECT_ADJECTIVES[s.subject_adj]))
        if s.obj_adj:
            options.append(replace(s, obj_adj=rng.choice([c for c in COLOURS if c != s.obj_adj])))
        if s.place:
            options.append(replace(s, place=rng.choice([p for p in sorted(PLACES) if p != s.place])))
        return rng.choice(options) if options else None
    if rule == "role_swap":
        if s.verb not in ROLE_VERBS or s.obj not in TRANSITIVE[s.verb][0]:
            return None
        return replace(s, subject=s.obj, obj=s.subject, subject_adj=s.obj_adj, obj_adj=s.subject_adj)
    raise ValueError(f"unknown contradiction rule {rule!r}")


SLOTS = ("subject", "verb", "obj", "subject_adj", "obj_adj", "place")


def make_pair(rng: random.Random, label: str, rule: str) -> tuple[Scene, Scene] | None:
    """A (premise, hypothesis) pair for ``rule``, or None when the sampled premise does not allow it."""
    premise = sample_premise(rng, role_verb=rule in ("same", "role_swap"))
    if rule in ("same", "role_swap"):
        hyp = premise if rule == "same" else _contradict(rng, premise, rule)
        return (premise, hyp) if hyp is not None else None
    if rule in ("hypernym", "hyponym"):
        slots = ["subject", "verb", "obj"]
    elif rule in ("drop_modifier", "add_modifier"):
        slots = ["subject_adj", "obj_adj", "place"]
    else:
        slots = []
    rng.shuffle(slots)
    edit = _generalize if label == "entailment" else _specialize
    hyp = next((h for h in (edit(rng, premise, slot) for slot in slots) if h is not None), None) if slots else \
        _contradict(rng, premise, rule)
    if hyp is None:
        return None
    if rng.random() < 0.3:  # an extra entailment-preserving edit on a word the rule left alone
        free = [slot for slot in SLOTS if getattr(hyp, slot) == getattr(premise, slot)]
        extra = _generalize(rng, hyp, rng.choice(free)) if free else None
        hyp = extra or hyp
    return premise, hyp


def pair_record(premise: Scene, hypothesis: Scene, label: str, rule: str, caption_id: str) -> dict:
    """One SNLI jsonl record (fields in SNLI's order) with MultiNLI's ``genre`` field holding the rule."""
    p_tree, h_tree = scene_tree(premise), scene_tree(hypothesis)
    return {
        "annotator_labels": [label],
        "captionID": caption_id,
        "gold_label": label,
        "pairID": f"{caption_id}r1{label[0]}",
        "sentence1": " ".join(words(p_tree)[:-1]) + ".",
        "sentence1_binary_parse": binary_parse(p_tree[1][0]),
        "sentence1_parse": ptb_parse(p_tree),
        "sentence2": " ".join(words(h_tree)[:-1]) + ".",
        "sentence2_binary_parse": binary_parse(h_tree[1][0]),
        "sentence2_parse": ptb_parse(h_tree),
        "genre": rule,
    }


def generate_records(n: int, seed: int, split: str = "train", exclude: set | None = None) -> list[dict]:
    """``n`` records with labels balanced in turn (entailment, neutral, contradiction, ...), deterministic in ``seed``.

    Pairs whose (sentence1, sentence2) is in ``exclude`` are skipped (used to keep dev/test out of train).
    """
    rng = random.Random(f"{seed}-{split}")
    exclude = exclude if exclude is not None else set()
    records: list[dict] = []
    while len(records) < n:
        label = LABELS[len(records) % 3]
        rules = RULES[label]
        rule = rng.choices(sorted(rules), weights=[rules[r] for r in sorted(rules)])[0]
        pair = make_pair(rng, label, rule)
        if pair is None:
            continue
        record = pair_record(*pair, label, rule, f"synth{seed}-{split}-{len(records):06d}.jpg#0")
        key = (record["sentence1"], record["sentence2"])
        if key in exclude:
            continue
        records.append(record)
    return records


def generate_corpus(out_dir: str | Path | None = None, seed: int = 0,
                    sizes: dict[str, int] | None = None) -> dict[str, Path]:
    """Write ``snli_1.0_{train,dev,test}.jsonl`` (SNLI's file names) into ``out_dir`` and return the paths.

    Default folder: ``data/generated/snli_synth`` (git-ignored). Files are written atomically (a temporary name, then
    a rename), so two processes generating at once do not see half-written files. Same seed and sizes -> same bytes.
    """
    out_dir = Path(out_dir) if out_dir is not None else handson.data_path(*GENERATED_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {**SPLIT_SIZES, **(sizes or {})}
    paths = snli_paths(out_dir)
    seen: set = set()
    for split in ("train", "dev", "test"):  # train first: dev and test exclude its pairs and each other's
        records = generate_records(sizes[split], seed, split, exclude=seen)
        seen |= {(r["sentence1"], r["sentence2"]) for r in records}
        tmp = paths[split].with_suffix(f".tmp{os.getpid()}")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        os.replace(tmp, paths[split])
    stamp = {"version": CORPUS_VERSION, "seed": seed, "sizes": sizes}
    tmp = out_dir / f"corpus.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(stamp, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "corpus.json")
    return paths


def ensure_corpus() -> dict[str, Path]:
    """The offline corpus (seed 0, ``SPLIT_SIZES``), generated first if missing or made by another version of this
    module, seed or sizes (``generate_corpus`` writes other seeds and sizes)."""
    out_dir = handson.data_path(*GENERATED_DIR)
    stamp_path = out_dir / "corpus.json"
    expected = {"version": CORPUS_VERSION, "seed": 0, "sizes": SPLIT_SIZES}
    paths = snli_paths(out_dir)
    try:
        ok = json.loads(stamp_path.read_text()) == expected and all(p.exists() for p in paths.values())
    except (OSError, ValueError):
        ok = False
    return paths if ok else generate_corpus(out_dir, seed=0)


def corpus_paths(source: str = "auto") -> tuple[str, dict[str, Path]]:
    """Pick the data: ``"snli"`` (real files in ``data/snli_1.0``), ``"synthetic"`` (the offline corpus) or ``"auto"``
    (real SNLI when its three files are present, else the offline corpus). Returns ``(source_used, paths)``.

    Raises:
        FileNotFoundError: ``source="snli"`` and a real file is missing (the message says how to get it).
        ValueError: unknown ``source``.
    """
    if source not in ("auto", "snli", "synthetic"):
        raise ValueError(f"unknown source {source!r}: choose auto, snli or synthetic")
    real = snli_paths()
    if source == "snli" or (source == "auto" and all(p.exists() for p in real.values())):
        missing = [p for p in real.values() if not p.exists()]
        if missing:
            raise FileNotFoundError(missing_snli_message(missing[0]))
        return "snli", real
    return "synthetic", ensure_corpus()
