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

import anthropic
import openai
import pytest

CLIENT_KEY = "kg-client-test-key"
ANTHROPIC_KEYS = ["sk-ant-api03-sdk-test-one-0000000000000000AAAA", "sk-ant-api03-sdk-test-two-0000000000000000BBBB"]
OPENAI_KEYS = ["sk-proj-sdk-test-one-00000000000000000000CCCC"]
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


@pytest.fixture(scope="session")
def gateway():
    data = tempfile.mkdtemp(prefix="keygate-sdk-")
    fake, fake_url, _ = start(
        [os.environ["FAKE_UPSTREAM_BIN"], "--port", "0"], dict(os.environ), "listening on "
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "NO_COLOR": "1",
        "PORT": "0",
        "DATABASE_URL": f"sqlite://{data}/keygate.db",
        "ENCRYPTION_KEY": "3c" * 32,
        "ADMIN_API_KEY": "sdk-admin-key-0123456789",
        "GATEWAY_API_KEYS": json.dumps([CLIENT_KEY]),
        "ANTHROPIC_API_KEYS": json.dumps(ANTHROPIC_KEYS),
        "OPENAI_API_KEYS": json.dumps(OPENAI_KEYS),
        "ANTHROPIC_BASE_URL": fake_url,
        "OPENAI_BASE_URL": fake_url,
    }
    keygate, url, logs = start([os.environ["KEYGATE_BIN"]], env, "listening on ")
    yield url, logs
    keygate.terminate()
    fake.terminate()
    keygate.wait(timeout=10)
    fake.wait(timeout=10)
    # No provider key may ever reach keygate's own log.
    text = "".join(logs)
    for key in ANTHROPIC_KEYS + OPENAI_KEYS:
        assert key not in text


@pytest.fixture
def claude(gateway):
    return anthropic.Anthropic(base_url=gateway[0], api_key=CLIENT_KEY, max_retries=0)


@pytest.fixture
def gpt(gateway):
    return openai.OpenAI(base_url=gateway[0] + "/v1", api_key=CLIENT_KEY, max_retries=0)


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
    stranger = anthropic.Anthropic(base_url=gateway[0], api_key="not-a-client-key", max_retries=0)
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
    stranger = openai.OpenAI(base_url=gateway[0] + "/v1", api_key="not-a-client-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_openai_sdk_lists_models(gpt):
    ids = [model.id for model in gpt.models.list()]
    assert "gpt-4o-mini" in ids and "claude-sonnet-4-20250514" in ids
