"""An integration's `setup`: what it still needs, and its credentials checked with the channel
(Slack's auth.test, Telegram's getMe and webhook, Discord's user and slash command, WhatsApp's
phone number, an SMTP login). Above the channels' own services, which it calls.
"""

from __future__ import annotations

from typing import Any

from openbotkit.services import integrations, telegram
from openbotkit.services.context import AccountScope
from openbotkit.store.tables import Integration


def setup(scope: AccountScope, kind_name: str, ref: str) -> dict[str, Any]:
    """Check what the integration needs and, where the channel has one, its credentials.

    Slack: the bot token is checked with `auth.test` and the Events URL to paste into the Slack
    app is given (from OBK_PUBLIC_URL). Telegram: the token is checked with getMe, and the
    webhook registered (with OBK_PUBLIC_URL) or deleted (without: the workers poll). Discord: the
    bot token is checked and the slash command registered. WhatsApp: the access token is checked
    against the phone number id. Email: the SMTP login is tried, and whether this server listens
    for mail (OBK_EMAIL_LISTEN) is said. Kinds this installation does not run yet report their
    configuration only. A failed check is
    also kept as the integration's lastError.
    """
    from openbotkit.channels import slack  # httpx: not for the CLI's plain reads

    kind = integrations.KINDS[kind_name]
    with scope.transaction(write=False) as ctx:
        row = integrations.get(ctx, kind_name, ref)
        ctx.session.expunge(row)
    present = {**(row.settings or {}), **(row.secrets or {}), "bot_id": row.bot_id}
    missing = [integrations.camel(name) for name in kind.required if not present.get(name)]
    out: dict[str, Any] = {"id": row.id, "kind": kind.name, "runtime": kind.runtime}
    out["missing"] = missing
    error = None
    receiving = True
    if kind.name == "slack":
        url = integrations.events_url(scope, row)
        out["events_url"] = url
        token = integrations.secret(scope.runtime.vault, row, "bot_token")
        if token:
            try:
                who = slack.auth_test(scope.settings.slack_api_url, token)
                out["team_id"] = who.get("team_id")
                out["bot_user_id"] = who.get("user_id")
            except slack.SlackError as exc:
                error = f"the bot token was refused: {exc}"
        if url is None:
            out["message"] = (
                "set OBK_PUBLIC_URL to the address Slack can reach this server at (a tunnel "
                "will do), then paste the Events URL into the Slack app's Event Subscriptions"
            )
        else:
            out["message"] = "paste eventsUrl into the Slack app's Event Subscriptions"
    elif kind.name == "telegram":
        error = telegram.setup(scope, row, out)
    elif kind.name == "discord":
        error = _setup_discord(scope, row, out)
    elif kind.name == "whatsapp":
        error = _setup_whatsapp(scope, row, out)
    elif kind.name == "email":
        error, receiving = _setup_email(scope, row, out)
    else:
        out["message"] = (
            f"{kind.name} integrations are stored and configured, but this version does not "
            "run them yet: no message will be answered"
        )
    if error:
        out["error"] = error
        out["message"] = error
        with scope.transaction() as ctx:
            integrations.report_error(ctx, row.id, error)
    out["ready"] = kind.runtime and receiving and not missing and error is None
    return out


def _setup_discord(scope: AccountScope, row: Integration, out: dict[str, Any]) -> str | None:
    """Check the bot token (`GET /users/@me`) and register the slash command; the error, if
    either fails."""
    from openbotkit.channels import discord

    url = out["events_url"] = integrations.events_url(scope, row)
    handle = discord.handle_of(row.settings)
    app_id = str((row.settings or {}).get("app_id") or "")
    token = integrations.secret(scope.runtime.vault, row, "bot_token")
    if not discord.COMMAND_NAME.match(handle):
        return (
            f"handle {handle!r} is not a slash command name: 1 to 32 lower-case letters,"
            " digits, - or _"
        )
    if token and app_id:
        base = scope.settings.discord_api_url
        try:
            out["bot_user_id"] = discord.current_user(base, token).get("id")
            out["command_id"] = discord.register_command(base, token, app_id, handle)
        except discord.DiscordError as exc:
            return f"Discord refused the setup: {exc}"
    if url is None:
        out["message"] = (
            "set OBK_PUBLIC_URL to the address Discord can reach this server at (a tunnel will"
            " do), then paste eventsUrl into the application's Interactions Endpoint URL"
        )
    else:
        out["message"] = (
            f"paste eventsUrl into the application's Interactions Endpoint URL; /{handle} asks"
            " the bot"
        )
    return None


def _setup_whatsapp(scope: AccountScope, row: Integration, out: dict[str, Any]) -> str | None:
    """Check the access token against the phone number id; the error, if it fails."""
    from openbotkit.channels import whatsapp

    url = out["events_url"] = integrations.events_url(scope, row)
    number = str((row.settings or {}).get("phone_number_id") or "")
    token = integrations.secret(scope.runtime.vault, row, "access_token")
    if token and number:
        try:
            phone = whatsapp.phone_number(scope.settings.whatsapp_api_url, token, number)
        except whatsapp.WhatsAppError as exc:
            return f"the access token was refused for phoneNumberId {number}: {exc}"
        out["display_phone_number"] = phone.get("display_phone_number")
    verify = (row.settings or {}).get("verify_token")
    if url is None:
        out["message"] = (
            "set OBK_PUBLIC_URL to the address Meta can reach this server at (a tunnel will"
            " do), then paste eventsUrl and verifyToken into the app's WhatsApp webhook"
            " configuration and subscribe to messages"
        )
    else:
        out["message"] = (
            f"paste eventsUrl as the Callback URL and {verify} as the Verify token in the app's"
            " WhatsApp configuration, and subscribe to the messages field"
        )
    return None


def _setup_email(
    scope: AccountScope, row: Integration, out: dict[str, Any]
) -> tuple[str | None, bool]:
    """Email: log in to the SMTP server answers go through, and say where mail must arrive.
    Returns the failed check (or None) and whether this server receives mail at all."""
    from openbotkit.channels import email as email_channel

    settings = row.settings or {}
    listen = scope.settings.email_listen
    address = settings.get("address") or "the bot's address"
    if listen is None:
        out["message"] = (
            "set OBK_EMAIL_LISTEN (such as 0.0.0.0:25) so obk serve receives mail, then point "
            f"the MX record of {address}'s domain (or a forwarding rule) at this server"
        )
    else:
        out["message"] = (
            f"obk serve receives mail on {listen}: point the MX record of {address}'s domain "
            "(or a forwarding rule or relay) at it"
        )
    if not settings.get("smtp_url"):
        return None, listen is not None
    server = email_channel.SmtpServer(
        url=str(settings["smtp_url"]),
        username=str(settings.get("smtp_username") or ""),
        password=integrations.secret(scope.runtime.vault, row, "smtp_password") or "",
    )
    try:
        email_channel.check_login(server)
    except email_channel.SmtpError as exc:
        return f"the SMTP server refused: {exc}", listen is not None
    return None, listen is not None
