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
    """An operation that was not applied, why (for a person), and a fixed code (a metric
    label; never content)."""

    operation: PatchOperation
    reason: str
    code: str = "invalid_value"


@dataclass(frozen=True)
class MergeResult:
    """The profile after the patch, with its provenance, the changes and the dropped operations."""

    profile: dict[str, Any]
    provenance: dict[str, Provenance]
    changes: list[FieldChange] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


class _Refused(ValueError):
    """Why an operation cannot apply, with the code it is counted under."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _same_item(a: Any, b: Any) -> bool:
    """List items match case-insensitively when both are text."""
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return bool(a == b)


def _new_value(spec: FieldSpec, current: Any, op: PatchOperation, by: str) -> Any:
    """The field's value after ``op`` (made ``by`` extraction or an operator); raises
    ValueError when ``op`` does not fit the field."""
    if op.op == "unset":
        return spec.default
    if not spec.is_list:
        if op.op != "set":
            raise _Refused(
                "wrong_op_for_field",
                f"'{op.op}' works on list fields; '{spec.name}' holds one value",
            )
        return spec.check(op.value)
    # A list is only ever added to by extraction: its "set" adds each value it names. An
    # operator's "set" says what the list holds: it replaces the list ("add" and "remove"
    # change one item), as the HTTP PATCH, the CLI, the client and the LangGraph store mean it.
    items = [] if op.op == "set" and by == "operator" else list(current or [])
    values = op.value if isinstance(op.value, list) else [op.value]
    checked = [spec.check_item(v) for v in values]
    if op.op == "remove":
        return [item for item in items if not any(_same_item(item, c) for c in checked)]
    for value in checked:
        if not any(_same_item(item, value) for item in items):
            items.append(value)
    return spec.check(items)


def _superseded(spec: FieldSpec, source: Provenance | None, at: datetime) -> bool:
    return not spec.is_list and source is not None and source.at > at


@dataclass(frozen=True)
class _Rules:
    """What every operation of one merge is checked against."""

    schema: ProfileSchema
    locked: Sequence[str]
    evidence: Mapping[str, datetime]
    by: str

    def field_of(self, op: PatchOperation) -> FieldSpec:
        """The field ``op`` changes; raises _Refused when it is unknown or locked."""
        spec = self.schema.fields.get(op.field)
        if spec is None:
            raise _Refused(
                "unknown_field", f"'{op.field}' is not a field of {self.schema.schema_id}"
            )
        if self.by == "extraction" and op.field in self.locked:
            raise _Refused("locked", f"'{op.field}' is locked by an operator")
        return spec

    def evidence_of(self, op: PatchOperation) -> tuple[str, datetime]:
        """The message ``op`` comes from, and its time; raises _Refused when it is not in
        the batch. In a batch of one message, an operation that names none comes from it."""
        default_id = next(iter(self.evidence)) if len(self.evidence) == 1 else None
        message_id = op.message_id or default_id or ""
        if message_id not in self.evidence:
            raise _Refused(
                "cites_unknown_message",
                f"evidence names no message of this batch ({op.message_id!r})",
            )
        return message_id, self.evidence[message_id]


def _apply(result: MergeResult, op: PatchOperation, rules: _Rules) -> None:
    """Apply ``op`` to the profile in ``result``, or record in ``result`` why it was dropped."""
    current = result.profile
    try:
        spec = rules.field_of(op)
        message_id, at = rules.evidence_of(op)
        new = _new_value(spec, current[op.field], op, rules.by)
    except _Refused as exc:
        result.dropped.append(Dropped(op, str(exc), exc.code))
        return
    except ValueError as exc:  # the field's own type refused the value
        result.dropped.append(Dropped(op, str(exc)))
        return
    old = current[op.field]
    if old == new:
        return
    if rules.by == "extraction" and _superseded(spec, result.provenance.get(op.field), at):
        # Messages of one user can arrive out of time order when a producer spread them
        # over partitions: a single value keeps the newest statement.
        result.dropped.append(
            Dropped(op, "superseded: the field holds a newer message's value", "superseded")
        )
        return
    current[op.field] = new
    result.provenance[op.field] = Provenance(message_id=message_id, at=at, by=rules.by)
    evidence = Evidence(message_id=message_id, quote=op.quote)
    result.changes.append(
        FieldChange(field=op.field, op=op.op, old=old, new=new, evidence=evidence)
    )


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
    result = MergeResult(current, dict(provenance))
    rules = _Rules(schema, locked, evidence, by)
    for op in operations:
        _apply(result, op, rules)
    return result
