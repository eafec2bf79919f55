// The official JavaScript SDKs (`openai`, `@anthropic-ai/sdk`) against
// keygate, set up as users set them up: baseURL pointed at keygate, a
// gateway client key as apiKey. keygate and the fake upstream are the real
// binaries, started on port 0. Run by .ci/run after `npm ci`:
//   KEYGATE_BIN=target/debug/keygate FAKE_UPSTREAM_BIN=target/debug/fake-upstream \
//     node --test tests/sdk-js/sdk.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI, { toFile } from "openai";

const CLIENT_KEY = "kg-client-test-key-js";
const ADMIN_KEY = "sdk-admin-key-0123456789";
const ANTHROPIC_KEYS = [
  "sk-ant-api03-js-test-one-0000000000000000AAAA",
  "sk-ant-api03-js-test-two-0000000000000000BBBB",
  "sk-ant-api03-js-test-three-000000000000000CCCC",
];
const OPENAI_KEYS = [
  "sk-proj-js-test-one-00000000000000000000DDDD",
  "sk-proj-js-test-two-00000000000000000000EEEE",
  "sk-proj-js-test-three-000000000000000000FFFF",
];
const TEXT = "Hello from the fake upstream";

/** Starts a binary; resolves with it and the URL its "listening on" line names. */
function start(bin, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    const logs = [];
    let found = false;
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        logs.push(line);
        const at = line.indexOf("listening on ");
        if (!found && at >= 0) {
          found = true;
          resolve({ child, logs, url: line.slice(at + 13).trim().split(/\s/)[0] });
        }
      });
    }
    child.on("exit", (code) => found || reject(new Error(`${bin} exited (${code}): ${logs.join("\n")}`)));
  });
}

const data = mkdtempSync(join(tmpdir(), "keygate-sdk-js-"));
let fake;
let keygate;
const allLogs = [];

async function startKeygate() {
  keygate = await start(process.env.KEYGATE_BIN, [], {
    PATH: process.env.PATH ?? "",
    NO_COLOR: "1",
    PORT: "0",
    DATABASE_URL: `sqlite://${data}/keygate.db`,
    ENCRYPTION_KEY: "4d".repeat(32),
    ADMIN_API_KEY: ADMIN_KEY,
    GATEWAY_API_KEYS: JSON.stringify([CLIENT_KEY]),
    ANTHROPIC_API_KEYS: JSON.stringify(ANTHROPIC_KEYS),
    OPENAI_API_KEYS: JSON.stringify(OPENAI_KEYS),
    ANTHROPIC_BASE_URL: fake.url,
    OPENAI_BASE_URL: fake.url,
    USAGE_FLUSH_SECS: "0.05",
  });
}

async function stopKeygate() {
  const exited = new Promise((resolve) => keygate.child.on("exit", resolve));
  keygate.child.kill("SIGTERM");
  await exited;
  allLogs.push(...keygate.logs);
}

before(async () => {
  fake = await start(process.env.FAKE_UPSTREAM_BIN, ["--port", "0"], { ...process.env });
  await startKeygate();
});

after(async () => {
  await stopKeygate();
  fake.child.kill("SIGTERM");
  // No provider key may ever reach keygate's own log.
  const text = allLogs.join("\n");
  for (const key of [...ANTHROPIC_KEYS, ...OPENAI_KEYS]) assert.ok(!text.includes(key));
});

const gpt = () => new OpenAI({ baseURL: `${keygate.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
const claude = () => new Anthropic({ baseURL: keygate.url, apiKey: CLIENT_KEY, maxRetries: 0 });

/** The ledger row of `requestId`, once the writer has it. */
async function ledgerRow(requestId) {
  for (let i = 0; i < 100; i++) {
    const page = await fetch(`${keygate.url}/api/usage/requests?limit=500&from=1h`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    }).then((r) => r.json());
    const row = page.requests.find((r) => r.request_id === requestId);
    if (row) return row;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ledger row for ${requestId}`);
}

test("a plain response", async () => {
  const response = await gpt().responses.create({ model: "gpt-4.1-mini", input: "Hello!" });
  assert.equal(response.output_text, TEXT);
  assert.equal(response.usage.output_tokens, 86);
});

