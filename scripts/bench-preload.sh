#!/usr/bin/env bash
# make bench-preload: `vaxgate preload` throughput on one private PostgreSQL with the durable
# settings of `make bench` (fsync and synchronous_commit on): a site before go-live, a file of
# PRELOAD_MESSAGES synthetic VXU (the traffic of `vaxgate bench`), one preload, the rate it
# reports, and a count of what was stored.
#
# Environment (all optional):
#   PRELOAD_MESSAGES=1000000    messages in the file
#   STORE_MAX_BATCH, STORE_MAX_DELAY, STORE_SHARDS   passed to preload (VAXGATE_STORE_*)
#   FILE_WINDOW                 messages in the pipeline at once (VAXGATE_FILE_WINDOW, default 2048)
#   BENCH_PG_SETTINGS="k=v ..." extra postgresql.conf settings
#   BENCH_KEEP=1                keep the work directory
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO="${GO:-go}"
N="${PRELOAD_MESSAGES:-1000000}"

say() { printf '%s bench-preload: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "$*"; exit 1; }

say "building"
"$GO" build -o bin/vaxgate ./cmd/vaxgate
"$GO" build -o bin/benchtool ./scripts/benchtool
"$GO" build -o bin/vxufile ./scripts/vxufile
PSQL="$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n1)"
[[ -x "$PSQL" ]] || die "psql not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vaxgate-preload.XXXXXX")"
chmod 0711 "$WORK"
PG_PID=""
cleanup() {
	local rc=$?
	[[ -n "$PG_PID" ]] && kill -TERM "$PG_PID" 2>/dev/null && wait "$PG_PID" 2>/dev/null || true
	if [[ "${BENCH_KEEP:-0}" == 1 || $rc -ne 0 ]]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting PostgreSQL in $WORK/pg"
bin/benchtool pg --dir "$WORK/pg" --url-file "$WORK/url" >"$WORK/pg.out" 2>&1 &
PG_PID=$!
for _ in $(seq 240); do [[ -s "$WORK/url" ]] && break; kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.5; done
[[ -s "$WORK/url" ]] || { cat "$WORK/pg.out" >&2; die "PostgreSQL did not start"; }
URL="$(cat "$WORK/url")"
export VAXGATE_DATABASE_URL="$URL" VAXGATE_LOG_LEVEL="${VAXGATE_LOG_LEVEL:-warn}"
[[ -n "${STORE_MAX_BATCH:-}" ]] && export VAXGATE_STORE_MAX_BATCH="$STORE_MAX_BATCH"
[[ -n "${STORE_MAX_DELAY:-}" ]] && export VAXGATE_STORE_MAX_DELAY="$STORE_MAX_DELAY"
[[ -n "${STORE_SHARDS:-}" ]] && export VAXGATE_STORE_SHARDS="$STORE_SHARDS"
[[ -n "${FILE_WINDOW:-}" ]] && export VAXGATE_FILE_WINDOW="$FILE_WINDOW"

bin/vaxgate migrate >/dev/null
"$PSQL" "$URL" -XqAt -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO organizations (code, name) VALUES ('PRELOAD', 'Preload Bench');
INSERT INTO sites (organization_id, code, name, status, go_live_date)
  SELECT id, 'PRELOAD-SITE', 'Preload Bench Clinic', 'production', current_date + 30 FROM organizations WHERE code = 'PRELOAD';
INSERT INTO site_facilities (facility_id, site_id) SELECT 'X68', id FROM sites WHERE code = 'PRELOAD-SITE';
SQL

say "writing $N messages"
bin/vxufile -n "$N" -facility X68 -o "$WORK/history.hl7"
say "file: $(du -h "$WORK/history.hl7" | cut -f1)"

commits() { "$PSQL" "$URL" -XAt -c "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"; }
say "preload (load: $(cut -d' ' -f1-3 /proc/loadavg))"
c0="$(commits)"
start=$(date +%s.%N)
set +e
/usr/bin/time -f "preload process: %U s user, %S s system, %M kB max RSS" bin/vaxgate preload --site PRELOAD-SITE "$WORK/history.hl7" | tee "$WORK/summary.txt"
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
[[ $rc -le 1 ]] || die "preload failed (exit $rc)"
sleep 1 # the statistics collector reports with a delay
c1="$(commits)"
stored="$("$PSQL" "$URL" -XAt -c "SELECT count(*) FROM messages WHERE transport = 'preload' AND resend_key")"
unknown="$("$PSQL" "$URL" -XAt -c "SELECT count(*) FILTER (WHERE sharing = 'U') || ' of ' || count(*) FROM registry_patients")"
awk -v n="$N" -v s="$start" -v e="$end" -v st="$stored" -v u="$unknown" -v c="$((c1 - c0))" 'BEGIN {
	printf "\npreload of %d messages: %.0f s wall clock (with start-up), %.0f msg/s; %d accepted messages stored; about %.0f messages per transaction (%d commits); registry patients with sharing Unknown: %s\n", n, e - s, n / (e - s), st, n / (c > 0 ? c : 1), c, u
}'
