"""The schema of ``submission.yaml``: one typed record used by the harness that writes it, the
leaderboard that validates it and the table that shows it.

A submission's metadata comes from strangers, so every field has a type, a bound and a normal form:
text is NFKC-normalised and may not carry control characters or invisible / direction-changing
characters (a right-to-left override would make one team's row read as another's), every string and
list has a length cap, and the file itself is read without YAML aliases (a 442-byte file of nested
aliases expands to gigabytes) and under a size cap. ``parse`` reports every problem at once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

SUBMISSION_FILE = "submission.yaml"
#: Largest ``submission.yaml`` read (the metadata is a few hundred bytes; notes are capped below).
MAX_FILE_BYTES = 64 * 1024
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
URL = re.compile(r"^https?://[^\s<>\"']+$")


#: Combining marks one letter may carry (enough for any script's accents; more is a pile that draws over
#: the neighbouring rows of a table).
MAX_COMBINING_MARKS = 2


class MetaProblem(ValueError):
    """One field's problem (collected by ``SubmissionMeta.parse``)."""


def clean_text(value: object, *, max_length: int, multiline: bool = False) -> str:
    """``value`` as NFKC text within ``max_length`` characters, free of control and format characters.

    Raises:
        MetaProblem: not a string, empty, too long, or holding a control / invisible character
            (its code point is named, so the submitter can find it).
    """
    if not isinstance(value, str):
        raise MetaProblem(f"has type {type(value).__name__}; expected text")
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        raise MetaProblem("is empty")
    if len(text) > max_length:
        raise MetaProblem(f"is {len(text)} characters long; at most {max_length} are allowed")
    allowed = "\n\t" if multiline else ""
    stacked = 0
    for char in text:
        if char in allowed:
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            raise MetaProblem(f"contains the invisible or control character U+{ord(char):04X}; remove it")
        if category in ("Mn", "Me", "Mc"):  # every kind of mark counts towards one stack
            stacked += 1
        elif category not in ("Lm", "Sk"):  # a modifier letter or symbol does not start a new one
            stacked = 0
        if stacked > MAX_COMBINING_MARKS:  # marks piled on one letter draw over the rows around it
            raise MetaProblem(
                f"stacks more than {MAX_COMBINING_MARKS} combining marks on one letter (U+{ord(char):04X}); remove them"
            )
    return text


def _text(max_length: int, pattern: re.Pattern[str] | None = None, what: str = "") -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = clean_text(value, max_length=max_length)
        if pattern is not None and not pattern.match(text):
            raise MetaProblem(f"{text[:80]!r} is not {what}")
        return text

    return parse


def _notes(value: object) -> str:
    return clean_text(value, max_length=2000, multiline=True)


def _authors(value: object) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise MetaProblem("must be a name or a non-empty list of names")
    if len(names) > 100:
        raise MetaProblem(f"lists {len(names)} authors; at most 100 are allowed")
    return tuple(clean_text(name, max_length=120) for name in names)


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetaProblem(f"has type {type(value).__name__}; expected a number in [0, 1]")
    if not 0 <= value <= 1:
        raise MetaProblem(f"{value} is not in [0, 1]")
    return float(value)


def _seeds(value: object) -> tuple[int, ...]:
    seeds = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(seeds, list) or not seeds:
        raise MetaProblem("must be an integer or a non-empty list of integers")
    if len(seeds) > 100:
        raise MetaProblem(f"lists {len(seeds)} seeds; at most 100 are allowed")
    if not all(isinstance(s, int) and not isinstance(s, bool) and abs(s) < 2**63 for s in seeds):
        raise MetaProblem("seeds must be integers")
    return tuple(seeds)


def _parameters(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetaProblem(f"has type {type(value).__name__}; expected an integer")
    if not 0 <= value <= 10**13:
        raise MetaProblem(f"{value} is not a parameter count in [0, 10^13]")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise MetaProblem(f"has type {type(value).__name__}; expected true or false")
    return value


def _spec(description: str, parse: Callable[[object], Any], required: bool = True) -> dict[str, Any]:
    return {"description": description, "parse": parse, "required": required}


@dataclass(frozen=True)
class SubmissionMeta:
    """The metadata of one submission, every field checked and normalised (see ``parse``)."""

    method: str = field(metadata=_spec("method name shown in the table (at most 64 characters)", _text(64)))
    authors: tuple[str, ...] = field(metadata=_spec("author names", _authors))
    contact: str = field(metadata=_spec("an e-mail address", _text(254, EMAIL, "an e-mail address")))
    labeled_fraction: float = field(
        metadata=_spec("fraction of annotated training frames used with labels, in [0, 1] (0: none)", _fraction)
    )
    seeds: tuple[int, ...] = field(metadata=_spec("training seed(s)", _seeds))
    parameters: int = field(metadata=_spec("number of trainable parameters", _parameters))
    extra_training_data: bool = field(metadata=_spec("true if any data beyond MOSXAV train was used", _flag))
    toolkit_version: str = field(metadata=_spec("mosxav-bench version used to produce the predictions", _text(40)))
    code_url: str = field(default="", metadata=_spec("URL of the code", _text(500, URL, "an http(s) URL"), False))
    paper_url: str = field(default="", metadata=_spec("URL of the paper", _text(500, URL, "an http(s) URL"), False))
    partition: str | None = field(
        default=None,
        metadata=_spec(
            "path inside the submission of the partition YAML listing the labeled frames "
            "(required when labeled_fraction > 0)",
            _text(255),
            False,
        ),
    )
    notes: str = field(default="", metadata=_spec("free text (at most 2,000 characters)", _notes, False))

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Field -> what it holds (for error messages and the docs)."""
        return {f.name: f.metadata["description"] for f in fields(cls)}

    @classmethod
    def parse(cls, data: object) -> tuple[SubmissionMeta | None, list[tuple[str, str]]]:
        """The checked record and ``(field, problem)`` for every problem found (the record is None
        when there is any)."""
        if not isinstance(data, Mapping):
            return None, [("", "must be a mapping of the fields " + ", ".join(f.name for f in fields(cls)))]
        problems: list[tuple[str, str]] = []
        known = {f.name for f in fields(cls)}
        for key in sorted(map(str, set(data) - known)):
            problems.append((key[:80], f"unknown field {key[:80]!r}"))
        values: dict[str, Any] = {}
        for spec in fields(cls):
            value = data.get(spec.name)
            if value is None:
                if spec.metadata["required"]:
                    problems.append((spec.name, f"missing field {spec.name!r} ({spec.metadata['description']})"))
                continue
            try:
                values[spec.name] = spec.metadata["parse"](value)
            except MetaProblem as exc:
                problems.append((spec.name, f"field {spec.name!r} {exc}"))
        fraction = values.get("labeled_fraction")
        if fraction is not None and fraction > 0 and data.get("partition") is None:
            problems.append(("partition", "missing field 'partition': which training frames were labeled"))
        if problems:
            return None, problems
        return cls(**values), []

    def to_mapping(self) -> dict[str, Any]:
        """Plain YAML/JSON values, optional fields left out when unset."""
        out: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value in ("", None):
                continue
            out[spec.name] = list(value) if isinstance(value, tuple) else value
        return out


__all__ = ["EMAIL", "MAX_FILE_BYTES", "SUBMISSION_FILE", "URL", "MetaProblem", "SubmissionMeta", "clean_text"]
