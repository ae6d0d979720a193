"""The integrator docs run: their code is executed against real signed requests (issue 6).

Code blocks preceded by `<!-- file: NAME -->` in docs/*.md are what a reader saves as NAME;
these tests save and run them the same way.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from werkzeug import Response

from cards.integrator.preview import card_api_try, sample_customer
from cards.models import CardInstance
from cards.protocol.http import build_request_body, build_request_headers
from cards.protocol.schema import COMPONENT_NAMES, validate_components, validate_response
from cards.protocol.schema.models import FIELDS_UNDER

DOCS = Path(settings.BASE_DIR) / "docs"
README = Path(settings.BASE_DIR) / "README.md"
SECRET, OLD_SECRET = "whsec_current", "whsec_previous"


def saved_files(doc: str) -> dict[str, str]:
    """The code blocks of a doc that a reader saves as files, by file name."""
    text = (DOCS / doc).read_text()
    return dict(re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", text, flags=re.S))


def python_verifier() -> dict:
    namespace: dict = {}
    code = saved_files("signatures.md")["card_signature.py"]
    # The doc's own code, run as a reader would run it.
    exec(compile(code, "card_signature.py", "exec"), namespace)  # noqa: S102
    return namespace


def signed_request(**customer) -> tuple[bytes, str]:
    """A body and signature header exactly as the app sends them (SPEC §3)."""
    body = build_request_body(customer=sample_customer(**customer), keys=["plan", "orders"])
    headers = build_request_headers(configured=[("Authorization", "Bearer x")], body=body)
    return body, headers[settings.CARDS_SIGNATURE_HEADER]


@pytest.fixture
def two_secrets(settings):
    settings.CARDS_SIGNING_SECRETS = [SECRET, OLD_SECRET]
    settings.CARDS_SIGNATURE_MODE = "timestamped"


class TestPythonVerifier:
    def test_it_accepts_a_request_signed_by_the_app_under_either_secret(self, two_secrets):
        verify = python_verifier()["verify_cards_signature"]
        body, header = signed_request()

        assert header.count("v1=") == 2
        assert verify(body, header, [SECRET])
        assert verify(body, header, [OLD_SECRET])  # mid-rotation, the old one still works
        assert verify(body, header, ["whsec_unrelated", SECRET])

    def test_it_refuses_a_tampered_body_a_wrong_secret_and_an_old_timestamp(self, two_secrets):
        verify = python_verifier()["verify_cards_signature"]
        body, header = signed_request()

        assert not verify(body.replace(b"alex@example.com", b"eve@example.com"), header, [SECRET])
        assert not verify(body + b" ", header, [SECRET])
        assert not verify(body, header, ["whsec_wrong"])
        assert not verify(body, header, [SECRET], now=time.time() + 301)
        assert not verify(body, header, [SECRET], now=time.time() - 301)
        assert not verify(body, "", [SECRET])
        assert not verify(body, header.replace("v1=", "v2="), [SECRET])

    def test_a_reserialised_body_fails_which_is_why_it_hashes_raw_bytes(self, two_secrets):
        verify = python_verifier()["verify_cards_signature"]
        body, header = signed_request(email="zoë@example.com")

        assert verify(body, header, [SECRET])
        assert not verify(json.dumps(json.loads(body)).encode(), header, [SECRET])

    def test_the_body_mode_verifier_accepts_plain_compatible_signatures(self, settings):
        settings.CARDS_SIGNING_SECRETS = [SECRET]
        settings.CARDS_SIGNATURE_MODE = "body"
        verify = python_verifier()["verify_cards_body_signature"]
        body, header = signed_request()

        assert verify(body, header, [SECRET])
        assert not verify(body + b"x", header, [SECRET])

    def test_it_verifies_a_request_that_came_over_the_wire(self, two_secrets, card_api):
        verify = python_verifier()["verify_cards_signature"]
        verdicts = []

        def handler(request, body):
            verdicts.append(
                verify(request.get_data(), request.headers.get("Cards-Signature", ""), [SECRET])
            )
            return Response(json.dumps({"cards": []}), content_type="application/json")

        card_api.serve_handler(handler)

        card_api_try(url=card_api.url, headers=[], keys=["plan"], customer=sample_customer())

        assert verdicts == [True]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_node_verifier_agrees(two_secrets, tmp_path):
    (tmp_path / "card-signature.js").write_text(saved_files("signatures.md")["card-signature.js"])
    body, header = signed_request(email="zoë@example.com")
    (tmp_path / "body.bin").write_bytes(body)
    script = """
    const fs = require("node:fs");
    const { verifyCardsSignature } = require("./card-signature");
    const body = fs.readFileSync("body.bin");
    const [header, secret, old] = process.argv.slice(1);
    const later = Date.now() / 1000 + 301;
    const pretty = Buffer.from(JSON.stringify(JSON.parse(body), null, 1));
    console.log(JSON.stringify([
      verifyCardsSignature(body, header, [secret]),
      verifyCardsSignature(body, header, [old]),
      verifyCardsSignature(Buffer.concat([body, Buffer.from(" ")]), header, [secret]),
      verifyCardsSignature(pretty, header, [secret]),
      verifyCardsSignature(body, header, ["whsec_wrong"]),
      verifyCardsSignature(body, header, [secret], later),
      verifyCardsSignature(body, undefined, [secret]),
    ]));
    """

    result = subprocess.run(
        ["node", "-e", script, header, SECRET, OLD_SECRET],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )

    assert json.loads(result.stdout) == [True, True, False, False, False, False, False]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def documented_django_api(tmp_path):
    """docs/build-a-card-api.md's Django API, saved and started as a reader would."""
    for name, code in {
        **saved_files("signatures.md"),
        **saved_files("build-a-card-api.md"),
    }.items():
        (tmp_path / name).write_text(code)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["CARD_API_SECRETS"] = SECRET
    process = subprocess.Popen(
        [sys.executable, "card_api.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.stderr.read().decode()) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/cards"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.django_db
class TestTheFirstCardApi:
    def test_the_documented_django_api_serves_valid_signed_cards(
        self, settings, documented_django_api
    ):
        settings.CARDS_SIGNING_SECRETS = [SECRET]

        trial = card_api_try(
            url=documented_django_api,
            headers=[],
            keys=["plan", "orders", "unknown"],
            customer=sample_customer(external_id="u_123"),
        )

        assert trial.exchange.status_code == 200
        plan, orders, unknown = (trial.outcomes[k] for k in ("plan", "orders", "unknown"))
        assert plan.ok and len(plan.components) == 4
        assert (
            orders.ok and orders.components[1]["componentCopyButton"]["copyButtonValue"] == "u_123"
        )
        assert unknown.error_kind == CardInstance.ErrorKind.MISSING_CARD
        assert plan.ttl_seconds == 300

    def test_it_hides_orders_for_a_customer_without_an_external_id(
        self, settings, documented_django_api
    ):
        settings.CARDS_SIGNING_SECRETS = [SECRET]

        trial = card_api_try(
            url=documented_django_api, headers=[], keys=["orders"], customer=sample_customer()
        )

        assert trial.outcomes["orders"].ok
        assert trial.outcomes["orders"].components is None

    def test_it_refuses_a_request_signed_with_another_secret(self, settings, documented_django_api):
        settings.CARDS_SIGNING_SECRETS = ["whsec_wrong"]

        trial = card_api_try(
            url=documented_django_api, headers=[], keys=["plan"], customer=sample_customer()
        )

        assert trial.exchange.status_code == 401
        assert trial.outcomes["plan"].error_kind == CardInstance.ErrorKind.STATUS_CODE


def test_the_flask_and_fastapi_variants_are_valid_python():
    """Compiled only: Flask and FastAPI are not dependencies of this project."""
    files = saved_files("build-a-card-api.md")
    for name in ("card_api_flask.py", "card_api_fastapi.py"):
        compile(files[name], name, "exec")


def _json_examples(doc: str) -> list:
    blocks = re.findall(r"```json\n(.*?)```", (DOCS / doc).read_text(), flags=re.S)
    return [json.loads(block) for block in blocks]


@pytest.mark.parametrize("doc", ["protocol.md", "build-a-card-api.md"])
def test_every_response_and_components_example_is_valid(doc):
    examples = _json_examples(doc)
    checked = 0
    for example in examples:
        if isinstance(example, list):
            assert validate_components(example) == [], example
            checked += 1
        elif isinstance(example, dict) and "cards" in example:
            assert validate_response(example) == [], example
            checked += 1
    assert checked >= 1


def test_the_protocol_names_every_component_field_and_error_kind():
    protocol = (DOCS / "protocol.md").read_text()

    for name in COMPONENT_NAMES:
        assert f"`{name}`" in protocol, name
    for fields in FIELDS_UNDER.values():
        for field in fields:
            assert field in protocol, field
    for kind in CardInstance.ErrorKind.values:
        assert f"`{kind}`" in protocol, kind


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("path", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_relative_link_resolves(path):
    # Code is not prose: `CARDS[key](customer)` is no link.
    text = re.sub(r"```.*?```|`[^`\n]*`", "", path.read_text(), flags=re.S)
    for target in re.findall(r"\]\((?!https?://|mailto:)([^)\s]+)\)", text):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: {target}"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{path.name}: {target}"


def test_the_readme_leads_integrators_to_the_docs():
    readme = README.read_text()

    section = readme[readme.index("## For integrators") :]
    for doc in ("build-a-card-api.md", "protocol.md", "signatures.md", "integrator-tools.md"):
        assert f"docs/{doc}" in section
