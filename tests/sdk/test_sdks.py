"""The official Python SDKs against keygate, exactly as users set them up:
base_url pointed at keygate, a gateway client key as api_key. keygate and
the fake upstream are the real binaries, started on port 0 per session.

Run by .ci/run in a throwaway virtualenv:
    KEYGATE_BIN=target/debug/keygate FAKE_UPSTREAM_BIN=target/debug/fake-upstream pytest tests/sdk
"""

import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.request

import anthropic
import openai
import pytest

CLIENT_KEY = "kg-client-test-key"
ANTHROPIC_KEYS = ["sk-ant-api03-sdk-test-one-0000000000000000AAAA", "sk-ant-api03-sdk-test-two-0000000000000000BBBB"]
OPENAI_KEYS = [
    "sk-proj-sdk-test-one-00000000000000000000CCCC",
    "sk-proj-sdk-test-two-00000000000000000000DDDD",
    "sk-proj-sdk-test-three-000000000000000000EEEE",
]
ADMIN_KEY = "sdk-admin-key-0123456789"
TEXT = "Hello from the fake upstream"


def start(args, env, marker):
    """Starts a binary and waits for the log line that carries its URL."""
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            url = line[line.index(marker) + len(marker):].strip().split()[0]
            # Keep draining output so the child never blocks on a full pipe.
            threading.Thread(target=lambda: [lines.append(l) for l in process.stdout], daemon=True).start()
            return process, url, lines
    raise RuntimeError(f"{args[0]} exited before listening:\n{''.join(lines)}")


class Gateway:
    """keygate in front of the fake upstream; `restart` keeps its database."""

    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="keygate-sdk-")
        self.fake, self.fake_url, _ = start(
            [os.environ["FAKE_UPSTREAM_BIN"], "--port", "0"], dict(os.environ), "listening on "
        )
        self.logs = []
        self.start()

    def start(self):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "NO_COLOR": "1",
            "PORT": "0",
            "DATABASE_URL": f"sqlite://{self.data}/keygate.db",
            "ENCRYPTION_KEY": "3c" * 32,
            "ADMIN_API_KEY": ADMIN_KEY,
            "GATEWAY_API_KEYS": json.dumps([CLIENT_KEY]),
            "ANTHROPIC_API_KEYS": json.dumps(ANTHROPIC_KEYS),
            "OPENAI_API_KEYS": json.dumps(OPENAI_KEYS),
            "ANTHROPIC_BASE_URL": self.fake_url,
            "OPENAI_BASE_URL": self.fake_url,
            "USAGE_FLUSH_SECS": "0.05",
        }
        self.keygate, self.url, logs = start([os.environ["KEYGATE_BIN"]], env, "listening on ")
        self.logs.append(logs)

    def stop(self):
        self.keygate.terminate()
        self.keygate.wait(timeout=10)

    def restart(self):
        self.stop()
        self.start()

    def ledger_row(self, request_id):
        """The usage ledger's row of `request_id`, once it is written."""
        for _ in range(100):
            request = urllib.request.Request(
                f"{self.url}/api/usage/requests?limit=500&from=1h",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            with urllib.request.urlopen(request) as answer:
                rows = json.load(answer)["requests"]
            for row in rows:
                if row["request_id"] == request_id:
                    return row
            time.sleep(0.05)
        raise AssertionError(f"no ledger row for {request_id}")


@pytest.fixture(scope="session")
def gateway():
    gateway = Gateway()
    yield gateway
    gateway.stop()
    gateway.fake.terminate()
    gateway.fake.wait(timeout=10)
    # No provider key may ever reach keygate's own log.
    text = "".join(line for logs in gateway.logs for line in logs)
    for key in ANTHROPIC_KEYS + OPENAI_KEYS:
        assert key not in text


@pytest.fixture
def claude(gateway):
    return anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)


@pytest.fixture
def gpt(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def test_anthropic_sdk_messages(claude):
    message = claude.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hello!"}],
    )
    assert message.content[0].text == TEXT
    assert message.usage.input_tokens == 25
    assert message.usage.output_tokens == 86
    assert message.stop_reason == "end_turn"


def test_anthropic_sdk_streaming(claude):
    with claude.messages.stream(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hello!"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == TEXT
    assert final.usage.output_tokens == 86


def test_anthropic_sdk_sees_its_own_error_types(gateway, claude):
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model="claude-sonnet-4-20250514", max_tokens=10, messages=[])
    assert "messages" in str(bad.value)
    stranger = anthropic.Anthropic(base_url=gateway.url, api_key="not-a-client-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(
            model="claude-sonnet-4-20250514", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )


def test_anthropic_sdk_lists_models(claude):
    ids = [model.id for model in claude.models.list()]
    assert "claude-sonnet-4-20250514" in ids


def test_openai_sdk_chat_completions(gpt):
    completion = gpt.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}]
    )
    assert completion.choices[0].message.content == TEXT
    assert completion.usage.total_tokens == 111


def test_openai_sdk_streaming_with_usage(gpt):
    chunks = list(
        gpt.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hello!"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    assert chunks[-1].usage.total_tokens == 111


def test_openai_sdk_streaming_without_usage_gets_no_usage_chunk(gpt):
    chunks = list(
        gpt.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}], stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT


