#!/usr/bin/env bash
# Builds (once) and starts FerretDB 1.x on 127.0.0.1 for the test suite, and stops it again.
#   .ci/ferretdb.sh start PORT   prints the MongoDB URL; the pid goes to $STATE/ferretdb.pid
#   .ci/ferretdb.sh stop
# The Go module proxy here refuses v1.24.1 (403 "not available"), so v1.24.0 is built from the
# module's source; `go install` cannot be used because it asks the proxy for the module's version
# list, which is refused too, and a build outside FerretDB's own repository needs the
# build/version/version.txt that its release tooling normally writes.
set -euo pipefail
VERSION=v1.24.0
CACHE=${SIMPLEAPI_CACHE:-$HOME/.cache/simpleapi}
BIN=$CACHE/ferretdb-$VERSION
STATE=${FERRETDB_STATE:-/tmp/simpleapi-ferretdb}
PGDB=${FERRETDB_PG_DB:-simpleapi_test}

build() {
  [[ -x $BIN ]] && return 0
  command -v go >/dev/null || { echo "ferretdb.sh: Go is needed to build FerretDB" >&2; return 1; }
  local src dir
  src=$(cd /tmp && go mod download -json "github.com/FerretDB/FerretDB@$VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  [[ -d $src ]] || { echo "ferretdb.sh: could not download FerretDB $VERSION" >&2; return 1; }
  dir=$(mktemp -d)
  cp -r "$src/." "$dir"
  chmod -R u+w "$dir"
  echo "$VERSION" > "$dir/build/version/version.txt"
  mkdir -p "$CACHE"
  (cd "$dir" && go build -o "$BIN.tmp" ./cmd/ferretdb)
  mv "$BIN.tmp" "$BIN"
  rm -rf "$dir"
}

start() {
  local port=$1
  build >&2
  mkdir -p "$STATE"
  stop >/dev/null 2>&1 || true
  local args=(--listen-addr="127.0.0.1:$port" --telemetry=disable --debug-addr=- --state-dir="$STATE" --log-level=warn)
  # PostgreSQL when the machine's server answers, else FerretDB's SQLite backend in the state folder.
  if command -v psql >/dev/null && psql -h 127.0.0.1 -U postgres -d postgres -qtAc 'select 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qtAc "select 1 from pg_database where datname='$PGDB'" | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -d postgres -qc "create database $PGDB" >/dev/null
    args+=(--handler=postgresql --postgresql-url="postgres://postgres@127.0.0.1:5432/$PGDB")
    echo "ferretdb.sh: FerretDB $VERSION on PostgreSQL, 127.0.0.1:$port" >&2
  else
    mkdir -p "$STATE/sqlite"
    args+=(--handler=sqlite --sqlite-url="file:$STATE/sqlite/")
    echo "ferretdb.sh: FerretDB $VERSION on SQLite, 127.0.0.1:$port" >&2
  fi
  "$BIN" "${args[@]}" >"$STATE/ferretdb.log" 2>&1 &
  echo $! > "$STATE/ferretdb.pid"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "mongodb://127.0.0.1:$port/"
      return 0
    fi
    kill -0 "$(cat "$STATE/ferretdb.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "ferretdb.sh: FerretDB did not start; its log:" >&2
  cat "$STATE/ferretdb.log" >&2
  return 1
}

stop() {
  [[ -f $STATE/ferretdb.pid ]] || return 0
  local pid
  pid=$(cat "$STATE/ferretdb.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$STATE/ferretdb.pid"
}

case ${1:-} in
  start) start "${2:-27117}" ;;
  stop) stop ;;
  build) build ;;
  *) echo "usage: $0 start [PORT] | stop | build" >&2; exit 2 ;;
esac