test("a streamed response passes every event", async () => {
  const stream = await gpt().responses.create({ model: "gpt-4.1-mini", input: "Hello!", stream: true });
  const types = [];
  let text = "";
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === "response.output_text.delta") text += event.delta;
  }
  assert.equal(text, TEXT);
  assert.equal(types[0], "response.created");
  assert.equal(types.at(-1), "response.completed");
});

test("a previous_response_id follow-up lands on the creating key while others are healthy", async () => {
  const client = gpt();
  const { data: first, response } = await client.responses
    .create({ model: "gpt-4.1-mini", input: "Remember this." })
    .withResponse();
  const key = response.headers.get("x-keygate-key");
  for (let i = 0; i < OPENAI_KEYS.length + 1; i++) {
    const { data, response: followUp } = await client.responses
      .create({ model: "gpt-4.1-mini", input: "And then?", previous_response_id: first.id })
      .withResponse();
    assert.equal(data.previous_response_id, first.id);
    assert.equal(followUp.headers.get("x-keygate-key"), key);
  }
  // Without a previous response, requests still rotate over the pool.
  const keys = new Set();
  for (let i = 0; i < OPENAI_KEYS.length; i++) {
    const { response: other } = await client.responses
      .create({ model: "gpt-4.1-mini", input: "Hi" })
      .withResponse();
    keys.add(other.headers.get("x-keygate-key"));
  }
  assert.equal(keys.size, OPENAI_KEYS.length);
});

test("embeddings report their usage and cost", async () => {
  const { data, response } = await gpt()
    .embeddings.create({ model: "text-embedding-3-small", input: ["one", "two"] })
    .withResponse();
  assert.equal(data.data.length, 2);
  assert.equal(data.usage.prompt_tokens, 16);
  const row = await ledgerRow(response.headers.get("x-request-id"));
  assert.equal(row.route, "/v1/embeddings");
  assert.equal(row.tokens.input, 16);
  assert.equal(row.cost_nanos, 16 * 20); // $0.02 per million tokens
});

test("count_tokens", async () => {
  const count = await claude().messages.countTokens({
    model: "claude-sonnet-4-20250514",
    messages: [{ role: "user", content: "Hello!" }],
  });
  assert.equal(count.input_tokens, 25);
});

test("a message batch is created, polled and fetched through one key across a restart", async () => {
  const created = await claude().messages.batches.create({
    requests: [
      { custom_id: "one", params: { model: "claude-sonnet-4-20250514", max_tokens: 16, messages: [{ role: "user", content: "Hi" }] } },
      { custom_id: "two", params: { model: "claude-sonnet-4-20250514", max_tokens: 16, messages: [{ role: "user", content: "Ho" }] } },
    ],
  });
  assert.equal(created.processing_status, "in_progress");
  await stopKeygate();
  await startKeygate();
  const client = claude();
  const keys = new Set();
  let batch;
  for (let i = 0; i < ANTHROPIC_KEYS.length; i++) {
    const { data, response } = await client.messages.batches.retrieve(created.id).withResponse();
    keys.add(response.headers.get("x-keygate-key"));
    batch = data;
  }
  assert.equal(batch.processing_status, "ended");
  assert.equal(keys.size, 1, "every poll went to the creating key");
  const results = [];
  for await (const result of await client.messages.batches.results(created.id)) results.push(result);
  assert.deepEqual(results.map((r) => r.custom_id), ["one", "two"]);
  assert.equal(results[0].result.message.content[0].text, TEXT);
});

test("a file is uploaded and used by a batch", async () => {
  const client = gpt();
  const lines = ["a", "b"].map((id) =>
    JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions",
                     body: { model: "gpt-4o-mini", messages: [{ role: "user", content: id }] } }),
  );
  const { data: file, response } = await client.files
    .create({ file: await toFile(Buffer.from(lines.join("\n") + "\n"), "requests.jsonl"), purpose: "batch" })
    .withResponse();
  const key = response.headers.get("x-keygate-key");
  const { data: created, response: made } = await client.batches
    .create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" })
    .withResponse();
  assert.equal(made.headers.get("x-keygate-key"), key);
  const batch = await client.batches.retrieve(created.id);
  assert.equal(batch.status, "completed");
  const output = await (await client.files.content(batch.output_file_id)).text();
  const answers = output.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(answers.map((a) => a.custom_id), ["a", "b"]);
  assert.equal(answers[0].response.body.choices[0].message.content, TEXT);
});