def test_openai_sdk_with_a_claude_model_is_translated(gpt):
    completion = gpt.chat.completions.create(
        model="claude-sonnet-4-20250514",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}],
        max_tokens=100,
    )
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 25
    assert completion.usage.completion_tokens == 86

    chunks = list(
        gpt.chat.completions.create(
            model="claude-sonnet-4-20250514",
            messages=[{"role": "user", "content": "Hello!"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[-1].usage.completion_tokens == 86


def test_openai_sdk_sees_its_own_error_types(gateway, gpt):
    with pytest.raises(openai.BadRequestError):
        gpt.chat.completions.create(
            model="claude-sonnet-4-20250514",
            messages=[{"role": "user", "content": "Hello!"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        )
    stranger = openai.OpenAI(base_url=gateway.url + "/v1", api_key="not-a-client-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_openai_sdk_lists_models(gpt):
    ids = [model.id for model in gpt.models.list()]
    assert "gpt-4o-mini" in ids and "claude-sonnet-4-20250514" in ids


def test_openai_sdk_plain_response(gpt):
    response = gpt.responses.create(model="gpt-4.1-mini", input="Hello!")
    assert response.output_text == TEXT
    assert response.usage.input_tokens == 25
    assert response.usage.output_tokens == 86


def test_openai_sdk_streamed_response_passes_every_event(gpt):
    events = list(gpt.responses.create(model="gpt-4.1-mini", input="Hello!", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == TEXT
    assert events[-1].response.usage.output_tokens == 86


def test_openai_sdk_follow_up_lands_on_the_creating_key(gpt):
    created = gpt.responses.with_raw_response.create(model="gpt-4.1-mini", input="Remember this.")
    key = created.headers["x-keygate-key"]
    first = created.parse()
    for _ in range(len(OPENAI_KEYS) + 1):
        follow_up = gpt.responses.with_raw_response.create(
            model="gpt-4.1-mini", input="And then?", previous_response_id=first.id
        )
        assert follow_up.headers["x-keygate-key"] == key
        assert follow_up.parse().previous_response_id == first.id
    # The other keys are healthy: requests without a previous response rotate.
    others = {
        gpt.responses.with_raw_response.create(model="gpt-4.1-mini", input="Hi").headers["x-keygate-key"]
        for _ in OPENAI_KEYS
    }
    assert len(others) == len(OPENAI_KEYS)
    assert gpt.responses.retrieve(first.id).id == first.id


def test_openai_sdk_embeddings_usage_and_cost(gateway, gpt):
    raw = gpt.embeddings.with_raw_response.create(model="text-embedding-3-small", input=["one", "two", "three"])
    embeddings = raw.parse()
    assert len(embeddings.data) == 3
    assert embeddings.usage.prompt_tokens == 24
    row = gateway.ledger_row(raw.headers["x-request-id"])
    assert row["route"] == "/v1/embeddings"
    assert row["tokens"]["input"] == 24
    assert row["cost_nanos"] == 24 * 20  # $0.02 per million tokens


def test_anthropic_sdk_count_tokens(claude):
    count = claude.messages.count_tokens(
        model="claude-sonnet-4-20250514", messages=[{"role": "user", "content": "Hello!"}]
    )
    assert count.input_tokens == 25


def test_anthropic_sdk_batch_across_a_restart(gateway, claude):
    params = {"model": "claude-sonnet-4-20250514", "max_tokens": 16}
    created = claude.messages.batches.create(
        requests=[
            {"custom_id": "one", "params": {**params, "messages": [{"role": "user", "content": "Hi"}]}},
            {"custom_id": "two", "params": {**params, "messages": [{"role": "user", "content": "Ho"}]}},
        ]
    )
    assert created.processing_status == "in_progress"
    gateway.restart()
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
    keys = set()
    for _ in ANTHROPIC_KEYS:
        polled = claude.messages.batches.with_raw_response.retrieve(created.id)
        keys.add(polled.headers["x-keygate-key"])
        batch = polled.parse()
    assert batch.processing_status == "ended"
    assert len(keys) == 1, "every poll went to the creating key"
    results = list(claude.messages.batches.results(created.id))
    assert [r.custom_id for r in results] == ["one", "two"]
    assert results[0].result.message.content[0].text == TEXT


def test_openai_sdk_file_used_by_a_batch(gpt):
    lines = [
        json.dumps({"custom_id": name, "method": "POST", "url": "/v1/chat/completions",
                    "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": name}]}})
        for name in ("a", "b")
    ]
    uploaded = gpt.files.with_raw_response.create(
        file=("requests.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch"
    )
    key = uploaded.headers["x-keygate-key"]
    made = gpt.batches.with_raw_response.create(
        input_file_id=uploaded.parse().id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert made.headers["x-keygate-key"] == key
    batch = gpt.batches.retrieve(made.parse().id)
    assert batch.status == "completed"
    answers = [json.loads(line) for line in gpt.files.content(batch.output_file_id).text.splitlines()]
    assert [a["custom_id"] for a in answers] == ["a", "b"]
    assert answers[0]["response"]["body"]["choices"][0]["message"]["content"] == TEXT
