"""`obk connector list|schema|run|executions`: the connector surface, a loop over the registry.

Mirrors the `oo connector` grammar of spec/actions.md. No command knows any action by name.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import BaseModel
from sqlalchemy import select

from openbotkit.actions import REGISTRY, Action, Effect
from openbotkit.cli.state import state
from openbotkit.errors import (
    ConfirmationRequired,
    InternalError,
    InvalidInput,
    ObkError,
    Problem,
    UnknownService,
    error_class_for,
)
from openbotkit.ids import new_id, now_ms
from openbotkit.services import retention
from openbotkit.services.accounts import LOCAL_ACCOUNT
from openbotkit.store.tables import Execution

SERVICE = "chatbotkit"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _check_service(service: str | None) -> None:
    if service is not None and service != SERVICE:
        raise UnknownService(f"no service {service!r}; known services: {SERVICE}")


def effect_label(act: Action) -> str:
    """The effect as `schema` and `list` show it; input-dependent effects say so."""
    if isinstance(act.effect_rule, Effect):
        return act.effect_rule.value
    return str(act.extensions.get("effect_note") or "depends on input")


def schema_of(act: Action) -> dict[str, Any]:
    return {
        "action": act.name,
        "effect": effect_label(act),
        "description": act.description,
        "http": {"method": act.method, "path": act.path},
        "input": act.input_schema(),
        "output": act.output_schema(),
    }


def read_data(raw: str | None) -> Any:
    """`--data` as JSON text, @path, or - for standard input; omitted means {}."""
    if raw is None:
        return {}
    if raw == "-":
        raw = sys.stdin.read()
    elif raw.startswith("@"):
        path = Path(raw[1:])
        try:
            raw = path.read_text()
        except OSError as exc:
            raise InvalidInput(
                f"cannot read --data file {path}: {exc.strerror}",
                details=[Problem("", "readable", str(exc))],
            ) from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"--data is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            details=[Problem("", "json", exc.msg)],
        ) from None


class Runner:
    """Runs actions on the embedded engine as an account (the local one unless named) or,
    with a base URL, on a compatible server as the secret's account. `obk mcp` uses it too."""

    def __init__(self, base_url: str | None, account: str | None = None) -> None:
        self.st = state()
        self.base_url = base_url or self.st.settings.base_url
        if self.base_url and account:
            raise InvalidInput(
                "--account is for the embedded engine; on a server the secret"
                " (CHATBOTKIT_API_SECRET) decides the account",
                details=[Problem("/account", "exclusive", "not with --base-url")],
            )
        self.account = account or LOCAL_ACCOUNT
        self._account_id: str | None = None

    @property
    def backend_name(self) -> str:
        return self.base_url or "local"

    @property
    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = self.st.engine.ensure_account(self.account)
        return self._account_id

    def run(self, act: Action, inp: BaseModel) -> dict[str, Any]:
        if self.base_url:
            from openbotkit.client.http import HttpBackend

            return HttpBackend(self.base_url, self.st.settings.api_secret).run(act, inp)
        out = self.st.engine.run(act, inp, account_id=self.account_id)
        return act.dump_output(out)

    def stream(self, act: Action, inp: BaseModel) -> Iterator[dict[str, Any]]:
        if "stream" not in act.extensions:
            raise InvalidInput(
                f"action {act.name} does not stream; run it without --stream",
                details=[Problem("", "stream", "not a streaming action")],
            )
        if self.base_url:
            from openbotkit.client.http import HttpBackend

            backend = HttpBackend(self.base_url, self.st.settings.api_secret)
            yield from backend.stream(act, inp)
            return
        yield from self.st.engine.stream(act, inp, account_id=self.account_id)

    def record(
        self, execution_id: str, act_name: str, effect: str, error: ObkError | None, started: float
    ) -> None:
        """Keep a trace of every run; a failure to record never hides the run's own result."""
        try:
            with self.st.engine.store.session() as session:
                session.add(
                    Execution(
                        id=execution_id,
                        action=act_name,
                        effect=effect,
                        backend=self.backend_name,
                        status="error" if error else "ok",
                        error_code=error.code if error else None,
                        duration_ms=(time.perf_counter() - started) * 1000,
                        created_at=now_ms(),
                    )
                )
                retention.prune_executions(session, self.st.settings.retention_days)
        except Exception as exc:  # recording is best effort: never hide the run's own result
            click.echo(f"warning: execution not recorded: {exc}", err=True)


@click.group()
def connector() -> None:
    """Run ChatBotKit connector actions (embedded by default, or against a server)."""


