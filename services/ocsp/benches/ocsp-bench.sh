#!/usr/bin/env bash
# Cached OCSP throughput and latency of pnc against `openssl ocsp` answering the same
# request directly, measured in one run with wrk (HTTP/1.1 keep-alive, loopback): RFC 6960
# `POST /ocsp`, and the OCPP form `POST /v1/ocpp/get-certificate-status` (CPO token, JSON).
#
#   services/ocsp/benches/ocsp-bench.sh [path/to/release/pnc] [seconds] [connections]
#   OCSP_BENCH_MODE=instructions services/ocsp/benches/ocsp-bench.sh [pnc] [requests]
#   OCSP_BENCH_MODE=syscalls services/ocsp/benches/ocsp-bench.sh [pnc] [requests]
#
# The second form counts instead of timing: pnc runs under valgrind's callgrind and the
# script prints the user-space instructions per cached `POST /ocsp` request (counters zeroed
# after a warm-up, then `ab -k` sends [requests], 20000 by default). Instruction counts do
# not depend on machine load, so they compare builds on a busy machine. The third counts
# pnc's system calls per request (perf's syscall tracepoints, else strace -c) while `ab -k -c 64` sends
# [requests] to `POST /ocsp`, then to the OCPP form; also independent of load.
#   OCSP_BENCH_MODE=cpu services/ocsp/benches/ocsp-bench.sh [pnc] [requests]
# reports pnc's CPU time (user and system, from /proc) per request under `ab -k -c 64`:
# less sensitive to load than req/s; alternate two builds back to back to compare them.
#
# pnc reads its configuration from the environment as always, e.g.
#   PNC_HTTP__SERVER_THREADS=2 services/ocsp/benches/ocsp-bench.sh target/release/pnc 10 64
# serves HTTP on two threads with a listener each (see BENCHMARKS-ocsp.md).
#
# A benchmark, not a test: bounded in time (wrk -d) and in connections (wrk -c); not part
# of the test suite. Needs openssl, wrk, curl, python3 (and ab from apache2-utils, optional).
set -euo pipefail
# Absolute, because the script works in a temporary directory.
PNC=$(realpath "${1:-target/release/pnc}")
SECONDS_PER_RUN=${2:-15}
CONNECTIONS=${3:-64}
WORK=$(mktemp -d)
PNC_PORT=18480
OPENSSL_PORT=18481
cleanup() { kill "${PNC_PID:-}" "${OPENSSL_PID:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"

# A test PKI: root (pool) -> Sub-CA (AIA = the openssl responder) -> leaf, delegated signer.
cat > ext.cnf <<CNF
[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[sub]
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
authorityInfoAccess=OCSP;URI:http://127.0.0.1:$OPENSSL_PORT/
[leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
authorityKeyIdentifier=keyid
authorityInfoAccess=OCSP;URI:http://127.0.0.1:$OPENSSL_PORT/
[signer]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=OCSPSigning
CNF
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"; }
issue() { key "$1"; openssl req -new -key "$1.key" -out "$1.csr" -subj "$2";
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -set_serial "$4" -days 20 \
    -extfile ext.cnf -extensions "$5" -out "$1.pem" -sha256 2>/dev/null; }
key root
openssl req -new -x509 -key root.key -out root.pem -days 30 -subj "/CN=Bench Root" \
  -extensions ca -config ext.cnf -sha256
issue sub "/CN=Bench Sub-CA" root 0x1001 sub
issue signer "/CN=Bench Responder" sub 0x2001 signer
issue leaf "/CN=Bench Leaf" sub 0x3001 leaf
printf 'V\t301231235959Z\t\t3001\tunknown\t/CN=Bench Leaf\n' > index.txt
# nextUpdate one day ahead, so pnc's cached answer stays fresh for the whole run.
openssl ocsp -index index.txt -port $OPENSSL_PORT -CA sub.pem -rsigner signer.pem \
  -rkey signer.key -ndays 1 -ignore_err >/dev/null 2>&1 &
OPENSSL_PID=$!
openssl ocsp -issuer sub.pem -cert leaf.pem -no_nonce -reqout req.der >/dev/null

MODE=${OCSP_BENCH_MODE:-timing}
if [ "$MODE" = instructions ]; then
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$PNC" serve --data-dir "$WORK/pnc" --listen 127.0.0.1:$PNC_PORT >pnc.log 2>&1 &
else
  RUST_LOG=warn "$PNC" serve --data-dir "$WORK/pnc" --listen 127.0.0.1:$PNC_PORT >pnc.log 2>&1 &
fi
PNC_PID=$!
for _ in $(seq 1500); do curl -sf http://127.0.0.1:$PNC_PORT/healthz >/dev/null && break; sleep 0.2; done
token_of() {
  local credentials id secret
  credentials=$("$PNC" client add --data-dir "$WORK/pnc" --name "$1" --role "$2")
  id=$(echo "$credentials" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
  secret=$(echo "$credentials" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
  curl -sf http://127.0.0.1:$PNC_PORT/oauth/token -H 'content-type: application/json' \
    -d "{\"client_id\":\"$id\",\"client_secret\":\"$secret\",\"grant_type\":\"client_credentials\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
TOKEN=$(token_of bench-admin admin)
CPO_TOKEN=$(token_of bench-cpo cpo)
b64() { openssl x509 -in "$1" -outform DER | base64 -w0; }
curl -sf -X PUT http://127.0.0.1:$PNC_PORT/v1/root/rootCerts -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d "{\"caCertificate\":\"$(b64 root.pem)\",\"rootType\":\"V2G\"}" >/dev/null
curl -sf http://127.0.0.1:$PNC_PORT/v1/trust/intermediates -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d "{\"certificate\":\"$(b64 sub.pem)\"}" >/dev/null

# Warm pnc's cache (one upstream fetch), then check both answer the same request.
curl -sf --data-binary @req.der -H 'content-type: application/ocsp-request' \
  http://127.0.0.1:$PNC_PORT/ocsp -o pnc.der
curl -sf --data-binary @req.der -H 'content-type: application/ocsp-request' \
  http://127.0.0.1:$OPENSSL_PORT/ -o openssl.der
openssl ocsp -respin pnc.der -CAfile <(cat root.pem sub.pem) -issuer sub.pem -cert leaf.pem | grep -q ': good'

# The OCPP form of the same certificate: SHA-256 CertID as hex, the AIA URL as responderURL
# (as EVerest sends it); warmed like /ocsp.
openssl ocsp -issuer sub.pem -sha256 -cert leaf.pem -no_nonce -reqout req256.der >/dev/null
openssl ocsp -reqin req256.der -req_text | python3 -c '
import json, sys
fields = {}
for line in sys.stdin:
    key, _, value = line.strip().partition(": ")
    fields[key] = value.strip()
print(json.dumps({"ocspRequestData": {"hashAlgorithm": "SHA256",
    "issuerNameHash": fields["Issuer Name Hash"], "issuerKeyHash": fields["Issuer Key Hash"],
    "serialNumber": fields["Serial Number"], "responderURL": sys.argv[1]}}))
' "http://127.0.0.1:$OPENSSL_PORT/" > gcs.json
curl -sf http://127.0.0.1:$PNC_PORT/v1/ocpp/get-certificate-status -H "authorization: Bearer $CPO_TOKEN" \
  -H 'content-type: application/json' -d @gcs.json -o gcs-answer.json
python3 -c 'import json,sys; a = json.load(open("gcs-answer.json")); sys.exit(0 if a["status"] == "Accepted" and a.get("ocspResult") else f"OCPP form: {a}")'
cat > gcs.lua <<LUA
local f = io.open("gcs.json", "rb"); wrk.body = f:read("*all"); f:close()
wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $CPO_TOKEN"
LUA

cat > post.lua <<'LUA'
local f = io.open("req.der", "rb"); wrk.body = f:read("*all"); f:close()
wrk.method = "POST"; wrk.headers["Content-Type"] = "application/ocsp-request"
LUA

run() {
  local name=$1 url=$2 connections=$3 script=${4:-post.lua}
  echo "== $name, $connections connection(s)"
  wrk -t1 -c"$connections" -d"${SECONDS_PER_RUN}s" --latency -s "$script" "$url" | \
    grep -E 'Requests/sec|Latency  |99%|50%|Non-2xx|Socket errors'
}
if [ "$MODE" = cpu ]; then
  REQUESTS=${2:-100000}
  TICKS=$(getconf CLK_TCK)
  cpu_ticks() { awk '{print $14, $15}' "/proc/$PNC_PID/stat"; }
  measure_cpu() {
    local name=$1; shift
    ab -q -k -n 2000 -c 64 "$@" >/dev/null
    local before after
    before=$(cpu_ticks)
    ab -q -k -n "$REQUESTS" -c 64 "$@" | grep -E 'Failed requests|Non-2xx'
    after=$(cpu_ticks)
    echo "$before $after" | awk -v n="$REQUESTS" -v hz="$TICKS" -v name="$name" '{
      user = ($3 - $1) / hz * 1e6 / n; kernel = ($4 - $2) / hz * 1e6 / n
      printf "pnc CPU per %s: %.2f us user + %.2f us system = %.2f us\n", name, user, kernel, user + kernel }'
  }
  measure_cpu "cached POST /ocsp" -p req.der -T application/ocsp-request http://127.0.0.1:$PNC_PORT/ocsp
  measure_cpu "cached POST /v1/ocpp/get-certificate-status" -p gcs.json -T application/json \
    -H "Authorization: Bearer $CPO_TOKEN" http://127.0.0.1:$PNC_PORT/v1/ocpp/get-certificate-status
  exit 0
fi
if [ "$MODE" = syscalls ]; then
  REQUESTS=${2:-20000}
  # perf's syscall tracepoints when available (little overhead, so the batching is as in a
  # real run), else strace -c (which slows pnc down and so batches more per epoll_wait).
  if perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
    EVENTS=raw_syscalls:sys_enter
    for call in recvfrom writev epoll_wait futex getrandom sched_yield; do
      EVENTS="$EVENTS,syscalls:sys_enter_$call"
    done
    TRACER=(perf stat -x, -e "$EVENTS" -p "$PNC_PID" -o "$WORK/syscalls.txt")
    per_request() {
      awk -F, -v n="$REQUESTS" '$3 ~ /sys_enter/ { name = $3; sub(/.*sys_enter_?/, "", name);
        printf "    %-16s %6.3f\n", (name == "" ? "all" : name), $1 / n }' "$WORK/syscalls.txt"
    }
  else
    TRACER=(strace -c -f -q -p "$PNC_PID" -o "$WORK/syscalls.txt")
    per_request() {
      awk -v n="$REQUESTS" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
        printf "    %-16s %6.3f\n", $NF, $4 / n; total += $4 }
        END { printf "    %-16s %6.3f\n", "all", total / n }' "$WORK/syscalls.txt"
    }
  fi
  count_syscalls() {
    local name=$1; shift
    ab -q -k -n 500 -c 64 "$@" >/dev/null
    "${TRACER[@]}" &
    local tracer=$!
    sleep 1
    ab -q -k -n "$REQUESTS" -c 64 "$@" | grep -E 'Failed requests|Non-2xx'
    kill -INT "$tracer"; wait "$tracer" || true
    echo "== system calls per request, $name"
    per_request
  }
  count_syscalls "cached POST /ocsp" -p req.der -T application/ocsp-request \
    http://127.0.0.1:$PNC_PORT/ocsp
  count_syscalls "cached POST /v1/ocpp/get-certificate-status" -p gcs.json -T application/json \
    -H "Authorization: Bearer $CPO_TOKEN" http://127.0.0.1:$PNC_PORT/v1/ocpp/get-certificate-status
  exit 0
fi
if [ "$MODE" = instructions ]; then
  REQUESTS=${2:-20000}
  # Counts are zeroed after a warm-up and dumped after each load; the newest dump is read.
  count_instructions() {
    local name=$1 keep=$2; shift 2
    ab -q -k -n 500 -c 8 "$@" >/dev/null
    callgrind_control -z "$PNC_PID" >/dev/null
    ab -q -k -n "$REQUESTS" -c 8 "$@" | grep -E 'Complete requests|Failed requests|Non-2xx'
    callgrind_control -d "$PNC_PID" >/dev/null
    sleep 1
    local dump total
    dump=$(ls -t "$WORK"/callgrind.out* | head -1)
    total=$(grep -E '^(summary|totals):' "$dump" | head -1 | awk '{print $2}')
    echo "instructions (user space, all threads) per $name: $((total / REQUESTS))"
    if [ -n "$keep" ]; then cp "$dump" "$keep"; echo "callgrind dump: $keep"; fi
  }
  count_instructions "cached POST /ocsp" "${OCSP_BENCH_KEEP:-}" \
    -p req.der -T application/ocsp-request http://127.0.0.1:$PNC_PORT/ocsp
  count_instructions "cached POST /v1/ocpp/get-certificate-status" \
    "${OCSP_BENCH_KEEP:+$OCSP_BENCH_KEEP.ocpp}" -p gcs.json -T application/json \
    -H "Authorization: Bearer $CPO_TOKEN" http://127.0.0.1:$PNC_PORT/v1/ocpp/get-certificate-status
  exit 0
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# `openssl ocsp` serves one connection at a time and stalls on an idle keep-alive one (wrk
# completes nothing against it), so both servers are first measured the same way: one
# client, a new connection per request.
cat > sequential.py <<'PY'
import http.client, sys, time, urllib.parse
url, seconds = urllib.parse.urlparse(sys.argv[1]), float(sys.argv[2])
body = open("req.der", "rb").read()
latencies, deadline = [], time.monotonic() + seconds
while time.monotonic() < deadline:
    started = time.perf_counter()
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    connection.request("POST", url.path or "/", body, {"Content-Type": "application/ocsp-request", "Connection": "close"})
    response = connection.getresponse(); response.read(); connection.close()
    if response.status != 200: sys.exit(f"HTTP {response.status}")
    latencies.append(time.perf_counter() - started)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3
print(f"    requests {len(latencies)}  Requests/sec: {len(latencies) / seconds:.0f}  p50 {pick(0.5):.2f} ms  p99 {pick(0.99):.2f} ms")
PY
echo "== openssl ocsp (direct), 1 client, a connection per request"
python3 sequential.py http://127.0.0.1:$OPENSSL_PORT/ "$SECONDS_PER_RUN"
if command -v ab >/dev/null; then
  # The Python client is itself the bottleneck at ~0.25 ms a request; ab (C) is not.
  # Each response is signed anew and an ECDSA signature's DER length varies by a byte or
  # two, so ab counts most responses as "Length" failures; the others must stay at 0.
  echo "== openssl ocsp (direct), ab: 1 client, a connection per request"
  ab -q -t "$SECONDS_PER_RUN" -n 1000000 -c 1 -p req.der -T application/ocsp-request \
    http://127.0.0.1:$OPENSSL_PORT/ | grep -E 'Requests per second|Failed requests|\(Connect:|^ +(50|99)%'
fi
echo "== pnc POST /ocsp (cached), 1 client, a connection per request"
python3 sequential.py http://127.0.0.1:$PNC_PORT/ocsp "$SECONDS_PER_RUN"
run "pnc POST /ocsp (cached)" http://127.0.0.1:$PNC_PORT/ocsp 1
run "pnc POST /ocsp (cached)" http://127.0.0.1:$PNC_PORT/ocsp "$CONNECTIONS"
run "pnc POST /v1/ocpp/get-certificate-status (cached, CPO token)" \
  http://127.0.0.1:$PNC_PORT/v1/ocpp/get-certificate-status "$CONNECTIONS" gcs.lua
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
