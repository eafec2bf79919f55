#!/usr/bin/env bash
# What the usage ledger costs a request, counted in instructions rather than
# timed: keygate runs under valgrind's cachegrind, which counts every
# instruction every thread executes and simulates the caches, once with
# USAGE_LEDGER=off and once with it on, in front of the fake upstream,
# serving a fixed number of requests. Two lengths of run per setting
# (SHORT and LONG requests): their difference, divided by LONG - SHORT,
# is the cost of a request with start-up and shutdown cancelled out.
#
# Why: on a shared 2-vCPU VM, single 2 s throughput rounds vary by ±15 %,
# so `keygate-bench --compare` needs hundreds of launches to resolve a 1 %
# difference. Instruction counts do not depend on the neighbours: a run's
# total repeats to about 0.2 %, the ledger's share of a request to a few
# hundred instructions (the writer's batches and drains follow the clock).
# They leave out the kernel's share of a request (about a fifth of
# keygate's CPU under keygate-bench) and price a cache miss at nothing, so
# the simulated misses are printed too.
#
# Needs valgrind, python3 and the release binaries:
#   cargo build --release --bins && benches/ledger_instructions.sh
set -euo pipefail

SHORT=${SHORT:-2000}
LONG=${LONG:-12000}
API=${API:-anthropic}
# keygate serves ~250 requests/s under cachegrind, about 60 times fewer than
# natively: a batch every 15 s holds as many rows (~4,000) as the default
# 250 ms does at full speed, so the per-batch work is priced fairly.
FLUSH_SECS=${FLUSH_SECS:-15}
# The caches of the VM keygate-bench ran on (2 MB L2 per core as the last
# level keygate has to itself).
CACHES=(--I1=32768,8,64 --D1=49152,12,64 --LL=2097152,16,64)

# keygate on one CPU, as keygate-bench pins it: tokio then runs one worker
# thread, as there, so a row is allocated and freed on the same thread (on
# two workers, a row recorded on one and freed by the writer on the other
# moves memory between the threads' allocator caches, which the bench never
# pays). PIN= (empty) runs it unpinned.
PIN=(${PIN-taskset -c 0})

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release
for tool in valgrind python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
for binary in keygate fake-upstream; do
    [ -x "$bin/$binary" ] || { echo "needs $bin/$binary: cargo build --release --bins" >&2; exit 1; }
done
# KEEP=DIR keeps the four cachegrind outputs in DIR (for cg_annotate, see
# the end); otherwise they go with a temporary directory.
if [ -n "${KEEP:-}" ]; then
    work=$KEEP
    mkdir -p "$work"
else
    work=$(mktemp -d)
fi
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# Waits for "listening on http://ADDR" in $1 and prints ADDR.
address_in() {
    for _ in $(seq 1200); do
        if grep -qo 'listening on http://[0-9.:]*' "$1"; then
            grep -o 'listening on http://[0-9.:]*' "$1" | head -1 | sed 's|.*http://||'
            return
        fi
        sleep 0.1
    done
    echo "no ready line in $1" >&2
    cat "$1" >&2
    exit 1
}

"$bin/fake-upstream" --port 0 >"$work/fake.log" 2>&1 &
pids+=($!)
upstream=http://$(address_in "$work/fake.log")

