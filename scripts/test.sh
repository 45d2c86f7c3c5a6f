#!/usr/bin/env bash
# The test command: sets up everything the tests need on a fresh machine, then
# runs every test. CI (.ci/run) calls exactly this.
#
#   - PostgreSQL on 127.0.0.1:5432 (trust auth, database "test"): started when
#     installed but stopped, installed from Debian's packages when missing.
#   - MinIO on 127.0.0.1:9100: built once with `go install` into the tool cache
#     (~/.cache/mloop-tools, kept between runs) and started for this run.
#   - the real data sets (vega-datasets 3.2.1) from ../shared/data, or fetched
#     once with npm pack into the tool cache; MLOOP_TEST_DATA points at them.
#   - /usr/bin/python3 with pandas, scikit-learn and xgboost for the flights
#     example (examples/flights): Debian's packages, installed when missing;
#     MLOOP_TEST_PYTHON points at it.
#   - go vet, then go test -race over every package.
#
# Extra arguments go to `go test` (e.g. scripts/test.sh -run TestSearch ./internal/sqlstore/).
set -euo pipefail
cd "$(dirname "$0")/.."

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
TOOLS="${MLOOP_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mloop-tools}"
MINIO_PORT="${MLOOP_MINIO_PORT:-9100}"
PG_URL="${MLOOP_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"

log() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- PostgreSQL ---------------------------------------------------------------
pg_ready() { psql "$PG_URL" -Atqc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  if pg_ready; then log "PostgreSQL is running"; return; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "PostgreSQL is not installed: installing Debian's postgresql"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql postgresql-client >/dev/null
  fi
  local ver; ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  local hba=/etc/postgresql/$ver/main/pg_hba.conf
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    log "PostgreSQL: trusting local TCP connections for the tests ($hba)"
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  log "starting PostgreSQL $ver"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null \
    || as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  for _ in $(seq 1 60); do
    psql "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" -Atqc 'select 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  psql "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" -Atqc \
    "select 1 from pg_database where datname='test'" | grep -q 1 \
    || psql "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" -qc 'create database test'
  pg_ready || { echo "PostgreSQL at $PG_URL does not answer; see /var/log/postgresql" >&2; exit 1; }
}

# --- MinIO --------------------------------------------------------------------
ensure_minio() {
  MINIO_BIN="$TOOLS/minio-$MINIO_VERSION"
  if [ ! -x "$MINIO_BIN" ]; then
    log "building MinIO $MINIO_VERSION with go install (cached in $TOOLS; takes a few minutes once)"
    mkdir -p "$TOOLS/gobin.tmp"
    GOBIN="$TOOLS/gobin.tmp" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION"
    mv "$TOOLS/gobin.tmp/minio" "$MINIO_BIN"
    rmdir "$TOOLS/gobin.tmp"
  fi
  # Take the first free port from MINIO_PORT on, so a MinIO left running by
  # someone else (other credentials, other data) is never mistaken for ours.
  while (exec 3<>"/dev/tcp/127.0.0.1/$MINIO_PORT") 2>/dev/null; do
    MINIO_PORT=$((MINIO_PORT + 10))
  done
  MINIO_DIR=$(mktemp -d)
  export MINIO_ROOT_USER=mloop MINIO_ROOT_PASSWORD=mloop-secret
  log "starting MinIO on 127.0.0.1:$MINIO_PORT"
  "$MINIO_BIN" server "$MINIO_DIR" --quiet --address "127.0.0.1:$MINIO_PORT" \
    --console-address "127.0.0.1:$((MINIO_PORT + 1))" >"$MINIO_DIR.log" 2>&1 &
  MINIO_PID=$!
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$MINIO_PORT/minio/health/live" >/dev/null 2>&1 && break
    kill -0 "$MINIO_PID" 2>/dev/null || { cat "$MINIO_DIR.log" >&2; echo "MinIO failed to start" >&2; exit 1; }
    sleep 0.5
  done
  export AWS_ACCESS_KEY_ID=mloop AWS_SECRET_ACCESS_KEY=mloop-secret AWS_REGION=us-east-1
  export MLOOP_TEST_S3="s3://mloop-test?endpoint=http://127.0.0.1:$MINIO_PORT&region=us-east-1&use_path_style=true"
}

