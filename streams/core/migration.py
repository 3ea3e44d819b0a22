"""Bring a stored profile to the current schema: pure, field by field, nothing silently lost.

New fields take their defaults; a value the current schema no longer accepts (a removed field,
a changed type) is set aside in the record with the reason, and every such step is reported
as a ``migrate`` change so the next event tells subscribers what happened.
"""

from typing import Any

from schemas import Evidence, FieldChange, ProfileRecord, SetAside
from streams.core.profile_schema import ProfileSchema

__all__ = ["migrate"]


def _evidence(record: ProfileRecord, schema: ProfileSchema) -> Evidence:
    return Evidence(
        message_id=f"schema:{schema.schema_id}", quote=f"migrated from {record.schema_id}"
    )


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
        if name not in record.profile:
            profile[name] = spec.default
            if record.profile:  # a new field, not a new profile
                changes.append(
                    FieldChange(
                        field=name, op="migrate", old=None, new=spec.default, evidence=evidence
                    )
                )
            continue
        old = record.profile[name]
        try:
            profile[name] = spec.check(old)
        except ValueError as exc:
            profile[name] = spec.default
            aside[name] = SetAside(value=old, reason=str(exc), schema_id=record.schema_id)
            changes.append(
                FieldChange(field=name, op="migrate", old=old, new=spec.default, evidence=evidence)
            )
    for name in sorted(set(record.profile) - set(schema.fields)):
        aside[name] = SetAside(
            value=record.profile[name],
            reason=f"field removed in {schema.schema_id}",
            schema_id=record.schema_id,
        )
        changes.append(
            FieldChange(
                field=name, op="migrate", old=record.profile[name], new=None, evidence=evidence
            )
        )
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
