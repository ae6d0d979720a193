"""The published JSON Schema: the committed file matches the models, and a real JSON
Schema validator agrees with ours on the whole corpus."""

import json

import jsonschema
import pytest
from django.core.management import call_command

from cards.protocol.schema import (
    response_json_schema,
)
from tests.cards.schema_corpus import INVALID, SCHEMA_FILE, SHAPES, VALID, wrap


def test_the_committed_schema_file_matches_the_models():
    # Regenerate with: manage.py export_card_schema --output docs/card-response.schema.json
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == response_json_schema()


def test_export_card_schema_writes_the_committed_file_byte_for_byte(tmp_path, capsys):
    call_command("export_card_schema", output=str(tmp_path / "schema.json"))
    assert (tmp_path / "schema.json").read_bytes() == SCHEMA_FILE.read_bytes()
    capsys.readouterr()
    call_command("export_card_schema")
    assert capsys.readouterr().out == SCHEMA_FILE.read_text(encoding="utf-8")


def test_the_schema_is_valid_draft_2020_12():
    schema = response_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.fixture(scope="module")
def schema_validator():
    return jsonschema.Draft202012Validator(response_json_schema())


@pytest.mark.parametrize("component", VALID)
def test_a_json_schema_validator_accepts_what_we_accept(schema_validator, component):
    assert list(schema_validator.iter_errors(wrap([component]))) == []


@pytest.mark.parametrize(("component", "path", "message"), INVALID)
def test_a_json_schema_validator_refuses_what_we_refuse(schema_validator, component, path, message):
    assert not schema_validator.is_valid(wrap([component]))


@pytest.mark.parametrize(("components", "expected"), SHAPES)
def test_a_json_schema_validator_refuses_bad_shapes_too(schema_validator, components, expected):
    assert not schema_validator.is_valid(wrap(components))