@connector.command("list")
@click.argument("service", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_actions(service: str | None, as_json: bool) -> None:
    """List the actions with their effect and purpose."""
    _check_service(service)
    rows = [
        {"action": a.name, "effect": effect_label(a), "description": a.description}
        for a in REGISTRY
    ]
    if as_json:
        click.echo(_dumps({"service": SERVICE, "actions": rows}))
        return
    width = max(len(r["action"]) for r in rows)
    for r in rows:
        click.echo(f"{r['action'].ljust(width)}  {r['effect'].ljust(11)}  {r['description']}")


@connector.command("schema")
@click.argument("service")
@click.option("--action", "action_name", required=True, help="Action name, e.g. create_bot.")
@click.option("--json", "as_json", is_flag=True, help="Accepted for symmetry; output is JSON.")
def schema(service: str, action_name: str, as_json: bool) -> None:
    """Print an action's input and output JSON Schemas."""
    _check_service(service)
    click.echo(json.dumps(schema_of(REGISTRY.get(action_name)), indent=None if as_json else 2))


@connector.command("run")
@click.argument("service")
@click.option("--action", "action_name", required=True, help="Action name, e.g. create_bot.")
@click.option("--data", "data", help="Input: a JSON object, @path to a JSON file, or - for stdin.")
@click.option("--json", "as_json", is_flag=True, help="Print the {data, meta} envelope.")
@click.option("--dry-run", is_flag=True, help="Validate the input only.")
@click.option("--yes", is_flag=True, help="Confirm a destructive action.")
@click.option("--stream", is_flag=True, help="Print a completion's tokens as they come.")
@click.option("--base-url", help="A ChatBotKit-compatible server (or CHATBOTKIT_BASE_URL).")
def run(
    service: str,
    action_name: str,
    data: str | None,
    as_json: bool,
    dry_run: bool,
    yes: bool,
    stream: bool,
    base_url: str | None,
) -> None:
    """Run an action; exit 1 with a one-line error on failure."""
    execution_id = new_id()
    started = time.perf_counter()
    runner = Runner(base_url)
    act: Action | None = None
    effect = "unknown"
    try:
        _check_service(service)
        act = REGISTRY.get(action_name)
        inp = act.parse_input(read_data(data))
        effect = act.effect_for(inp).value
        if dry_run:
            click.echo(_dumps({"dryRun": True, "ok": True, "action": act.name, "effect": effect}))
            return
        if effect == Effect.DESTRUCTIVE and not yes and not _confirmed(act, as_json):
            raise ConfirmationRequired(
                f"{act.name} deletes data; run it again with --yes to confirm"
            )
        events = runner.stream(act, inp) if stream else None
        result = _print_stream(events, as_json) if events else runner.run(act, inp)
    except ObkError as err:
        _fail(err, execution_id, as_json, runner, action_name, effect, started)
    except Exception as exc:  # the one place a bug becomes internal_error
        bug = InternalError(f"{action_name} failed: {type(exc).__name__}: {exc}")
        _fail(bug, execution_id, as_json, runner, action_name, effect, started)
    runner.record(execution_id, act.name if act else action_name, effect, None, started)
    if as_json:
        click.echo(_dumps({"data": result, "meta": {"executionId": execution_id}}))
    elif not stream:
        from openbotkit.cli.render import render  # rich, only for people at a terminal

        render(result)


def _confirmed(act: Action, as_json: bool) -> bool:
    if as_json or not sys.stdin.isatty():
        return False
    return click.confirm(f"{act.name} deletes data. Continue?", default=False)


def _print_stream(events: Iterator[dict[str, Any]], as_json: bool) -> dict[str, Any]:
    """Show tokens as they arrive (JSONL events with --json); return the final result."""
    result: dict[str, Any] | None = None
    for event in events:
        kind, body = event.get("type"), event.get("data") or {}
        if as_json:
            click.echo(_dumps(event))
        elif kind == "token":
            click.echo(body.get("token", ""), nl=False)
        if kind == "result":
            result = body
        elif kind == "error":
            cls = error_class_for(code=body.get("code"))
            raise cls(str(body.get("message", "the stream failed")))
    if not as_json:
        click.echo()
    if result is None:
        raise InternalError("the stream ended without a result")
    return result


def _fail(
    err: ObkError,
    execution_id: str,
    as_json: bool,
    runner: Runner,
    action_name: str,
    effect: str,
    started: float,
) -> NoReturn:
    runner.record(execution_id, action_name, effect, err, started)
    click.echo(f"error: {err.code}: {err.message}", err=True)
    if as_json:
        envelope = {"error": err.to_json(), "meta": {"executionId": execution_id}}
        click.echo(_dumps(envelope))
    sys.exit(1)


@connector.command("executions")
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def executions(limit: int, as_json: bool) -> None:
    """List recent connector runs with their status and duration."""
    with state().engine.store.session(write=False) as session:
        rows = session.scalars(
            select(Execution).order_by(Execution.created_at.desc()).limit(limit)
        ).all()
        items = [
            {
                "executionId": r.id,
                "action": r.action,
                "effect": r.effect,
                "backend": r.backend,
                "status": r.status,
                "errorCode": r.error_code,
                "durationMs": round(r.duration_ms, 2),
                "createdAt": r.created_at,
            }
            for r in rows
        ]
    if as_json:
        click.echo(_dumps({"items": items}))
        return
    for it in items:
        code = f" {it['errorCode']}" if it["errorCode"] else ""
        click.echo(
            f"{it['executionId']}  {it['action']:<28} {it['status']:<5}{code:<24} "
            f"{it['durationMs']:>9.1f} ms  {it['backend']}"
        )