# --- real data sets -------------------------------------------------------------
# vega-datasets 3.2.1 (see ../shared/data/README.md): ../shared/data when it is
# there, else `npm pack vega-datasets@3.2.1` once into the tool cache. The
# tests that use them fail, rather than skip, when MLOOP_TEST_DATA is set.
DATA_SUMS="dbeb920c90f59b6ccaff823dcc3d08f25a97fa1ce128d93f40be4e931f5900b0  flights-3m.parquet
0845078a290b48e3149ab8639966824110a251db4e06fc144c06ebb534af23be  seattle-weather.csv
27219f1ca8dbd94c9b6f4b9f4f52ab2f1eb33dfdcf719cd9fc6481ed50b74549  weather.csv"

ensure_data() {
  local dir
  for dir in "${MLOOP_TEST_DATA:-}" "$(cd .. && pwd)/shared/data" "$TOOLS/vega-datasets-3.2.1"; do
    if [ -n "$dir" ] && [ -f "$dir/flights-3m.parquet" ] && (cd "$dir" && echo "$DATA_SUMS" | sha256sum --quiet -c - >/dev/null 2>&1); then
      export MLOOP_TEST_DATA="$dir"; log "real data sets in $dir"; return
    fi
  done
  log "fetching vega-datasets 3.2.1 with npm pack (cached in $TOOLS)"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent vega-datasets@3.2.1 >/dev/null && tar -xzf vega-datasets-3.2.1.tgz)
  mkdir -p "$TOOLS/vega-datasets-3.2.1"
  for f in flights-3m.parquet seattle-weather.csv weather.csv; do cp "$tmp/package/data/$f" "$TOOLS/vega-datasets-3.2.1/"; done
  rm -rf "$tmp"
  (cd "$TOOLS/vega-datasets-3.2.1" && echo "$DATA_SUMS" | sha256sum --quiet -c -) \
    || { echo "vega-datasets 3.2.1: checksums do not match" >&2; exit 1; }
  export MLOOP_TEST_DATA="$TOOLS/vega-datasets-3.2.1"
}

# --- Python for examples/flights ----------------------------------------------
# The example trains with Debian's python3-pandas, python3-sklearn and
# python3-xgboost. The test that runs it fails, rather than skips, when
# MLOOP_TEST_PYTHON is set.
PY=/usr/bin/python3
PY_PKGS="python3-pandas python3-sklearn python3-xgboost"
py_ready() { "$PY" -c 'import pandas, sklearn, xgboost' >/dev/null 2>&1; }

ensure_python() {
  if ! py_ready; then
    if [ "$(id -u)" != 0 ] && ! sudo -n true 2>/dev/null; then
      echo "examples/flights needs $PY with pandas, scikit-learn and xgboost, and installing them needs root:" >&2
      echo "  sudo apt-get install -y $PY_PKGS" >&2
      exit 1
    fi
    log "installing Debian's $PY_PKGS for examples/flights"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $PY_PKGS >/dev/null
    py_ready || { echo "$PY still cannot import pandas, sklearn and xgboost after installing $PY_PKGS" >&2; exit 1; }
  fi
  log "Python: $PY with pandas, scikit-learn and xgboost"
  export MLOOP_TEST_PYTHON="$PY"
}

cleanup() {
  if [ -n "${MINIO_PID:-}" ]; then kill "$MINIO_PID" 2>/dev/null || true; wait "$MINIO_PID" 2>/dev/null || true; fi
  if [ -n "${MINIO_DIR:-}" ]; then rm -rf "$MINIO_DIR" "$MINIO_DIR.log"; fi
}
trap cleanup EXIT

ensure_postgres
ensure_minio
ensure_data
ensure_python
export MLOOP_TEST_POSTGRES="$PG_URL"

log "go vet"
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi

log "go test -race"
if [ $# -gt 0 ]; then
  go test -race -count=1 "$@"
else
  go test -race -count=1 -timeout 30m ./...
  # The README's first command, as a user runs it (on a free port; the
  # Go tests above check both scenarios' summaries).
  log "go run ./cmd/mloop quickstart --exit"
  qs_start=$(date +%s)
  go run ./cmd/mloop quickstart --exit --addr 127.0.0.1:0
  log "quickstart done in $(( $(date +%s) - qs_start )) s (including the build)"
fi
