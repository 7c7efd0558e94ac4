"""One way to write numbers, in the terminal and the reports alike."""

from __future__ import annotations

import math


def count(value) -> str:  # noqa: ANN001
    """A whole number with thousands separators ('12,345'); '–' when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{int(value):,}"


def percent(share, digits: int = 1) -> str:  # noqa: ANN001
    """A share (0.123) as a percentage ('12.3 %'); '–' when unknown."""
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "–"
    return f"{100 * share:.{digits}f} %"


def members_text(members: int, holdout: int) -> str:
    """Sizes always say how many of the members are in the holdout: '868 (77 holdout)'."""
    return f"{count(members)} ({count(holdout)} holdout)" if holdout else count(members)
