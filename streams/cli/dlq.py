"""``profile-stream dlq``: list, show and replay dead letters (inputs the worker could not
apply, kept with their raw bytes in the dead-letter topic)."""

import base64
import time
import typing
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass

import click
from pydantic import ValidationError

from schemas import DeadLetter, DeadLetterReason
from streams.cli.progress import Progress
from streams.cli.support import echo_json, load, run
from streams.client.kafka_io import OutRecord, read_to_end
from streams.client.producer import produce
from streams.core.codecs import COMMAND_HEADER
from streams.core.forget_mark import FirstSeen, with_first_seen
from streams.core.origin import without_origin
from streams.core.signing import KEYS_SETTING, CommandSigning, resign, verify
from streams.kafka_security import KafkaConnection

__all__ = ["Letter", "dlq", "render"]

_REASONS = click.Choice(typing.get_args(DeadLetterReason))


@dataclass(frozen=True)
class Letter:
    """A dead letter with its place in the dead-letter topic (``partition:offset``)."""

    partition: int
    offset: int
    body: DeadLetter

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    def line(self) -> str:
        b = self.body
        return (
            f"{self.id}  {b.reason_code}  user={b.user_id or '-'}  "
            f"from {b.source_topic}/{b.source_partition}@{b.source_offset}  {b.reason}"
            + ("  [truncated]" if b.truncated else "")
        )

    def as_json(self) -> dict[str, typing.Any]:
        """The letter as ``--json`` prints it: its id and every field of the dead letter."""
        return {"id": self.id} | self.body.model_dump(mode="json", by_alias=True)

    def truncation(self) -> str:
        """What a truncated letter kept of the value, and how to find the whole record."""
        b = self.body
        kept = len(base64.b64decode(b.value_b64))
        return (
            f"the value was {b.original_size} bytes (sha256 {b.original_sha256}), too big for "
            f"a dead letter: only its first {kept} bytes are kept, so it cannot be replayed; "
            f"the whole record is at {b.source_topic} partition {b.source_partition} offset "
            f"{b.source_offset} while the topic's retention keeps it"
        )


async def _letters(topic: str, bootstrap: KafkaConnection) -> list[Letter]:
    letters = []
    progress = Progress("dlq: reading", "records")
    records = read_to_end(topic, bootstrap=bootstrap)
    async with aclosing(records):
        async for record in records:
            progress(progress.done + 1)
            try:
                body = DeadLetter.model_validate_json(record.value)
            except ValidationError:
                click.echo(
                    f"skipped {record.partition}:{record.offset}: not a dead letter", err=True
                )
                continue
            letters.append(Letter(record.partition, record.offset, body))
    progress.finish()
    return letters


def _read_all() -> list[Letter]:
    settings = load()
    return run(_letters(settings.dlq_topic, settings.kafka))


def _pick(letters: list[Letter], wanted: str) -> Letter:
    """The letter named ``partition:offset``, or by offset alone when only one has it."""
    if ":" in wanted:
        found = [letter for letter in letters if letter.id == wanted]
    else:
        found = [letter for letter in letters if str(letter.offset) == wanted]
    if len(found) == 1:
        return found[0]
    if not found:
        raise click.ClickException(f"no dead letter {wanted}; `profile-stream dlq list` lists them")
    ids = ", ".join(letter.id for letter in found)
    raise click.ClickException(f"offset {wanted} is on several partitions ({ids}); name one")


