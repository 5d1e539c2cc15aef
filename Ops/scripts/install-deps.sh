#!/usr/bin/env bash
# Installs what the project needs on Debian 12, idempotently: does nothing (and no `apt-get update`)
# when every package is already installed.
#
#   bash Ops/scripts/install-deps.sh
#
# Packages: rabbitmq-server (a private node is started by broker.sh), librabbitmq-dev and
# libsqlite3-dev (the C libraries, found through pkg-config), amqp-tools (amqp-publish/amqp-get),
# python3-aiosmtpd (the SMTP sink for tests), pkg-config, procps (ps, used by broker.sh), ruby and
# ruby-liquid (Shopify's reference Liquid: `fleet bench liquid` and the Liquid parity test compare with it),
# postfix (only for its smtp-sink, the fast SMTP sink of `fleet bench email` run (e); the MTA is not started:
# its service start is denied while installing, as rabbitmq-server's),
# chromium and chromium-driver (the preference centre and report page tests drive a headless Chromium through
# Selenium), wrk (the load test of `fleet serve` and `fleet bench serve`), nginx-light (the static-302 ceiling of
# `fleet bench serve`; its service start is denied too),
# openssl (throwaway CAs of the STARTTLS tests and the TLS broker) and ca-certificates (the system trust
# store the email worker's STARTTLS verifies relays against by default).
#
# Installing rabbitmq-server runs its init script, which would start the default node `rabbit` on
# port 5672. We never use that node: while installing, a policy-rc.d that denies service starts is
# put in place (unless the machine already has one), and a default node found running afterwards
# is stopped.
set -euo pipefail

PROG="install-deps.sh"
PACKAGES=(rabbitmq-server librabbitmq-dev libsqlite3-dev amqp-tools python3-aiosmtpd pkg-config procps ruby ruby-liquid
  openssl ca-certificates postfix chromium chromium-driver wrk nginx-light cmake ninja-build build-essential
  postgresql)
POLICY=/usr/sbin/policy-rc.d
POLICY_MARK="# written by fleet Ops/scripts/install-deps.sh"

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

if [[ ! -r /etc/debian_version ]] || ! command -v apt-get >/dev/null 2>&1; then
  die "this script supports Debian (12) with apt-get only"
fi

# The contract tests validate encoded jobs and results against Docs/contract/*.schema.json with the
# jsonschema package of the python3 first on PATH (PyPI is reachable here; Debian's is not on that path).
if ! python3 -c 'import jsonschema' >/dev/null 2>&1; then
  say "installing the Python package jsonschema (pip)"
  python3 -m pip install -q jsonschema >/dev/null 2>&1 || die "pip install jsonschema failed"
fi
# `fleet bench liquid` measures python-liquid (the peer of ../shared/peers/liquid/render_python.py) with the
# same python3.
if ! python3 -c 'import liquid' >/dev/null 2>&1; then
  say "installing the Python package python-liquid (pip)"
  python3 -m pip install -q python-liquid >/dev/null 2>&1 || die "pip install python-liquid failed"
fi
# `fleet bench email` runs the Celery peer of ../shared/peers/celery/ with the same python3.
if ! python3 -c 'import celery' >/dev/null 2>&1; then
  say "installing the Python package celery (pip)"
  python3 -m pip install -q celery >/dev/null 2>&1 || die "pip install celery failed"
fi

# The browser tests of `fleet serve` drive Chromium with Selenium.
if ! python3 -c 'import selenium' >/dev/null 2>&1; then
  say "installing the Python package selenium (pip)"
  python3 -m pip install -q selenium >/dev/null 2>&1 || die "pip install selenium failed"
fi

# The push worker's tests and `fleet bench push` run the APNs/FCM emulator (Tests/PushWorkerTests/push_emulator.py:
# h2 over asyncio TLS, JWT checks with pyjwt + cryptography, certificates from trustme) and the Python peer (httpx
# with HTTP/2).
if ! python3 -c 'import h2, jwt, cryptography, trustme, httpx' >/dev/null 2>&1; then
  say "installing the Python packages h2 pyjwt cryptography trustme httpx[http2] (pip)"
  python3 -m pip install -q h2 pyjwt cryptography trustme 'httpx[http2]' >/dev/null 2>&1 || die "pip install of the push emulator's packages failed"
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true) != installed ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  say "all packages present: ${PACKAGES[*]}"
  exit 0
fi

SUDO=()
if [[ $EUID -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    die "missing packages: ${missing[*]}; run this script as root (or with passwordless sudo)"
  fi
fi

LOG=$(mktemp "${TMPDIR:-/tmp}/fleet-install-deps.XXXXXX.log")
added_policy=0
cleanup() {
  if ((added_policy)) && grep -qsF "$POLICY_MARK" "$POLICY"; then
    "${SUDO[@]}" rm -f "$POLICY"
  fi
  rm -f "$LOG"
}
trap cleanup EXIT

run_logged() { # runs a command quietly; on failure shows its output and stops
  if ! "$@" >>"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    die "failed: $*"
  fi
}

installing_rabbitmq=0
if [[ " ${missing[*]} " == *" rabbitmq-server "* ]]; then installing_rabbitmq=1; fi
if ((installing_rabbitmq)) || [[ " ${missing[*]} " == *" postfix "* ]]; then
  if [[ ! -e $POLICY ]]; then
    # 101 = "action forbidden": invoke-rc.d then skips starting the system broker (and Postfix's MTA).
    printf '#!/bin/sh\n%s\nexit 101\n' "$POLICY_MARK" | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    added_policy=1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
say "installing: ${missing[*]}"
t0=$SECONDS
run_logged "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
run_logged "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
say "installed in $((SECONDS - t0)) s"

# A system broker (default node rabbit@<host>) started by the package would hold 5672: stop it.
if ((installing_rabbitmq)); then
  host=$(uname -n | cut -d. -f1)
  if "${SUDO[@]}" /usr/sbin/rabbitmqctl -n "rabbit@$host" -q ping >/dev/null 2>&1; then
    say "stopping the system RabbitMQ node rabbit@$host started by the package (we never use it)"
    "${SUDO[@]}" /usr/sbin/rabbitmqctl -n "rabbit@$host" -q stop >/dev/null 2>&1 ||
      "${SUDO[@]}" /etc/init.d/rabbitmq-server stop >/dev/null 2>&1 || true
  fi
fi
