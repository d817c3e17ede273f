"""Name keys: how two spellings of one team or competition are compared.

``name_key("Manchester United FC") == name_key("manchester united")``. Pure;
used by the store (the ``name_key`` columns) and by entity resolution.
"""

from __future__ import annotations

import re
import unicodedata

#: Words that carry no identity in club names ("FC Barcelona" ~ "Barcelona").
_NOISE = frozenset({"fc", "cf", "afc", "sc", "ac", "cd", "sv", "fk", "sk", "the", "club", "de"})
_SPLIT = re.compile(r"[^a-z0-9]+")


def name_key(name: str) -> str:
    """Lower-case, strip accents and punctuation, drop noise words."""
    folded = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    words = [w for w in _SPLIT.split(ascii_only.replace("&", " and ")) if w]
    kept = [w for w in words if w not in _NOISE]
    return " ".join(kept or words) or name.strip().lower()


def compatible(a: str, b: str) -> bool:
    """True when two name keys may name one team: equal, or the words of one
    are all words of the other and they share a word of 4+ letters
    ("brighton" ~ "brighton and hove albion", "leicester" ~ "leicester city";
    but not "manchester" ~ "manchester united" ~ "manchester city" alone: the
    caller still needs the kickoff and competition to agree, and reports
    ambiguity when several candidates remain)."""
    if a == b:
        return True
    wa, wb = set(a.split()), set(b.split())
    if not wa or not wb:
        return False
    small, large = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    return small <= large and any(len(w) >= 4 for w in small)
