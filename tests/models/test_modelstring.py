from __future__ import annotations

import pytest

from openbotkit.errors import InvalidInput
from openbotkit.models.modelstring import parse_model


def test_name_and_typed_options() -> None:
    spec = parse_model("gpt-4o/temperature=0.5/maxTokens=100/region=eu")
    assert spec.name == "gpt-4o"
    assert spec.options == {"temperature": 0.5, "maxTokens": 100, "region": "eu"}
    assert spec.max_tokens == 100


def test_plain_name() -> None:
    assert parse_model("smollm2").options == {}


@pytest.mark.parametrize("value", ["m/maxTokens=lots", "m/novalue", "m/=3"])
def test_malformed_options_name_the_field(value: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_model(value)
    assert err.value.details[0].pointer == "/model"
