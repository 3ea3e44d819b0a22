"""What each JSON Schema keyword of a profile property becomes in pydantic. Pure.

A schema author gets what they wrote: every keyword is either enforced (a pydantic constraint or
a validator) or refused with :class:`SchemaRefused`, naming the keyword and its JSON Pointer.
Keywords that only describe (``title``, ``description``, ``examples``, ``x-...``) are kept out
of validation, as JSON Schema itself does.

``pattern`` is searched, not anchored (as JSON Schema says), by pydantic's regex engine, which
has no look-around and no back-references: such a pattern is refused rather than half-checked.
"""

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AnyUrl, Field, TypeAdapter
from pydantic_core import SchemaError

__all__ = [
    "ANNOTATIONS",
    "FORMATS",
    "SCALARS",
    "SchemaRefused",
    "check_keywords",
    "list_constraints",
    "scalar_type",
    "type_of",
]

#: Keywords that describe a value without constraining it.
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
SCALARS: Mapping[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}
_NUMERIC = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
#: The keywords enforced on each type, beside ``type``, ``enum`` and ``const``.
_BY_TYPE: Mapping[str, frozenset[str]] = {
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "integer": _NUMERIC,
    "number": _NUMERIC,
    "array": frozenset({"items", "minItems", "maxItems", "uniqueItems"}),
    "boolean": frozenset(),
}
_NOUN = {"string": "strings", "integer": "numbers", "number": "numbers", "array": "arrays"}


class SchemaRefused(ValueError):
    """A keyword the converter does not enforce, or a value it cannot use; ``pointer`` is the
    JSON Pointer of the offending keyword in the schema file."""

    def __init__(self, pointer: str, problem: str) -> None:
        super().__init__(f"{pointer}: {problem}")
        self.pointer = pointer


def _date_time(text: str) -> None:
    if len(text) < 11 or text[10] not in "Tt " or datetime.fromisoformat(text).tzinfo is None:
        raise ValueError("not an RFC 3339 date-time with an offset, e.g. 2026-05-01T10:00:00Z")


def _date(text: str) -> None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError("not a date like 2026-05-01")
    date.fromisoformat(text)


def _time(text: str) -> None:
    if time.fromisoformat(text).tzinfo is None:
        raise ValueError("not a time with an offset, e.g. 10:00:00Z")


def _uuid(text: str) -> None:
    if not re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", text):
        raise ValueError("not a UUID like 123e4567-e89b-12d3-a456-426614174000")
    uuid.UUID(text)


