"""Numbers exactly as MapTable wrote them: never rounded through a float without a word.

A warehouse column of ids, amounts or counts must hold what MapTable holds. Python's `float`
keeps 15 to 17 significant digits: `"12345678901234567890"` read through a float becomes
12345678901234567168, and `"9007199254740993"` becomes ...992. So:

- an integer (a JSON integer, or ASCII digits in a string) stays a Python `int`, of any size;
- a decimal that a float holds exactly (its shortest `repr` is the same number) becomes a
  `float`; any other becomes a `decimal.Decimal` with every digit, which the Singer writer
  (msgspec, `decimal_format="number"`) writes as a JSON number with those digits;
- a number out of a float's range (1e400, or 1e-400 that is not zero) is no number for most
  warehouses: `OutOfRangeError`, and the caller keeps the value in `_invalid_values`;
- only ASCII decimal notation is a number: `"1_000"`, Arabic-Indic digits, `"NaN"`, `"inf"`,
  `"0x10"` are not (Python's `float()` would take most of them).

`json_float` is the JSON parser's hook for number literals with a fraction or exponent, so a
segment's numbers are exact from the moment it is parsed; `json_text` writes values back to
JSON text (for text properties and `_invalid_values`) without losing a digit and without
producing `NaN`, which is not JSON.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

# What a float literal can be without losing a digit: at most 15 significant digits (DBL_DIG).
# Such a literal has at most 16 characters once a '.' or an exponent is in it.
_SHORT_LITERAL: Final = 16
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Blanks a spreadsheet cell may carry around a number; nothing else is trimmed.
_BLANKS: Final = " \t"
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")


class NotANumberError(ValueError):
    """Text that is not ASCII decimal notation."""


class OutOfRangeError(ValueError):
    """A number no float (and so most warehouses) can hold: too large, or too small."""


def json_float(literal: str) -> float | Decimal:
    """The JSON parser's `parse_float` hook: a float when exact, else every digit.

    A number out of a float's range is kept as a Decimal too: the property's coercer judges it.
    """
    if len(literal) <= _SHORT_LITERAL and "e" not in literal and "E" not in literal:
        return float(literal)
    try:
        return _exact(literal)
    except OutOfRangeError:
        return Decimal(literal)


def number_from_text(text: str) -> int | float | Decimal:
    """The number an ASCII decimal text stands for, exactly.

    Raises:
        NotANumberError: the text is not ASCII decimal notation.
        OutOfRangeError: the number is out of a float's range.
    """
    stripped = text.strip(_BLANKS)
    if _INTEGER_TEXT.fullmatch(stripped):
        return int(stripped)
    if not _DECIMAL_TEXT.fullmatch(stripped):
        raise NotANumberError(text)
    return _exact(stripped)


def exact_number(value: Decimal) -> int | float | Decimal:
    """A parsed Decimal as the simplest exact form (raises OutOfRangeError when not finite)."""
    if not value.is_finite():
        raise OutOfRangeError(str(value))
    return _exact(str(value))


def _exact(literal: str) -> float | Decimal:
    """`literal` (a valid decimal literal) as a float when exact, else as a Decimal."""
    number = float(literal)
    if not math.isfinite(number):
        raise OutOfRangeError(literal)
    if _significant_digits(literal) <= 15:  # noqa: PLR2004 - DBL_DIG: always round-trips
        if number == 0.0 and _has_nonzero_digit(literal):
            raise OutOfRangeError(literal)  # underflow: 1e-400 is not zero
        return number
    try:
        exact = Decimal(literal)
    except InvalidOperation as exc:  # pragma: no cover - the literal was validated
        raise NotANumberError(literal) from exc
    if number == 0.0 and exact != 0:
        raise OutOfRangeError(literal)
    return number if Decimal(repr(number)) == exact else exact


def _significant_digits(literal: str) -> int:
    mantissa = re.split(r"[eE]", literal, maxsplit=1)[0]
    digits = mantissa.replace(".", "").lstrip("+-").lstrip("0")
    return len(digits)


def _has_nonzero_digit(literal: str) -> bool:
    mantissa = re.split(r"[eE]", literal, maxsplit=1)[0]
    return any(c in "123456789" for c in mantissa)


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by its text (`NaN` is not JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    if isinstance(value, Decimal) and not value.is_finite():
        return str(value)
    return value


def json_text(value: Any) -> str:
    """`value` as JSON text: every digit of every number kept, never `NaN`, UTF-8 as is."""
    return _ENCODER.encode(json_safe(value)).decode()
