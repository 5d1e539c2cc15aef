#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and demos (Debian's postgresql package, never its default cluster).
#
#   bash Ops/scripts/postgres.sh start    initdb (first time) and start the cluster, print its URL
#   bash Ops/scripts/postgres.sh env      print `export KEY='value'` lines: eval "$(... env)"
#   bash Ops/scripts/postgres.sh status   say whether it runs (exit 0 running, 3 not running)
#   bash Ops/scripts/postgres.sh stop [--keep]   stop it and delete its data (--keep: keep them)
#
# State dir: $FLEET_PG_DIR, or <repo>/.fleet/pg. It holds data/ (the cluster), sock/ (its Unix socket), log (or, when
# the postgres user cannot reach the state dir, a dir under /var/tmp that its file `home` names holds them),
# and pg.env: FLEET_PG_URL (postgres://fleet@127.0.0.1:<port>/fleet), FLEET_PG_PORT, FLEET_PG_ADMIN_URL (database
# postgres, for tests that create databases of their own). The cluster listens on 127.0.0.1 only, on a free port
# (or $FLEET_PG_PORT), with trust authentication for local connections: a throwaway cluster, not a deployment.
# As root, the server runs as the `postgres` user (initdb and postgres refuse root).
# FLEET_PG_FAST=1 (test.sh sets it) turns fsync off: the tests kill workers, never the cluster.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
PROG="postgres.sh"
STATE_DIR=${FLEET_PG_DIR:-$REPO_ROOT/.fleet/pg}
ENV_FILE=$STATE_DIR/pg.env

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [[ -n $dir && -x $dir/initdb ]] || die "PostgreSQL is not installed (apt-get install postgresql; Ops/scripts/install-deps.sh does)"
  printf '%s' "$dir"
}

# Runs a command as the cluster's owner.
as_owner() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Where the cluster's files are: the state dir, or the dir its `home` file names (see start).
home() {
  if [[ -f $STATE_DIR/home ]]; then cat "$STATE_DIR/home"; else printf '%s' "$STATE_DIR"; fi
}

running() {
  local h
  h=$(home)
  [[ -f $h/data/postmaster.pid ]] && as_owner "$(pg_bin)/pg_ctl" -D "$h/data" status >/dev/null 2>&1
}

start() {
  local bin port
  bin=$(pg_bin)
  mkdir -p "$STATE_DIR"
  if running; then
    # shellcheck source=/dev/null
    . "$ENV_FILE"
    printf '%s\n' "$FLEET_PG_URL"
    return 0
  fi
  if [[ $(id -u) == 0 ]]; then
    chmod 755 "$STATE_DIR"
    # The postgres user must reach the state dir; when a parent dir keeps it out (e.g. under /root), the cluster
    # lives in a dir of its own under /var/tmp instead (the state dir then only points to it).
    if ! runuser -u postgres -- test -x "$STATE_DIR" 2>/dev/null; then
      if [[ ! -f $STATE_DIR/home ]]; then
        mktemp -d /var/tmp/fleet-pg.XXXXXX >"$STATE_DIR/home"
        chmod 755 "$(cat "$STATE_DIR/home")"
      fi
    fi
  fi
  local H
  H=$(home)
  if [[ ! -f $H/data/PG_VERSION ]]; then
    rm -rf "$H/data"
    mkdir -p "$H/data"
    [[ $(id -u) == 0 ]] && chown postgres: "$H/data"
    as_owner "$bin/initdb" -D "$H/data" -U fleet --auth=trust --encoding=UTF8 --no-locale >"$H/initdb.log" 2>&1 \
      || { cat "$H/initdb.log" >&2; die "initdb failed"; }
  fi
  mkdir -p "$H/sock"
  [[ $(id -u) == 0 ]] && chown postgres: "$H/sock"
  touch "$H/log"
  [[ $(id -u) == 0 ]] && chown postgres: "$H/log"
  port=${FLEET_PG_PORT:-$(free_port)}
  local fast=""
  if [[ ${FLEET_PG_FAST:-0} == 1 ]]; then fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
  as_owner "$bin/pg_ctl" -D "$H/data" -l "$H/log" -w -t 60 \
    -o "-p $port -k $H/sock -c listen_addresses=127.0.0.1 -c max_connections=200 $fast" start >/dev/null \
    || { tail -n 30 "$H/log" >&2; die "the cluster did not start"; }
  if ! psql -h 127.0.0.1 -p "$port" -U fleet -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'fleet'" | grep -q 1; then
    if ! psql -h 127.0.0.1 -p "$port" -U fleet -d postgres -qc "CREATE DATABASE fleet" >/dev/null; then
      as_owner "$bin/pg_ctl" -D "$H/data" -m fast -w stop >/dev/null 2>&1 || true
      die "CREATE DATABASE fleet failed"
    fi
  fi
  cat >"$ENV_FILE" <<ENV
FLEET_PG_URL='postgres://fleet@127.0.0.1:$port/fleet?sslmode=disable'
FLEET_PG_ADMIN_URL='postgres://fleet@127.0.0.1:$port/postgres?sslmode=disable'
FLEET_PG_PORT='$port'
ENV
  say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $H/data)"
  printf 'postgres://fleet@127.0.0.1:%s/fleet?sslmode=disable\n' "$port"
}

stop() {
  local keep=${1:-} h
  h=$(home)
  if running; then
    if ! as_owner "$(pg_bin)/pg_ctl" -D "$h/data" -m fast -w stop >/dev/null 2>&1; then
      die "pg_ctl stop failed; the data in $h are kept"
    fi
  fi
  if [[ $keep != --keep ]]; then
    [[ $h != "$STATE_DIR" ]] && rm -rf "$h"
    rm -rf "$STATE_DIR"
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop "${2:-}" ;;
  status)
    if running; then echo "running ($(sed -n 's/^FLEET_PG_URL=//p' "$ENV_FILE" | tr -d "'"))"; else echo "not running"; exit 3; fi ;;
  env)
    [[ -f $ENV_FILE ]] || die "not started (no $ENV_FILE)"
    sed 's/^/export /' "$ENV_FILE" ;;
  *) die "usage: postgres.sh start|stop [--keep]|status|env" ;;
esac
