"""Money, milliseconds and percentages, written the same way by every report and command.

One owner for the figures a user reads, so ``hive budget show``, ``hive analytics cost``, the
day/week/month reports and the A/B report cannot drift apart. A missing figure (``None``: no
limit, no successful call, no data) is ``-`` everywhere. Keyword options name the few forms that
legitimately differ (a limit the user typed keeps its digits; a narrow table column has no room
for a unit) - the form follows what the figure is, not which module prints it.

A leaf: pure Python, imports nothing, cheap enough for ``hive --help``'s import path.
"""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = ["MISSING", "ms", "pct", "usd"]

#: what a missing figure prints as
MISSING = "-"

#: the most decimals a typed amount keeps (:func:`usd` with ``typed=True``): a millionth of a dollar
_TYPED_PLACES = 6
#: significant digits of an amount below a cent (a request costs $0.000024, not "$0.0000")
_SUB_CENT_DIGITS = 2


def usd(value: float | Decimal | None, *, places: int | None = None, typed: bool = False) -> str:
    """US dollars, thousands grouped.

    * default - any figure the user reads: cents from one cent up (``$1,234.50``, ``$0.35``), and
      :data:`_SUB_CENT_DIGITS` significant digits below, never rounded to zero nor written in
      exponent form (``$0.0042``, ``$0.000024`` for 2.415e-05); zero is ``$0.00``;
    * ``places=N`` - exactly N decimals: a per-request or billed cost (``$0.000616`` with 6), or a
      figure compared with limits (``$8.50`` with 2);
    * ``typed=True`` - an amount a user typed (a limit), shown as typed: cents from $1 up and for
      zero, below $1 up to six decimals without trailing zeros, at least two (``$0.001``, ``$0.50``).
    """
    if value is None:
        return MISSING
    if places is not None:
        return f"${value:,.{places}f}"
    if typed:
        if abs(float(value)) >= 1 or value == 0:
            return f"${value:,.2f}"
        digits = f"{value:.{_TYPED_PLACES}f}".rstrip("0")
        return f"${digits}{'0' * max(0, 2 - len(digits.partition('.')[2]))}"
    amount = float(value)
    if amount == 0 or abs(amount) >= 0.00995:  # rounds to a cent or more: cents
        return f"${amount:,.2f}"
    decimals = _SUB_CENT_DIGITS - 1 - math.floor(math.log10(abs(amount)))
    return f"${amount:.{decimals}f}".rstrip("0")


def ms(value: float | None, *, unit: bool = True, compact: bool = False) -> str:
    """A duration given in milliseconds, to the millisecond, thousands grouped (``1,234 ms``).

    ``unit=False`` drops the unit, for a column whose header names it (``1,234``);
    ``compact=True`` fits a narrow column: ``250ms`` below a second, ``1.23s`` from one up.
    """
    if value is None:
        return MISSING
    if compact:
        return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms"
    return f"{value:,.0f} ms" if unit else f"{value:,.0f}"


def pct(value: float | None, *, places: int = 1) -> str:
    """A fraction (0..1) as a percentage: ``0.9731`` -> ``97.3%`` (``places`` decimals)."""
    if value is None:
        return MISSING
    return f"{value:.{places}%}"
