"""I/O shapes shared by every action: camelCase JSON, unknown keys rejected, spec §1.10 rules."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from openbotkit.access import Key

MAX_TAKE = 100
# The range of an integer an input may carry: a database's BIGINT column holds no more, and
# the request body's JSON parser reads integers exactly only up to there. Inputs state it (a
# value past it is a 400 naming the field, not a failed write). A field stored in an INTEGER
# column stops at MAX_INT32.
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
MAX_INT32 = 2**31 - 1
Int = Annotated[int, Field(ge=MIN_INT, le=MAX_INT)]


class Input(BaseModel):
    """Action input: camelCase keys only; an unknown key is an error naming it."""

    # defer_build: validators are built on first use, so a CLI call that runs one action does
    # not build those of every action at import.
    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        validate_by_alias=True,
        validate_by_name=False,
        defer_build=True,
    )

    def set_fields(self, *, exclude: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
        """The fields the caller gave (null included), by column name: partial updates use this."""
        return {k: getattr(self, k) for k in self.model_fields_set if k not in exclude}


class Output(BaseModel):
    """Action output, built from ORM rows by attribute name, dumped with camelCase keys."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        from_attributes=True,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        defer_build=True,
    )


def _check_meta(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        bad = [k for k in value if k.startswith("_")]
        if bad:
            raise ValueError(f"meta keys must not start with '_' (got {', '.join(bad)})")
    return value


MAX_ALIAS_CHARS = 128
_ALIAS = r"[a-z0-9_-]*"


def _check_alias(value: str | None) -> str | None:
    if value:
        if len(value) > MAX_ALIAS_CHARS:
            raise ValueError(f"alias must be at most {MAX_ALIAS_CHARS} characters")
        if not re.fullmatch(_ALIAS, value):
            raise ValueError(
                "Alias must contain only lowercase letters, numbers, hyphens, and underscores"
            )
    return value or None  # "" clears it


_MODEL_STRING = re.compile(r"[A-Za-z0-9._:@+-]+(/[A-Za-z][A-Za-z0-9_]*=[^/=]*)*")


def _string_schema(**rules: Any) -> WithJsonSchema:
    """The published schema of an optional string whose rules a validator below enforces (with
    its own message): the schema states them too, so a client (or a fuzzer) generating from the
    schema meets the validation."""
    return WithJsonSchema({"anyOf": [{"type": "string", **rules}, {"type": "null"}]})


def _check_model(value: str | None) -> str | None:
    if value and not _MODEL_STRING.fullmatch(value):
        raise ValueError("model must be 'name' or 'name/key=value/key=value...'")
    return value


Meta = Annotated[
    dict[str, Any] | None,
    AfterValidator(_check_meta),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object", "propertyNames": {"pattern": "^[^_]"}},
                {"type": "null"},
            ]
        }
    ),
    Field(description="Free-form JSON object; keys must not start with '_'."),
]
Alias = Annotated[
    str | None,
    AfterValidator(_check_alias),
    _string_schema(maxLength=MAX_ALIAS_CHARS, pattern=f"^{_ALIAS}$"),
    Field(description="Unique per account and resource type; lowercase letters, digits, - and _."),
]
ModelString = Annotated[
    str | None,
    AfterValidator(_check_model),
    # Empty is allowed: it clears the setting.
    _string_schema(pattern=f"^({_MODEL_STRING.pattern})?$"),
    Field(description="Model name, optionally with settings: 'name/key=value/...'."),
]
Visibility = Literal["private", "protected", "public"]


class LocalOnly:
    """Marks an input field that names a file on the machine running the action (`path`).

    The CLI and `obk mcp` on stdio run on the caller's own machine and honour it; anything
    reachable over the network (the REST server, MCP over HTTP) must never read or write the
    server's files for a client, so there the field is left out of the schema and refused.
    """


LOCAL_ONLY = LocalOnly()
LocalPath = Annotated[str | None, LOCAL_ONLY]