def render(raw: bytes) -> str:
    """Bytes as text when they are UTF-8, else as hex."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"(not UTF-8, {len(raw)} bytes, hex) {raw.hex()}"


def _raw_key(body: DeadLetter) -> bytes | None:
    return base64.b64decode(body.key_b64) if body.key_b64 is not None else None


@click.group()
def dlq() -> None:
    """Dead letters: inputs the worker could not apply (reason, source, raw bytes).

    Fix the cause (the producer, or the model settings for extraction_failed), then replay.
    """


_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (one line per letter).")


@dlq.command("list")
@click.option("--reason", type=_REASONS, help="Only dead letters with this reason code.")
@_JSON
def list_letters(reason: str | None, as_json: bool) -> None:
    """One line per dead letter: id (partition:offset), reason code, user, source, reason."""
    letters = [x for x in _read_all() if reason is None or x.body.reason_code == reason]
    for letter in letters:
        if as_json:
            echo_json(letter.as_json())
        else:
            click.echo(letter.line())
    click.echo(f"{len(letters)} dead letters", err=True)


@dlq.command()
@click.argument("letter_id", metavar="OFFSET")
@_JSON
def show(letter_id: str, as_json: bool) -> None:
    """Show one dead letter with its key and value decoded.

    OFFSET is the id `dlq list` prints (partition:offset), or an offset alone when only one
    partition has it. With --json: the dead letter's fields (key and value in base64).
    """
    letter = _pick(_read_all(), letter_id)
    if as_json:
        echo_json(letter.as_json())
        return
    b = letter.body
    key = _raw_key(b)
    for name, value in (
        ("dead letter", letter.id),
        ("reason", f"{b.reason_code}: {b.reason}"),
        ("user", b.user_id or "-"),
        ("message", b.message_id or "-"),
        ("source", f"{b.source_topic} partition {b.source_partition} offset {b.source_offset}"),
        ("failed at", b.failed_at.isoformat()),
        ("attempts", str(b.attempts)),
        ("key", "(none)" if key is None else render(key)),
        ("truncated", letter.truncation() if b.truncated else "no"),
        ("value", render(base64.b64decode(b.value_b64))),
    ):
        click.echo(f"{name + ':':<13}{value}")


#: No keys: commands are replayed with the signature they had.
_UNSIGNED = CommandSigning(keys=(), audience="")


def _record(
    body: DeadLetter, signing: CommandSigning = _UNSIGNED, *, sign_unverified: bool = False
) -> OutRecord | None:
    """The original record with its headers (less a re-route's origin header); a command
    dead-lettered before letters kept headers gets back the one that marks it. A chat message
    says where it was first taken in (the letter's source and ``failed_at``, unless its record
    said already), so a worker leaves it out if its user was forgotten since
    (``streams.core.forget_mark``).

    A command is signed again, now, with the first key of ``signing`` when its signature
    verifies under its keys, however old (or ``sign_unverified``: the operator read it and
    vouches for it); one that does not verify is held back (None): re-signing it would turn a
    forged command into a real one. Without keys a command goes with the signature it had
    (which workers refuse once it is older than PROFILE_STREAM_COMMAND_MAX_AGE_S).
    """
    key, value = _raw_key(body), base64.b64decode(body.value_b64)
    # A replayed letter is a new input: as a re-route's copy it would be skipped once a later
    # copy from the same partition was applied.
    headers = without_origin([(h.name, base64.b64decode(h.value_b64)) for h in body.headers])
    if not body.command:
        seen = FirstSeen.of(
            body.source_topic, body.source_partition, body.source_offset, body.failed_at.timestamp()
        )
        return OutRecord(key, value, with_first_seen(headers, seen))
    if COMMAND_HEADER not in headers:
        headers.append(COMMAND_HEADER)
    if not signing.keys:
        return OutRecord(key, value, headers)
    if sign_unverified or verify(key, value, headers, signing):
        return OutRecord(key, value, resign(key, value, headers, signing, time.time()))
    return None


def _prepare(
    chosen: list[Letter], signing: CommandSigning, sign_unverified: bool
) -> tuple[list[tuple[Letter, OutRecord]], list[Letter]]:
    """The records to re-publish, and the command letters held back (signature unverified)."""
    ready, held = [], []
    for letter in chosen:
        record = _record(letter.body, signing, sign_unverified=sign_unverified)
        if record is None:
            held.append(letter)
        else:
            ready.append((letter, record))
    return ready, held


def _warn_commands(chosen: list[Letter], held: list[Letter], signing: CommandSigning) -> None:
    if not signing.keys and any(x.body.command for x in chosen):
        click.echo(
            f"{KEYS_SETTING} is not set here: commands go with the signature they had, and "
            "workers refuse them unless it still verifies",
            err=True,
        )
    for letter in held:
        click.echo(
            f"held back {letter.id}: a command whose signature does not verify under "
            f"{KEYS_SETTING} (unsigned, forged, or signed with a retired key); read it with "
            f"`profile-stream dlq show {letter.id}`, and if it is yours, replay it with "
            "--sign-unverified",
            err=True,
        )


def _select(letters: list[Letter], reason: str | None, ids: Sequence[str]) -> list[Letter]:
    chosen = [_pick(letters, wanted) for wanted in ids] if ids else letters
    return [x for x in chosen if reason is None or x.body.reason_code == reason]


def _whole(chosen: list[Letter]) -> list[Letter]:
    """The letters that hold their whole record; a truncated one is refused, saying why."""
    for letter in chosen:
        if letter.body.truncated:
            click.echo(f"refused {letter.id}: {letter.truncation()}", err=True)
    return [letter for letter in chosen if not letter.body.truncated]


@dlq.command()
@click.option("--reason", type=_REASONS, help="Replay the dead letters with this reason code.")
@click.option(
    "--offset", "ids", multiple=True, metavar="OFFSET", help="Replay this one (repeatable)."
)
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter.")
@click.option("--dry-run", is_flag=True, help="Print what would be re-published, send nothing.")
@click.option(
    "--sign-unverified",
    is_flag=True,
    help="Sign commands whose signature does not verify (after reading them with `dlq show`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was re-published as JSON.")
def replay(
    reason: str | None,
    ids: tuple[str, ...],
    everything: bool,
    dry_run: bool,
    sign_unverified: bool,
    as_json: bool,
) -> None:
    """Re-publish dead letters' original key and value to the input topic.

    Choose them with --reason, --offset (both: those of the reason among the offsets) or
    --all. The worker decodes them again; one already applied is skipped (its message id is
    remembered), one without a key is re-routed by its user id, and a chat message of a user
    forgotten after it was first taken in is left out. Commands are signed again
    with PROFILE_STREAM_COMMAND_KEYS when their signature verifies; others are held back
    unless --sign-unverified. A truncated letter (its record was too big to keep whole) is
    refused: its bytes are not the original.
    """
    if not (reason or ids or everything):
        raise click.UsageError("choose what to replay: --reason CODE, --offset OFFSET or --all")
    settings = load()
    letters = _select(_read_all(), reason, ids)
    chosen = _whole(letters)
    ready, held = _prepare(chosen, settings.command_signing, sign_unverified)
    _warn_commands(chosen, held, settings.command_signing)
    verb = "would re-publish" if dry_run else "re-published"
    if not dry_run and ready:
        progress = Progress("dlq replay", "letters", len(ready))
        try:
            run(
                produce(
                    [record for _, record in ready],
                    bootstrap=settings.kafka,
                    topic=settings.input_topic,
                    on_sent=progress,
                )
            )
        finally:
            progress.finish()
    if as_json:
        echo_json(
            {
                "dry_run": dry_run,
                "topic": settings.input_topic,
                "replayed": [letter.id for letter, _ in ready],
                "held_back": [letter.id for letter in held],
                "refused_truncated": [x.id for x in letters if x.body.truncated],
            }
        )
    else:
        for letter, _ in ready:
            click.echo(f"{verb} {letter.line()}")
    click.echo(f"{verb} {len(ready)} dead letters to {settings.input_topic}", err=True)