def _email(text: str) -> None:
    # No email-validator here: the shape only (one @, a dotted domain, no spaces).
    if not re.fullmatch(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+", text):
        raise ValueError("not an email address like ana@example.com")


_URI = TypeAdapter(AnyUrl)

#: The ``format`` values enforced, each by a check that raises ValueError on a bad string.
FORMATS: Mapping[str, Callable[[str], object]] = {
    "date-time": _date_time,
    "date": _date,
    "time": _time,
    "email": _email,
    "uri": _URI.validate_python,
    "uuid": _uuid,
    "ipv4": IPv4Address,
    "ipv6": IPv6Address,
}


def _format_check(name: str) -> AfterValidator:
    check = FORMATS[name]

    def keep_if_valid(value: str) -> str:
        try:
            check(value)
        except ValueError as exc:
            raise ValueError(f"format {name}: {str(exc).splitlines()[0]}") from None
        return value  # the string as written, not the parsed object

    return AfterValidator(keep_if_valid)


def _unique(items: list[Any]) -> list[Any]:
    # JSON equality: true is not 1, but 1 is 1.0.
    seen = [(isinstance(item, bool), item) for item in items]
    if any(seen[i] in seen[:i] for i in range(len(seen))):
        raise ValueError("uniqueItems: the list holds the same item twice")
    return items


def type_of(spec: Mapping[str, Any], pointer: str) -> str | None:
    """The property's one type (``null`` aside); None for an ``enum``/``const`` without one."""
    kind = spec.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else repr(kind)
    if kind is None and ("enum" in spec or "const" in spec):
        return None
    if kind not in (*SCALARS, "array"):
        raise SchemaRefused(
            f"{pointer}/type",
            f"type {spec.get('type')!r} is not supported; use string, integer, number, "
            "boolean, or an array of those",
        )
    return str(kind)


def check_keywords(spec: Mapping[str, Any], pointer: str, kind: str | None) -> None:
    """Refuse the first keyword of ``spec`` that is not enforced for a property of ``kind``."""
    choice = "enum" in spec or "const" in spec
    allowed = ANNOTATIONS | {"type", "enum", "const"} | (set() if choice else _BY_TYPE[kind or ""])
    for keyword in spec:
        if keyword in allowed or keyword.startswith("x-"):
            continue
        where = f"{pointer}/{keyword}"
        if choice and any(keyword in words for words in _BY_TYPE.values()):
            raise SchemaRefused(where, f"{keyword!r} beside 'enum'/'const', which list every value")
        owner = next((t for t, words in _BY_TYPE.items() if keyword in words), None)
        if owner is not None:
            raise SchemaRefused(where, f"{keyword!r} applies to {_NOUN[owner]}, not to {kind}")
        raise SchemaRefused(
            where,
            f"keyword {keyword!r} is not enforced by profile-stream; remove it, or write the "
            "profile as a Python model (docs/custom-schemas.md)",
        )


def _count(spec: Mapping[str, Any], keyword: str, pointer: str) -> int | None:
    value = spec.get(keyword)
    if value is not None and (type(value) is not int or value < 0):
        raise SchemaRefused(f"{pointer}/{keyword}", f"{keyword} must be a whole number >= 0")
    return value


def _number(spec: Mapping[str, Any], keyword: str, pointer: str) -> float | None:
    value = spec.get(keyword)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise SchemaRefused(f"{pointer}/{keyword}", f"{keyword} must be a number")
    return value


def _numeric(spec: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    for keyword, closed, opened in (
        ("minimum", "ge", "gt"),
        ("maximum", "le", "lt"),
    ):
        exclusive = "exclusive" + keyword.capitalize()
        if isinstance(spec.get(exclusive), bool):  # draft 4: a flag on minimum/maximum
            limits[opened if spec[exclusive] else closed] = _number(spec, keyword, pointer)
            continue
        limits[closed] = _number(spec, keyword, pointer)
        limits[opened] = _number(spec, exclusive, pointer)
    step = _number(spec, "multipleOf", pointer)
    if step is not None and step <= 0:
        raise SchemaRefused(f"{pointer}/multipleOf", "multipleOf must be greater than 0")
    limits["multiple_of"] = step
    return limits


def _string(spec: Mapping[str, Any], pointer: str) -> tuple[dict[str, Any], list[Any]]:
    limits: dict[str, Any] = {
        "min_length": _count(spec, "minLength", pointer),
        "max_length": _count(spec, "maxLength", pointer),
    }
    if "pattern" in spec:
        pattern = spec["pattern"]
        try:
            TypeAdapter(Annotated[str, Field(pattern=pattern)])
        except (SchemaError, TypeError) as exc:
            raise SchemaRefused(
                f"{pointer}/pattern",
                f"pattern {pattern!r} cannot be used ({str(exc).splitlines()[-1].strip()}); "
                "look-around and back-references are not supported",
            ) from None
        limits["pattern"] = pattern
    checks = []
    if "format" in spec:
        if spec["format"] not in FORMATS:
            raise SchemaRefused(
                f"{pointer}/format",
                f"format {spec['format']!r} is not enforced by profile-stream; it enforces "
                f"{', '.join(FORMATS)} (or use a pattern)",
            )
        checks.append(_format_check(spec["format"]))
    return limits, checks


def scalar_type(spec: Mapping[str, Any], pointer: str) -> Any:
    """The pydantic type of a scalar property (or of an array's items), its constraints on it."""
    kind = type_of(spec, pointer)
    if kind == "array":
        raise SchemaRefused(f"{pointer}/type", "an array of arrays is not supported")
    check_keywords(spec, pointer, kind)
    if "const" in spec:
        return Literal[spec["const"]]
    if "enum" in spec:
        return Literal[tuple(v for v in spec["enum"] if v is not None)]
    assert kind is not None  # noqa: S101 - type_of returns None only beside enum/const
    checks: list[Any] = []
    if kind == "string":
        limits, checks = _string(spec, pointer)
    elif kind in ("integer", "number"):
        limits = _numeric(spec, pointer)
    else:
        limits = {}
    limits = {k: v for k, v in limits.items() if v is not None}
    if not (limits or checks):
        return SCALARS[kind]
    return Annotated[SCALARS[kind], Field(**limits), *checks]


def list_constraints(spec: Mapping[str, Any], pointer: str) -> tuple[dict[str, Any], list[Any]]:
    """An array property's ``Field`` arguments (item counts) and validators (uniqueness)."""
    counts = {
        "min_length": _count(spec, "minItems", pointer),
        "max_length": _count(spec, "maxItems", pointer),
    }
    unique = spec.get("uniqueItems", False)
    if not isinstance(unique, bool):
        raise SchemaRefused(f"{pointer}/uniqueItems", "uniqueItems must be true or false")
    return {k: v for k, v in counts.items() if v is not None}, [AfterValidator(_unique)] * unique
