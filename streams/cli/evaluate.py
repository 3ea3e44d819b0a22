"""``profile-stream eval``: score extraction on a labeled dataset, one or more configurations
side by side (docs/evaluation.md)."""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from schemas.evaluation import EvalUser, VariantReport
from streams.cli.progress import LOG_EVERY_S, TTY_EVERY_S, duration
from streams.cli.support import echo_json, load, run
from streams.core.kinds import load_kinds
from streams.errors import ConfigError, ProfileStreamError
from streams.evaluation.dataset import load_dataset, short
from streams.evaluation.direct import Outcome, run_direct
from streams.evaluation.pipeline import run_pipeline
from streams.evaluation.report import build_report, render_table, score_variant
from streams.evaluation.variants import Flush, Mode, Variant, parse_variant, settings_of
from streams.settings import Settings

__all__ = ["evaluate"]


class _Ticker:
    """``eval NAME: 3 of 16 users, 120 of 420 messages, 14 calls, 4m10s`` on stderr: rewritten
    in place on a terminal, a line every 10 s elsewhere."""

    def __init__(self, name: str, users: int, messages: int) -> None:
        self.name, self.users, self.messages = name, users, messages
        self.tty = sys.stderr.isatty()
        self.started = self.next_at = time.monotonic()

    def __call__(self, users_done: int | None, messages_done: int, calls: int) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + (TTY_EVERY_S if self.tty else LOG_EVERY_S)
        who = f"{users_done} of {self.users} users, " if users_done is not None else ""
        line = (
            f"eval {self.name}: {who}{messages_done} of {self.messages} messages extracted, "
            f"{calls} calls, {duration(now - self.started)}"
        )
        sys.stderr.write(f"\r{line}\x1b[K" if self.tty else f"{line}\n")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


@dataclass(frozen=True)
class _PipelineOptions:
    work_dir: Path
    timeout_s: float
    mark_ends: bool


async def _run(
    variant: Variant, users: list[EvalUser], base: dict[str, str], options: _PipelineOptions
) -> Outcome:
    total = sum(len(c.turns) for u in users for c in u.conversations)
    ticker = _Ticker(variant.name, len(users), total)
    try:
        if variant.mode == "direct":
            settings = settings_of(variant, base)
            return await run_direct(users, settings, variant.flush, ticker, guards=variant.guards)
        return await run_pipeline(
            users,
            variant,
            base,
            load(),
            ticker,
            work_dir=options.work_dir,
            timeout_s=options.timeout_s,
            mark_ends=options.mark_ends,
        )
    finally:
        ticker.finish()


def _check_endpoint(settings: Settings, base: dict[str, str]) -> None:
    if not (settings.openai_api_key or settings.openai_base_url or base.get("openai_base_url")):
        raise click.UsageError(
            "no model endpoint: pass --base-url (an OpenAI-compatible server) or set "
            "OPENAI_API_KEY / OPENAI_BASE_URL"
        )


@click.command("eval")
@click.argument("dataset", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["direct", "pipeline"]),
    default="direct",
    show_default=True,
    help="Straight through the extractor, or a worker on Kafka.",
)
@click.option(
    "--flush",
    type=click.Choice(["buffered", "per-message"]),
    default="buffered",
    show_default=True,
    help="A call per conversation, or per message.",
)
@click.option("--model", help="The model name (PROFILE_STREAM_MODEL).")
@click.option("--base-url", help="An OpenAI-compatible endpoint (OPENAI_BASE_URL).")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    metavar="NAME:KEY=VALUE,...",
    help="A configuration to compare (repeat); keys: mode, flush, guards (direct: on, off), "
    "any setting.",
)
@click.option(
    "--short",
    "short_run",
    is_flag=True,
    help="The fixed subset: users with the 'short' trait, else the first 4.",
)
@click.option("--users", "first", type=click.IntRange(min=1), help="Only the first N users.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the whole report (JSON) here.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the whole report as JSON, not the table."
)
@click.option(
    "--mark-ends",
    is_flag=True,
    help="Pipeline: set end_of_conversation on each last turn (no idle wait).",
)
@click.option(
    "--timeout",
    type=float,
    default=7200.0,
    show_default=True,
    help="Pipeline: seconds to wait for every message to be extracted.",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".profile-stream/eval"),
    show_default=True,
    help="Pipeline: where the workers' logs go.",
)
def evaluate(
    dataset: Path,
    mode: Mode,
    flush: Flush,
    model: str | None,
    base_url: str | None,
    variants: tuple[str, ...],
    short_run: bool,
    first: int | None,
    report_path: Path | None,
    as_json: bool,
    mark_ends: bool,
    timeout: float,
    work_dir: Path,
) -> None:
    """Score the profiles extracted from DATASET (profile-stream-eval/1) against its labels:
    precision, recall, F1 per field, trap hits, unsupported values, updates followed, cost."""
    settings = load()
    base = {k: v for k, v in (("model", model), ("openai_base_url", base_url)) if v}
    _check_endpoint(settings, base)
    schema = next(k for k in load_kinds(None, settings.profile_model) if k.is_user).schema
    try:
        data = load_dataset(dataset, schema)
        chosen = [parse_variant(s, mode=mode, flush=flush) for s in variants]
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    users = short(data) if short_run else data.users[:first]
    work_dir.mkdir(parents=True, exist_ok=True)
    options = _PipelineOptions(work_dir.resolve(), timeout, mark_ends)
    results: list[VariantReport] = []
    for variant in chosen or [Variant(flush, mode, flush)]:
        try:
            outcome = run(_run(variant, users, base, options))
        except ProfileStreamError as exc:
            raise click.ClickException(f"variant {variant.name}: {exc}") from None
        results.append(score_variant(variant, users, outcome))
    report = build_report(str(dataset), data.description, users, results)
    if as_json:
        echo_json(report.model_dump(mode="json"))
    else:
        click.echo(render_table(report), nl=False)
    if report_path is not None:
        report_path.write_text(report.model_dump_json(indent=2) + "\n")
        click.echo(f"report: {report_path}", err=True)
