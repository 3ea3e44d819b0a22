"""Apply a patch to a profile: each operation checked on its own, everything unmentioned kept.

Pure: no I/O, no Faust. The result says what changed (old and new values, with evidence) and
which operations were dropped and why.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas import Evidence, FieldChange, PatchOperation, Provenance
from streams.core.profile_schema import FieldSpec, ProfileSchema

__all__ = ["Dropped", "MergeResult", "merge"]


@dataclass(frozen=True)
class Dropped:
    """An operation that was not applied, and why."""

    operation: PatchOperation
    reason: str


@dataclass(frozen=True)
class MergeResult:
    """The profile after the patch, with its provenance, the changes and the dropped operations."""

    profile: dict[str, Any]
    provenance: dict[str, Provenance]
    changes: list[FieldChange] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return bool(a == b)


def _new_value(spec: FieldSpec, current: Any, op: PatchOperation) -> Any:
    """The field's value after ``op``; raises ValueError when ``op`` does not fit the field."""
    if op.op == "unset":
        return spec.default
    if not spec.is_list:
        if op.op != "set":
            raise ValueError(f"'{op.op}' works on list fields; '{spec.name}' holds one value")
        return spec.check(op.value)
    items = list(current or [])
    # A list is only ever added to by extraction: "set" adds each value it names.
    values = op.value if isinstance(op.value, list) else [op.value]
    checked = [spec.check_item(v) for v in values]
    if op.op == "remove":
        return [item for item in items if not any(_same(item, c) for c in checked)]
    for value in checked:
        if not any(_same(item, value) for item in items):
            items.append(value)
    return spec.check(items)


def _superseded(spec: FieldSpec, source: Provenance | None, at: datetime) -> bool:
    return not spec.is_list and source is not None and source.at > at


def _evidence_time(
    op: PatchOperation, evidence: Mapping[str, datetime], default_id: str | None
) -> tuple[str, datetime]:
    message_id = op.message_id or default_id or ""
    if message_id not in evidence:
        raise ValueError(f"evidence names no message of this batch ({op.message_id!r})")
    return message_id, evidence[message_id]


def merge(
    profile: Mapping[str, Any],
    provenance: Mapping[str, Provenance],
    locked: Sequence[str],
    operations: Sequence[PatchOperation],
    schema: ProfileSchema,
    *,
    evidence: Mapping[str, datetime],
    by: str = "extraction",
) -> MergeResult:
    """Apply ``operations`` in order to ``profile``.

    Args:
        profile: the current profile (JSON form); missing fields take their defaults.
        provenance: per field, where its current value came from.
        locked: fields extraction may not change (an operator's corrections ignore this).
        operations: the patch.
        schema: the profile schema the operations are checked against.
        evidence: the messages of this batch, id to time; every change must name one. When the
            batch has one message, operations that name none are attributed to it.
        by: ``"extraction"`` or ``"operator"``; recorded in provenance.

    Returns:
        The new profile and provenance, one change per operation that changed something, and
        the operations dropped with their reasons. Equal old and new values are no change.
    """
    current = {**schema.empty(), **{k: v for k, v in profile.items() if k in schema.fields}}
    sources = dict(provenance)
    changes: list[FieldChange] = []
    dropped: list[Dropped] = []
    default_id = next(iter(evidence)) if len(evidence) == 1 else None
    for op in operations:
        spec = schema.fields.get(op.field)
        try:
            if spec is None:
                raise ValueError(f"'{op.field}' is not a field of {schema.schema_id}")
            if by == "extraction" and op.field in locked:
                raise ValueError(f"'{op.field}' is locked by an operator")
            message_id, at = _evidence_time(op, evidence, default_id)
            new = _new_value(spec, current[op.field], op)
        except ValueError as exc:
            dropped.append(Dropped(op, str(exc)))
            continue
        old = current[op.field]
        if old == new:
            continue
        if by == "extraction" and _superseded(spec, sources.get(op.field), at):
            # Messages of one user can arrive out of time order when a producer spread them
            # over partitions: a single value keeps the newest statement.
            dropped.append(Dropped(op, "superseded: the field holds a newer message's value"))
            continue
        current[op.field] = new
        sources[op.field] = Provenance(message_id=message_id, at=at, by=by)
        changes.append(
            FieldChange(
                field=op.field,
                op=op.op,
                old=old,
                new=new,
                evidence=Evidence(message_id=message_id, quote=op.quote),
            )
        )
    return MergeResult(current, sources, changes, dropped)
