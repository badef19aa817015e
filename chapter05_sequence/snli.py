"""Read SNLI / MultiNLI jsonl files: labels, tokens and SHIFT/REDUCE transitions from the binary parses.

The real files are ``snli_1.0_{train,dev,test}.jsonl`` in ``data/snli_1.0/`` (the layout of the official zip,
https://nlp.stanford.edu/projects/snli/snli_1.0.zip, licence CC BY-SA 4.0). Each line is one JSON object with at least
``gold_label``, ``sentence1``, ``sentence2``, ``sentence1_binary_parse`` and ``sentence2_binary_parse``. Rows whose
``gold_label`` is ``"-"`` (no annotator majority) are dropped. MultiNLI files (``multinli_1.0_*.jsonl``) have the same
fields plus ``genre``, which is kept.

Book: chapter 5, sections "Data processing" and "Recursive neural networks" (shift-reduce parsing for SPINN).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import handson

LABELS = ("entailment", "neutral", "contradiction")
LABEL_TO_ID = {name: i for i, name in enumerate(LABELS)}

# Transition codes. 0 is the padding code, so a zero-padded batch of transitions needs no special value.
PAD_TRANSITION, SHIFT, REDUCE = 0, 1, 2
TRANSITION_NAMES = {PAD_TRANSITION: "PAD", SHIFT: "S", REDUCE: "R"}

SNLI_DIR = "snli_1.0"
SNLI_URL = "https://nlp.stanford.edu/projects/snli/snli_1.0.zip"
REQUIRED_FIELDS = ("gold_label", "sentence1", "sentence2", "sentence1_binary_parse", "sentence2_binary_parse")


def missing_snli_message(path: str | Path) -> str:
    """The start of the error for a missing SNLI file: which file, the URL of SNLI and the folder to unzip it into."""
    return f"{path} is missing: download {SNLI_URL} and unzip it into {handson.data_path()}"


class NLIFormatError(ValueError):
    """A line of an NLI jsonl file is malformed; the message starts with ``file:line:``."""


@dataclass
class NLIExample:
    """One premise/hypothesis pair.

    ``*_tokens`` are the words of the binary parse (case kept), ``*_transitions`` the SHIFT/REDUCE codes
    (``2 * len(tokens) - 1`` of them), ``label`` an index into ``LABELS``; ``genre`` is MultiNLI's genre field
    ("" for SNLI; the offline corpus stores the rule that produced the pair there).
    """

    premise: list[str]
    hypothesis: list[str]
    premise_transitions: list[int]
    hypothesis_transitions: list[int]
    label: int
    pair_id: str = ""
    genre: str = ""


def parse_binary(parse: str) -> tuple[list[str], list[int]]:
    """Turn a binary parse into tokens and shift-reduce transitions.

    ``"( ( A man ) ( is sleeping ) )"`` -> ``(["A", "man", "is", "sleeping"], [S, S, R, S, S, R, R])``: every word
    is a SHIFT, every closing bracket that joins two constituents a REDUCE, so ``n`` words give ``2n - 1`` transitions.
    A bracket around a single constituent (a unary node) adds no REDUCE. A sentence of one word may come without
    brackets (``"Outside"``).

    Raises:
        ValueError: unbalanced brackets, an empty constituent, a node with more than two children or an empty parse.
    """
    tokens: list[str] = []
    transitions: list[int] = []
    children: list[int] = []  # for every open bracket, how many finished constituents it holds so far
    top_level = 0  # finished constituents outside any bracket
    for item in parse.split():
        if item == "(":
            children.append(0)
            continue
        if item == ")":
            if not children:
                raise ValueError(f"unbalanced parse: ')' without '(' in {parse!r}")
            count = children.pop()
            if count == 0 or count > 2:
                raise ValueError(f"not a binary parse: a bracket holds {count} constituents in {parse!r}")
            if count == 2:
                transitions.append(REDUCE)
        else:
            tokens.append(item)
            transitions.append(SHIFT)
        # the word or bracket just closed is one finished constituent of its parent
        if children:
            children[-1] += 1
        else:
            top_level += 1
    if children:
        raise ValueError(f"unbalanced parse: {len(children)} '(' never closed in {parse!r}")
    if not tokens:
        raise ValueError(f"empty parse {parse!r}")
    if top_level != 1:
        raise ValueError(f"not a single tree: {top_level} top-level constituents in {parse!r}")
    return tokens, transitions


def read_nli_jsonl(path: str | Path, keep_unlabeled: bool = False, max_examples: int | None = None) -> list[NLIExample]:
    """Read an SNLI or MultiNLI jsonl file.

    Args:
        path: the ``.jsonl`` file.
        keep_unlabeled: keep rows whose gold label is ``"-"`` (label ``-1``); dropped by default, as in the book.
        max_examples: stop after this many kept examples (``None``: all).

    Raises:
        FileNotFoundError: the file is missing (the message says how to get SNLI).
        NLIFormatError: a line is not JSON, lacks a field, has an unknown label or an unbalanced parse; the message
            starts with ``file:line:``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{missing_snli_message(path)} (it creates {SNLI_DIR}/), or use the offline corpus "
                                "(chapter05_sequence.nli_corpus.generate_corpus)")
    examples = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise NLIFormatError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from e
            if not isinstance(row, dict):
                raise NLIFormatError(f"{where}: expected a JSON object, got {type(row).__name__}")
            missing = [k for k in REQUIRED_FIELDS if k not in row]
            if missing:
                raise NLIFormatError(f"{where}: missing field(s) {', '.join(missing)}")
            gold = row["gold_label"]
            if gold == "-" and not keep_unlabeled:
                continue
            if gold != "-" and gold not in LABEL_TO_ID:
                raise NLIFormatError(f"{where}: unknown gold_label {gold!r} "
                                     f"(expected one of {', '.join(LABELS)} or '-')")
            try:
                p_tokens, p_trans = parse_binary(row["sentence1_binary_parse"])
                h_tokens, h_trans = parse_binary(row["sentence2_binary_parse"])
            except ValueError as e:
                raise NLIFormatError(f"{where}: {e}") from e
            examples.append(NLIExample(p_tokens, h_tokens, p_trans, h_trans, LABEL_TO_ID.get(gold, -1),
                                       str(row.get("pairID", "")), str(row.get("genre", ""))))
            if max_examples is not None and len(examples) >= max_examples:
                break
    return examples


def snli_paths(root: str | Path | None = None) -> dict[str, Path]:
    """The three split files ``snli_1.0_{train,dev,test}.jsonl`` under ``root`` (default ``data/snli_1.0``)."""
    root = Path(root) if root is not None else handson.data_path(SNLI_DIR)
    return {split: root / f"snli_1.0_{split}.jsonl" for split in ("train", "dev", "test")}


def transitions_to_string(transitions: list[int]) -> str:
    """``[1, 1, 2]`` -> ``"S S R"`` (padding shown as ``PAD``)."""
    return " ".join(TRANSITION_NAMES[t] for t in transitions)