# One run: keygate with the ledger $1, serving $2 requests; prints
# cachegrind's summary counts.
measure() {
    local ledger=$1 requests=$2 dir=$work/$1-$2
    mkdir -p "$dir"
    (
        cd "$dir"
        exec env -i PATH="$PATH" HOST=127.0.0.1 PORT=0 \
            DATABASE_URL="sqlite://$dir/keygate.db" \
            ENCRYPTION_KEY="$(printf '7%.0s' {1..64})" \
            ANTHROPIC_API_KEYS='["sk-ant-api03-bench-key-aaaaaaaaaaaaaaaa","sk-ant-api03-bench-key-bbbbbbbbbbbbbbbb","sk-ant-api03-bench-key-cccccccccccccccc"]' \
            OPENAI_API_KEYS='["sk-proj-bench-key-aaaaaaaaaaaaaaaa","sk-proj-bench-key-bbbbbbbbbbbbbbbb","sk-proj-bench-key-cccccccccccccccc"]' \
            GATEWAY_API_KEYS='["kg-bench-client"]' \
            ANTHROPIC_BASE_URL="$upstream" OPENAI_BASE_URL="$upstream" \
            USAGE_LEDGER="$ledger" USAGE_FLUSH_SECS="$FLUSH_SECS" \
            RUST_LOG=warn,keygate::startup=info NO_COLOR=1 \
            "${PIN[@]}" valgrind --tool=cachegrind --cache-sim=yes "${CACHES[@]}" \
            --cachegrind-out-file="$dir/cachegrind.out" "$bin/keygate"
    ) >"$dir/keygate.log" 2>&1 &
    keygate_pid=$!
    # `measure` runs in a subshell of its own ($(...)): whatever ends it
    # takes this keygate along.
    trap 'kill "$keygate_pid" 2>/dev/null || true' EXIT
    local address
    address=$(address_in "$dir/keygate.log")
    python3 - "$address" "$requests" "$API" <<'PY'
import http.client, json, sys, threading
host, port = sys.argv[1].rsplit(":", 1)
requests, api = int(sys.argv[2]), sys.argv[3]
if api == "anthropic":
    path, headers = "/v1/messages", {"x-api-key": "kg-bench-client", "anthropic-version": "2023-06-01"}
    body = {"model": "claude-sonnet-4-20250514", "max_tokens": 256}
else:
    path, headers = "/v1/chat/completions", {"authorization": "Bearer kg-bench-client"}
    body = {"model": "gpt-4o-mini"}
headers["content-type"] = "application/json"
# The bodies keygate-bench sends.
body["messages"] = [{"role": "user", "content": "Say hello"}]
body = json.dumps(body)
failed = []
def client(count):
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    for _ in range(count):
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            failed.append(response.status)
threads = [threading.Thread(target=client, args=(requests // 4,)) for _ in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
if failed:
    sys.exit(f"{len(failed)} of {requests} requests failed, e.g. {failed[:3]}")
PY
    # A graceful stop: the ledger writes what it holds before exiting.
    kill -TERM "$keygate_pid"
    wait "$keygate_pid" || true
    grep '^summary:' "$dir/cachegrind.out" | cut -d' ' -f2-
}

echo "keygate under cachegrind, $API, $SHORT and $LONG requests per setting (4 clients)" >&2
off_short=$(measure off "$SHORT")
off_long=$(measure off "$LONG")
on_short=$(measure on "$SHORT")
on_long=$(measure on "$LONG")
events=$(grep '^events:' "$work/off-$SHORT/cachegrind.out" | cut -d' ' -f2-)

python3 - "$SHORT" "$LONG" "$events" "$off_short" "$off_long" "$on_short" "$on_long" <<'PY'
import sys
short, long = int(sys.argv[1]), int(sys.argv[2])
events = sys.argv[3].split()
off_s, off_l, on_s, on_l = ([int(n) for n in arg.split()] for arg in sys.argv[4:8])
def per_request(s, l):
    return dict(zip(events, ((b - a) / (long - short) for a, b in zip(s, l))))
off, on = per_request(off_s, off_l), per_request(on_s, on_l)
rows = [
    ("instructions", off["Ir"], on["Ir"]),
    ("L1 instruction misses", off["I1mr"], on["I1mr"]),
    ("L1 data misses", off["D1mr"] + off["D1mw"], on["D1mr"] + on["D1mw"]),
    ("last-level misses (2 MB)", off["ILmr"] + off["DLmr"] + off["DLmw"],
     on["ILmr"] + on["DLmr"] + on["DLmw"]),
]
print("| per request | ledger off | ledger on | on - off | on ÷ off |")
print("|---|---:|---:|---:|---|")
for name, a, b in rows:
    ratio = f"{b / a:.4f}× ({(b / a - 1) * 100:+.2f} %)" if a else "n/a"
    print(f"| {name} | {a:,.1f} | {b:,.1f} | {b - a:+,.1f} | {ratio} |")
PY
if [ -n "${KEEP:-}" ]; then
    cat >&2 <<EOF
Where the ledger's share goes, per function (each setting's long run minus
its short one cancels start-up; on minus off of those is the ledger's):
  cd $work && cg_diff off-$SHORT/cachegrind.out off-$LONG/cachegrind.out >off.d
  cg_diff on-$SHORT/cachegrind.out on-$LONG/cachegrind.out >on.d
  cg_diff off.d on.d >ledger.d && cg_annotate --show=Ir,I1mr,DLmr,DLmw ledger.d
EOF
fi