@functools.cache
def local_only_fields(model: type[BaseModel]) -> frozenset[str]:
    """The aliases of `model`'s fields marked LOCAL_ONLY (asked on every run: remembered)."""
    return frozenset(
        field.alias or name
        for name, field in model.model_fields.items()
        if any(isinstance(m, LocalOnly) for m in field.metadata)
    )


Timestamp = Annotated[int, Field(description="Milliseconds since the Unix epoch.")]


def _lenient_take(value: Any) -> int:
    """The server's rule: no error for junk or large values, clamp to 1..100, 0/NaN = 100."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return MAX_TAKE
    return MAX_TAKE if n <= 0 else min(n, MAX_TAKE)


def _lenient_order(value: Any) -> str | None:
    return value if value in ("asc", "desc") else None


def _meta_filter(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("meta filter must be an object of key -> value")
    return value


# A JSON Schema pattern (unanchored, as JSON Schema and pydantic read it): some text that is
# not only white space. The published schema states what the services refuse.
NOT_BLANK = r"\S"


def no_null_default(schema: dict[str, Any]) -> None:
    """json_schema_extra for a field whose Python default is None but where null is refused:
    the published schema shows neither."""
    schema.pop("default", None)


class ListInput(Input):
    """Pagination shared by every list action (spec §1.5)."""

    cursor: str | None = Field(
        None, description="Id of the last item of the previous page; '' means the first page."
    )
    order: Annotated[Literal["asc", "desc"] | None, BeforeValidator(_lenient_order)] = Field(
        None, description="Sort by creation time; default desc (messages: asc)."
    )
    take: Annotated[int, BeforeValidator(_lenient_take)] = Field(
        MAX_TAKE, description="Page size, clamped to 1..100."
    )


class BotConfigFields(Input):
    """A bot's configuration, which a conversation or a stateless completion may also give
    inline instead of (or on top of) naming a bot."""

    model: ModelString = None
    backstory: str | None = Field(None, description="The bot's instructions (system prompt).")
    dataset_id: str | None = Field(None, description="Dataset the bot answers from.")
    skillset_id: str | None = None
    privacy: bool | None = None
    moderation: bool | None = None


# The fields of BotConfigFields: what a public key may not give (services/keys.py), since they
# pick what the operator pays for (model and its limits) and what the bot says (backstory,
# dataset, skillset).
CONFIG_FIELDS = tuple(BotConfigFields.model_fields)


# A completion's per-request tools (actions/completion.py): they too change what the bot does
# and what it calls, so a public key may not give them either.
TURN_FIELDS = ("functions", "extensions")


def configured_fields(inp: BaseModel) -> list[str]:
    """The bot configuration fields (by alias) an input gives, null included, and the
    per-request tools it gives."""
    given = inp.model_fields_set
    fields = type(inp).model_fields
    names = [name for name in TURN_FIELDS if name in fields and name in given]
    if isinstance(inp, BotConfigFields):
        names = [name for name in CONFIG_FIELDS if name in given] + names
    return [fields[name].alias or name for name in names]


ViewT = TypeVar("ViewT", bound=BaseModel)


def public_view(key: Key | None, out: ViewT) -> ViewT:
    """What a caller sees of a bot or conversation: a public key (a web page's, or a
    conversation session's) never sees the backstory, the operator's instructions."""
    if key is not None and key.public and getattr(out, "backstory", None) is not None:
        return out.model_copy(update={"backstory": None})
    return out


class MetaFilterMixin(BaseModel):
    meta: Annotated[dict[str, Any] | None, BeforeValidator(_meta_filter)] = Field(
        None, description="Equality filters on meta: {key: value}; dotted keys reach nested values."
    )


class IdOutput(Output):
    id: str


ItemT = TypeVar("ItemT", bound=BaseModel)


class ListOutput(Output, Generic[ItemT]):
    """A page of items; `cursor` is the id to pass for the next page, "" after the last one."""

    items: list[ItemT]
    cursor: str


class Resource(Output):
    """Fields every stored resource returns."""

    id: str
    created_at: Timestamp
    updated_at: Timestamp
