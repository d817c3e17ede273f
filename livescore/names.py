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
