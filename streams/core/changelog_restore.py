"""What a bulk restore of one changelog partition reads, and the offset it leaves persisted.

Offsets are in Faust's terms (``faust/tables/recovery.py``): the persisted offset of a partition
database is the last changelog offset applied to it (-1 or none: nothing applied), and the
highwater the last offset recovery restores up to (the partition's end offset minus one; under
exactly-once the last stable offset minus one). Faust's recovery resumes after the persisted
offset and is done with a partition when the two meet.

Under exactly-once the offsets below the highwater include transaction markers and aborted
records, which a ``read_committed`` consumer steps over without returning them. Once the reader's
position is past the highwater every offset up to it was either applied or is no record of the
table's, so the highwater itself is persisted: Faust then finds nothing left, where the last
applied record's offset would leave it waiting for records that will never come.
"""

from dataclasses import dataclass

__all__ = ["PartitionRestore"]


@dataclass
class PartitionRestore:
    """One partition's restore: it reads offsets ``first`` through ``last``; ``persisted`` is
    the offset its database holds as last applied."""

    first: int
    last: int
    persisted: int

    @classmethod
    def plan(cls, persisted: int | None, highwater: int | None) -> "PartitionRestore | None":
        """The restore of a partition whose database holds ``persisted`` and whose changelog
        ends at ``highwater`` (Faust's offsets); None when there is nothing to read."""
        applied = -1 if persisted is None or persisted < 0 else persisted
        if highwater is None or highwater <= applied:
            return None
        return cls(first=applied + 1, last=highwater, persisted=applied)

    @property
    def offsets(self) -> int:
        """How many changelog offsets the restore reads (records, markers, aborted records)."""
        return self.last - self.first + 1

    def wants(self, offset: int) -> bool:
        """Whether the record at ``offset`` is one to apply (a fetch may run past the end)."""
        return self.persisted < offset <= self.last

    def done(self, position: int) -> bool:
        """Whether a reader at ``position`` (the next offset it would return) has read
        everything up to the highwater."""
        return position > self.last

    def to_persist(self, last_record: int | None, position: int) -> int | None:
        """The offset to persist with a write of the records up to ``last_record`` (None: no
        record to write), the reader being at ``position``: the highwater once done, else the
        last record's offset; None when there is nothing to write. Counts it as persisted."""
        offset = self.last if self.done(position) else last_record
        if offset is None or offset <= self.persisted:
            return None
        self.persisted = offset
        return offset
