"""Named maps from fine labels to broad ones.

`condensed` is seed 004's "10 broader genres". The seed's own regex table is cut off in the
write-up and, applied with `str.replace(regex=True)`, rewrites substrings ("dance pop" -> "dance Pop");
this is a whole-label version: the first rule whose pattern occurs in the lower-cased genre wins.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

CONDENSED_GENRE_RULES: list[tuple[str, str]] = [
    ("adult standards", r"adult standards"),
    ("hip hop", r"hip hop|\brap\b|g funk"),
    ("r&b/soul", r"r&b|soul|funk|boogaloo|afrobeat"),
    ("disco", r"disco|hi-nrg"),
    ("rock", r"rock|metal|punk|merseybeat|british invasion|permanent wave"),
    ("dance", r"dance(?! pop)|big room|trance|house|garage"),
    ("folk/blues/country", r"folk|blues|country|yodeling|doo-wop"),
    ("jazz/world", r"jazz|bebop|latin|chanson"),
    ("pop", r"pop|boy band|girl group|mellow|talent show"),
    ("other", r".*"),
]

RULES = {"condensed": CONDENSED_GENRE_RULES}


def map_labels(labels: Iterable[str], class_map: str | Mapping[str, str]) -> list[str]:
    """Map each label with a named rule list (`"condensed"`) or an explicit {fine: broad} dict."""
    if isinstance(class_map, str):
        if class_map not in RULES:
            raise ValueError(f"unknown class_map {class_map!r}; expected one of {sorted(RULES)} or a mapping")
        compiled = [(broad, re.compile(pattern)) for broad, pattern in RULES[class_map]]
        return [next(b for b, rx in compiled if rx.search(str(lab).lower())) for lab in labels]
    return [class_map.get(lab, lab) for lab in labels]
