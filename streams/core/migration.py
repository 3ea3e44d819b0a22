"""Bring a stored profile to the current schema: pure, field by field, nothing silently lost.

New fields take their defaults; a value the current schema no longer accepts (a removed field,
a changed type) is set aside in the record with the reason, and every such step is reported
as a ``migrate`` change so the next event tells subscribers what happened.
"""

from typing import Any

from schemas import Evidence, FieldChange, ProfileRecord, SetAside
from streams.core.profile_schema import FieldSpec, ProfileSchema

__all__ = ["migrate"]


def _evidence(record: ProfileRecord, schema: ProfileSchema) -> Evidence:
    return Evidence(
        message_id=f"schema:{schema.schema_id}", quote=f"migrated from {record.schema_id}"
    )


def _change(name: str, old: Any, new: Any, evidence: Evidence) -> FieldChange:
    return FieldChange(field=name, op="migrate", old=old, new=new, evidence=evidence)


def _carried_over(
    record: ProfileRecord, spec: FieldSpec, evidence: Evidence
) -> tuple[Any, SetAside | None, FieldChange | None]:
    """One field of the current schema: its value, what is set aside, and the change, if any."""
    if spec.name not in record.profile:
        # A new field takes its default; it is a change only to a profile that has values.
        change = _change(spec.name, None, spec.default, evidence) if record.profile else None
        return spec.default, None, change
    old = record.profile[spec.name]
    try:
        return spec.check(old), None, None
    except ValueError as exc:
        aside = SetAside(value=old, reason=str(exc), schema_id=record.schema_id)
        return spec.default, aside, _change(spec.name, old, spec.default, evidence)


def migrate(
    record: ProfileRecord, schema: ProfileSchema
) -> tuple[ProfileRecord, list[FieldChange]]:
    """The record under ``schema`` and the changes that took it there (none if current)."""
    if record.schema_id == schema.schema_id:
        return record, []
    evidence = _evidence(record, schema)
    profile: dict[str, Any] = {}
    aside = dict(record.set_aside)
    changes: list[FieldChange] = []
    for name, spec in schema.fields.items():
        profile[name], set_aside, change = _carried_over(record, spec, evidence)
        if set_aside is not None:
            aside[name] = set_aside
        if change is not None:
            changes.append(change)
    for name in sorted(set(record.profile) - set(schema.fields)):
        old = record.profile[name]
        reason = f"field removed in {schema.schema_id}"
        aside[name] = SetAside(value=old, reason=reason, schema_id=record.schema_id)
        changes.append(_change(name, old, None, evidence))
    provenance = {
        k: v for k, v in record.provenance.items() if k in schema.fields and k not in aside
    }
    locked = tuple(f for f in record.locked if f in schema.fields)
    migrated = record.model_copy(
        update={
            "schema_id": schema.schema_id,
            "profile": profile,
            "set_aside": aside,
            "provenance": provenance,
            "locked": locked,
        }
    )
    return migrated, changes
