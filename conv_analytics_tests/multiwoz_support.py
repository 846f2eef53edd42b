"""MultiWOZ's five domains and the words (lemmas, as topic labels show them) that name each."""

from __future__ import annotations

MULTIWOZ_WORDS = {
    "hotel": {"hotel", "guesthouse", "wifi", "park", "stay", "star", "night", "room"},
    "train": {"train", "travel", "depart", "departure", "arrive", "ticket"},
    "restaurant": {"restaurant", "food", "serve", "table", "cuisine", "eat"},
    "taxi": {"taxi", "cab", "car"},
    "attraction": {"attraction", "museum", "college", "entrance", "entertainment", "architecture", "fee"},
}


def domains_named(label: str) -> set[str]:
    """The domains a topic label names a word of."""
    words = set(label.replace(" · ", " ").split())
    return {domain for domain, vocabulary in MULTIWOZ_WORDS.items() if words & vocabulary}
