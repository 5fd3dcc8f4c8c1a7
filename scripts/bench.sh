#!/usr/bin/env bash
# make bench: throughput of vaxgate end to end against PostgreSQL's own ceilings, on this machine,
# in one run, with one private PostgreSQL (durable settings: fsync and synchronous_commit on).
#
#   (a) minimal-record ceiling (fixed, independent of vaxgate's schema): pgbench writes, per message,
#       the minimal durable record of an accepted VXU on tables of its own — the archive row (raw
#       message, ACK, findings), a patient upsert and two vaccination rows — CEILING_MIN_BATCH (100)
#       messages per transaction, pipelined, fsync on; the best rate over CEILING_MIN_CLIENTS is the ceiling
#       the ratio column is taken against. Its best shape and client count are measured again after
#       (b), on the same server, and the higher of the two rates is the ceiling: this machine is a VM
#       whose speed drifts by tens of percent within minutes, and a ceiling measured in a slow minute
#       alone would flatter every ratio.
#   (a') same-rows ceiling: pgbench writes, per message, the rows vaxgate stores for an accepted VXU (archive
#       row with raw message and ACK, and the registry's rows of a new patient with one dose, as
#       benchtool's writeCeiling lists them for the current schema), CEILING_BATCH messages per transaction,
#       statements pipelined, with 1..n clients; the best rate is the ceiling.
#   (b) vaxgate serve, fed by `vaxgate bench` over MLLP (loopback) with 1, 16 and 64 connections
#       (BENCH_WINDOW messages in flight on each), then 64 connections sending one message at a
#       time (window 1, as EHRs do), then 64 (window 1) at half the saturated rate; every ACK checked, every
#       acknowledged message counted in the database (--verify-db).
#   (c) fresh database on a stock server: (a) and (b)'s servers stopped, another PostgreSQL with
#       PostgreSQL's stock settings (pgembed's tuning undone: jit on, wal_init_zero on, 100
#       connections) and an empty database that vaxgate serve migrates, then 64 connections sending
#       new patients only (vaxgate bench --new-patients), BENCH_FRESH_MESSAGES messages; the rate of
#       the first 20 s against the rest shows whether throughput falls as the tables grow before
#       autovacuum has analysed them.
# Then a table with (b)/(a), and the parser and validator Go benchmarks.
#
# Environment (all optional):
#   BENCH_CONNS="1 16 64"         connection counts of (b)
#   BENCH_MESSAGES=40000          messages of the largest phase; smaller phases send less (see below)
#   BENCH_WINDOW=8                messages in flight per connection
#   BENCH_TIMEOUT=240             seconds per phase at most
#   CEILING_BATCH=32 CEILING_CLIENTS="2 4" CEILING_SECONDS=15   (a')'s batch and clients, (a) and (a')'s duration
#   CEILING_MIN_CLIENTS="2 4 8"   (a)'s pgbench clients (default: CEILING_CLIENTS when set); on 2 CPUs under other
#                                 load no count was reliably best (7 December: 2, 4, 8 and 16 each best in some run)
#   CEILING_MIN_BATCH=100         messages per transaction of (a); (a) is written in two shapes, a statement
#                                 per row (pipelined) and one multi-row statement per table per transaction
#                                 (as vaxgate's writer writes): the faster is the ceiling
#   CEILING_AGAIN=0               skip (a)'s second measurement after (b)
#   CEILING_THREADS               pgbench -j (default: min(clients, 2)); pgbench's own CPU per message is
#                                 printed beside each ceiling rate (it runs on the same CPUs)
#   BENCH_FRESH_MESSAGES=40000    messages of (c) (0 skips it)
#   BENCH_LONG=1                  long run: one phase (64 connections, BENCH_MESSAGES, default 1,000,000),
#                                 no ceiling or Go benchmarks; serve's RSS every BENCH_RSS_INTERVAL seconds
#                                 (default 30; 10 under 500,000 messages) with its minimum, maximum and slope
#                                 after the first minute; acknowledged = stored; BENCH_VERIFY_RECORDS read back
#   BENCH_VERIFY_RECORDS=200      per phase, the records of this many patients the phase reported once read
#                                 back and compared field by field with what was sent (vaxgate bench
#                                 --verify-records; 1000 in the long run; 0 skips it)
#   BENCH_RATED=0.8               then the largest connection count again, one message at a time, at this
#                                 share of its pipelined rate, and at this share of its window-1 rate
#                                 (latency below saturation; 0 skips it)
#   BENCH_GOBENCH=0               skip the Go benchmarks
#   STORE_MAX_BATCH, STORE_MAX_DELAY, STORE_SHARDS   passed to serve (VAXGATE_STORE_*)
#   BENCH_PG_SETTINGS="k=v ..."   extra postgresql.conf settings for the benchmark's server (both phases)
#   BENCH_PROFILE=1               serve with http.pprof on; a CPU profile of serve during the first phase at
#                                 the largest connection count (BENCH_PROFILE_SECONDS, 15): serve's CPU by area
#                                 (each sample billed to the innermost vaxgate package or module on its stack)
#                                 and its top functions; BENCH_PROFILE_PHASE="64 w1" profiles the phase of that
#                                 row label instead
#   BENCH_WALSTATS=1              PostgreSQL's WAL of the first phase at the largest connection count by record
#                                 type, per message (pg_waldump; sets wal_keep_size so the segments stay)
#   BENCH_KEEP=1                  keep the work directory (database, logs) for inspection
#   BENCH_STATEMENTS=1            load pg_stat_statements and print where PostgreSQL spent its time
#                                 during the vaxgate phases of (b): per statement, microseconds of execution
#                                 per message sent, share, calls per message
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO="${GO:-go}"

LONG="${BENCH_LONG:-0}"
if [[ "$LONG" == 1 ]]; then
	CONNS="${BENCH_CONNS:-64}"
	MESSAGES="${BENCH_MESSAGES:-1000000}"
	TIMEOUT="${BENCH_TIMEOUT:-3600}"
else
	CONNS="${BENCH_CONNS:-1 16 64}"
	MESSAGES="${BENCH_MESSAGES:-40000}"
	TIMEOUT="${BENCH_TIMEOUT:-240}"
fi
WINDOW="${BENCH_WINDOW:-8}"
CEILING_BATCH="${CEILING_BATCH:-32}"
CEILING_MIN_CLIENTS="${CEILING_MIN_CLIENTS:-${CEILING_CLIENTS:-2 4 8}}"
CEILING_CLIENTS="${CEILING_CLIENTS:-2 4}"
CEILING_SECONDS="${CEILING_SECONDS:-15}"
CEILING_MIN_BATCH="${CEILING_MIN_BATCH:-100}"
FRESH_MESSAGES="${BENCH_FRESH_MESSAGES:-40000}"
if [[ "$LONG" == 1 ]]; then
	VERIFY="${BENCH_VERIFY_RECORDS:-1000}"
	RSS_INTERVAL="${BENCH_RSS_INTERVAL:-$(( MESSAGES < 500000 ? 10 : 30 ))}"
else
	VERIFY="${BENCH_VERIFY_RECORDS:-200}"
fi

say() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "$*"; exit 1; }

# --- tools -------------------------------------------------------------------------------------
pg_bindir() {
	local d
	if [[ -n "${VAXGATE_PG_BINDIR:-}" && -x "$VAXGATE_PG_BINDIR/pgbench" ]]; then echo "$VAXGATE_PG_BINDIR"; return; fi
	d="$(pg_config --bindir 2>/dev/null || true)"
	if [[ -n "$d" && -x "$d/pgbench" ]]; then echo "$d"; return; fi
	d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
	if [[ -n "$d" && -x "$d/pgbench" ]]; then echo "$d"; return; fi
	d="$(dirname "$(command -v pgbench 2>/dev/null || echo /nonexistent/pgbench)")"
	[[ -x "$d/pgbench" ]] && echo "$d"
}
BINDIR="$(pg_bindir)" || true
[[ -n "$BINDIR" ]] || die "pgbench not found (install the postgresql package or set VAXGATE_PG_BINDIR)"
PGBENCH="$BINDIR/pgbench"
PSQL="$BINDIR/psql"
[[ -x "$PSQL" ]] || PSQL="$(command -v psql)"

say "building"
"$GO" build -o bin/vaxgate ./cmd/vaxgate
"$GO" build -o bin/benchtool ./scripts/benchtool

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vaxgate-bench.XXXXXX")"
# As root, PostgreSQL runs as the postgres user (pgembed), which must traverse the directory to
# reach its data dir inside; the URL file stays private (mode 0600).
chmod 0711 "$WORK"
PG_PID=""
SERVE_PID=""
RSS_LOOP=""
cleanup() {
	local rc=$?
	[[ -n "$RSS_LOOP" ]] && kill "$RSS_LOOP" 2>/dev/null || true
	[[ -n "$SERVE_PID" ]] && kill -TERM "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
	[[ -n "$PG_PID" ]] && kill -TERM "$PG_PID" 2>/dev/null && wait "$PG_PID" 2>/dev/null || true
	if [[ "${BENCH_KEEP:-0}" == 1 || $rc -ne 0 ]]; then
		say "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL --------------------------------------------------------------------------------
PGDIR="$WORK/pg"
start_pg() { # start_pg DIR [benchtool pg flags]: PostgreSQL in DIR; sets PG_PID, PGDIR, URL
	PGDIR="$1"; shift
	say "starting PostgreSQL in $PGDIR"
	bin/benchtool pg --dir "$PGDIR" --url-file "$PGDIR.url" "$@" >"$PGDIR.out" 2>&1 &
	PG_PID=$!
	for _ in $(seq 240); do [[ -s "$PGDIR.url" ]] && break; kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.5; done
	[[ -s "$PGDIR.url" ]] || { cat "$PGDIR.out" >&2; die "PostgreSQL did not start"; }
	URL="$(cat "$PGDIR.url")"
}
PGFLAGS=()
WALSTATS_DONE=""
WALSTATS=""
[[ "${BENCH_WALSTATS:-0}" == 1 ]] && export BENCH_PG_SETTINGS="${BENCH_PG_SETTINGS:-} wal_keep_size=8GB"
[[ "${BENCH_STATEMENTS:-0}" == 1 ]] && PGFLAGS+=(--stat-statements)
start_pg "$WORK/pg" "${PGFLAGS[@]}"

# --- vaxgate serve (migrates the schema, creates the demo site) ---------------------------------
export VAXGATE_LOG_LEVEL="${VAXGATE_LOG_LEVEL:-warn}"
PROFILE="${BENCH_PROFILE:-0}"
[[ "$PROFILE" == 1 ]] && export VAXGATE_HTTP_PPROF=true
PROFILED=""
[[ -n "${STORE_MAX_BATCH:-}" ]] && export VAXGATE_STORE_MAX_BATCH="$STORE_MAX_BATCH"
[[ -n "${STORE_MAX_DELAY:-}" ]] && export VAXGATE_STORE_MAX_DELAY="$STORE_MAX_DELAY"
[[ -n "${STORE_SHARDS:-}" ]] && export VAXGATE_STORE_SHARDS="$STORE_SHARDS"
start_serve() { # start_serve NAME: vaxgate serve --demo on $URL; sets SERVE_PID, MLLP_PORT, HTTP_PORT, SITE, ORG
	MLLP_PORT="$(bin/benchtool freeport)"
	HTTP_PORT="$(bin/benchtool freeport)"
	[[ "$MLLP_PORT" != "$HTTP_PORT" ]] || HTTP_PORT="$(bin/benchtool freeport)"
	export VAXGATE_DATABASE_URL="$URL" VAXGATE_MLLP_ADDR="127.0.0.1:$MLLP_PORT" VAXGATE_HTTP_ADDR="127.0.0.1:$HTTP_PORT"
	say "starting vaxgate serve (MLLP 127.0.0.1:$MLLP_PORT, HTTP 127.0.0.1:$HTTP_PORT)"
	bin/vaxgate serve --demo >"$WORK/$1.out" 2>"$WORK/$1.log" &
	SERVE_PID=$!
	for _ in $(seq 240); do
		curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
		kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/$1.log" >&2; die "vaxgate serve exited"; }
		sleep 0.5
	done
	curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null || die "vaxgate serve not ready"
	# The pgbench and --verify-db connections use the URL (it holds the password: never echoed).
	# serve answers /readyz before it has set up the demo site; it says when it serves.
	for _ in $(seq 240); do
		grep -q '^vaxgate: MLLP on' "$WORK/$1.log" && break
		kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/$1.log" >&2; die "vaxgate serve exited"; }
		sleep 0.5
	done
	read -r SITE ORG < <("$PSQL" "$URL" -XAtF' ' -c "SELECT id, organization_id FROM sites WHERE code = 'DEMO-SITE'") || true
	[[ -n "${SITE:-}" ]] || die "demo site missing"
}
stop_servers() {
	[[ -n "$SERVE_PID" ]] && kill -TERM "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
	[[ -n "$PG_PID" ]] && kill -TERM "$PG_PID" 2>/dev/null && wait "$PG_PID" 2>/dev/null || true
	SERVE_PID="" PG_PID=""
}
start_serve serve

TCK="$(getconf CLK_TCK)"
# CPU seconds (user+system) so far of serve, and of the PostgreSQL server (postmaster and its
# children: backends, WAL writer, checkpointer, autovacuum): where the machine's time goes.
# (cat skips a process that exited since it was listed; awk alone would fail the whole sum)
cpu_of() { { cat "$@" 2>/dev/null || true; } | awk -v t="$TCK" '{s += $14 + $15} END {printf "%.2f\n", s / t}'; }
# and of its children that have exited (the postmaster's: backends of closed connections, pgbench's)
cpu_dead() { { cat "$@" 2>/dev/null || true; } | awk -v t="$TCK" '{s += $16 + $17} END {printf "%.2f\n", s / t}'; }
serve_cpu() { cpu_of "/proc/$SERVE_PID/stat"; }
pg_cpu() {
	local pm
	pm="$(head -n1 "$PGDIR/pgdata/postmaster.pid" 2>/dev/null)" || { echo 0; return; }
	awk -v a="$(cpu_of "/proc/$pm/stat" $(pgrep -P "$pm" | sed 's|.*|/proc/&/stat|'))" -v b="$(cpu_dead "/proc/$pm/stat")" 'BEGIN {printf "%.2f\n", a + b}'
}
rss() { awk '/^VmRSS/ {print $2 " " $3}' "/proc/$SERVE_PID/status" 2>/dev/null || echo "?"; }
metric() { # metric NAME: its value in serve's /metrics (sums a histogram's _sum or _count line)
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null | awk -v n="$1" '$1 == n {s += $2} END {printf "%.6f\n", s + 0}'
}
# PostgreSQL's own upkeep, which bills its CPU to whatever phase it lands in: the checkpoints so
# far, then per table its vacuums and analyzes so far (autovacuum's, and the writer's own ANALYZE,
# store/planstats.go), one line "CHECKPOINTS TABLE:AUTOVACUUMS:AUTOANALYZES:ANALYZES ...".
maint_state() {
	"$PSQL" "$URL" -XAtq -c "SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) || ' ' ||
		coalesce(string_agg(relname || ':' || autovacuum_count || ':' || autoanalyze_count || ':' || analyze_count, ' '
			ORDER BY relname), '') FROM pg_stat_user_tables" 2>/dev/null || true
}
# maint_diff BEFORE AFTER: what of it ran between two maint_state lines, and the autovacuum
# workers still at work (pg_stat_progress_vacuum), e.g. "vacuum messages; analyze patients; 1 checkpoint".
maint_diff() {
	local running
	running="$("$PSQL" "$URL" -XAtq -c "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_stat_progress_vacuum p
		JOIN pg_class c ON c.oid = p.relid" 2>/dev/null || true)"
	awk -v a="$1" -v b="$2" -v run="$running" 'BEGIN {
		na = split(a, x, " "); nb = split(b, y, " ")
		for (i = 2; i <= na; i++) { split(x[i], f, ":"); av[f[1]] = f[2]; aa[f[1]] = f[3]; an[f[1]] = f[4] }
		for (i = 2; i <= nb; i++) {
			split(y[i], f, ":")
			if (f[2] > av[f[1]]) vac = vac (vac ? "," : "") f[1]
			if (f[3] > aa[f[1]]) ana = ana (ana ? "," : "") f[1]
			if (f[4] > an[f[1]]) wan = wan (wan ? "," : "") f[1]
		}
		if (run != "") vac = vac (vac ? "," : "") run "(running)"
		if (vac) out = "vacuum " vac
		if (ana) out = out (out ? "; " : "") "autoanalyze " ana
		if (wan) out = out (out ? "; " : "") "analyze " wan
		ck = y[1] - x[1]
		if (na && nb && ck > 0) out = out (out ? "; " : "") ck " checkpoint" (ck > 1 ? "s" : "")
		print (out ? out : "-")
	}'
}
# PostgreSQL's current WAL position, and the bytes of WAL between two (empty when not known).
wal_lsn() { "$PSQL" "$URL" -Atqc "SELECT pg_current_wal_lsn()" 2>/dev/null || true; }
wal_bytes() { [[ -n "$1" && -n "$2" ]] && "$PSQL" "$URL" -Atqc "SELECT pg_wal_lsn_diff('$2', '$1')" 2>/dev/null || true; }
# walstats FROM TO N: the WAL records between two positions by type, per message of N (pg_waldump;
# the segments must still be there: BENCH_WALSTATS keeps them with wal_keep_size).
walstats() {
	local dump="$BINDIR/pg_waldump"
	[[ -x "$dump" ]] || { echo "    (pg_waldump not found)"; return; }
	"$dump" --stats=record --start "$1" --end "$2" -p "$PGDIR/pgdata/pg_wal" 2>&1 | awk -v n="$3" '
		/^Total/ {exit}
		$1 ~ /\// && $2 + 0 > 0 {
			gsub(/[()%]/, "", $0); split($0, f, " +")
			# Type N (%) record-size (%) FPI-size (%) combined (%)
			recs = f[2]; rec = f[4]; fpi = f[6]; all = f[8]
			if (recs / n >= 0.01 || all / n >= 1) printf "    %-28s %8.2f records %8.0f B (full pages %6.0f B)\n", f[1], recs / n, all / n, fpi / n
			tr += recs; ta += all; tf += fpi
		}
		END { printf "    %-28s %8.2f records %8.0f B (full pages %6.0f B)\n", "total", tr / n, ta / n, tf / n }'
}

# --- (a) the PostgreSQL ceiling ----------------------------------------------------------------
CEILING=0
CEILING_DESC="not measured"
CEILING_CPU="-"
SAME_CPU="-"
SAME=0
SAME_DESC="not measured"
# cpu_bound US...: the rate all of this machine's CPUs would sustain at these CPU µs per message
# (what an otherwise idle machine allows; load from other work distorts it less than a rate).
cpu_bound() { awk -v c="$(nproc)" -v s="$*" 'BEGIN {n = split(s, a, " "); for (i = 1; i <= n; i++) t += a[i]; printf "%.0f", t ? c * 1e6 / t : 0}'; }
pgbench_rate() { # pgbench_rate CLIENTS BATCH SCRIPT: "messages/s pgbench's-own-CPU-µs-per-message"
	local out tps cpu rc=0 TIMEFORMAT="%U %S"
	out="$( { time timeout $((CEILING_SECONDS + 120)) "$PGBENCH" -n -M prepared -c "$1" -j "${CEILING_THREADS:-$(( $1 < 2 ? $1 : 2 ))}" \
		-T "$CEILING_SECONDS" -D site="$SITE" -D org="$ORG" -f "$3" "$URL" 2>&1; } 2>&1)" || rc=$?
	cpu="$(tail -n1 <<<"$out" | awk '{printf "%.2f", $1 + $2}')"
	out="$(sed '$d' <<<"$out")"
	(( rc == 0 )) || { echo "$out" >&2; die "pgbench failed"; }
	tps="$(awk '/^tps = / {print $3}' <<<"$out")"
	awk -v t="$tps" -v b="$2" -v c="$cpu" -v s="$CEILING_SECONDS" 'BEGIN {n = t * b * s; printf "%.0f %.0f", t * b, n ? 1e6 * c / n : 0}'
}
# min_ceiling SHAPE CLIENTS: one measurement of the minimal-record ceiling in that shape with that
# many pgbench clients (its tables set up by the caller): "messages/s PostgreSQL-µs pgbench-µs" per message.
min_ceiling() {
	local g0 g1 m0 m1 res rate pbcpu
	say "minimal-record ceiling ($1): pgbench, $2 clients, $CEILING_MIN_BATCH messages per transaction, ${CEILING_SECONDS}s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	g0="$(pg_cpu)"; m0="$("$PSQL" "$URL" -XAt -c "SELECT count(*) FROM min_messages")"
	res="$(pgbench_rate "$2" "$CEILING_MIN_BATCH" "$WORK/minimal-$1.sql")"; read -r rate pbcpu <<<"$res"
	g1="$(pg_cpu)"; m1="$("$PSQL" "$URL" -XAt -c "SELECT count(*) FROM min_messages")"
	echo "$rate $(awk -v g="$g0" -v G="$g1" -v n=$((m1 - m0)) 'BEGIN {printf "%.0f", n ? 1e6 * (G - g) / n : 0}') $pbcpu"
}
CEILING_SHAPE=""
CEILING_BEST_CLIENTS=""
CEILING_FIRST=""
if [[ "$LONG" != 1 ]]; then
	# Two shapes of the same rows: a statement per row (pipelined), and one statement per table per
	# transaction (multi-row, as vaxgate's writer writes); the faster is the ceiling.
	for shape in per-row set-based; do
		flags=(); [[ "$shape" == set-based ]] && flags=(--set-based)
		bin/benchtool ceiling --minimal "${flags[@]}" --batch "$CEILING_MIN_BATCH" --setup "$WORK/minimal-setup.sql" --out "$WORK/minimal-$shape.sql"
		"$PSQL" "$URL" -Xq -v ON_ERROR_STOP=1 -f "$WORK/minimal-setup.sql" >/dev/null
		for c in $CEILING_MIN_CLIENTS; do
			read -r rate gcpu pbcpu <<<"$(min_ceiling "$shape" "$c")"
			say "minimal-record ceiling ($shape): $c clients: $rate messages/s, CPU per message: PostgreSQL $gcpu µs, pgbench $pbcpu µs"
			if (( rate > CEILING )); then
				CEILING=$rate CEILING_SHAPE=$shape CEILING_BEST_CLIENTS=$c
				CEILING_DESC="pgbench, $shape, $c clients, $CEILING_MIN_BATCH msg/txn"
				CEILING_CPU="PostgreSQL $gcpu µs, pgbench $pbcpu µs ($(cpu_bound "$gcpu" "$pbcpu") msg/s CPU-bound)"
			fi
		done
		"$PSQL" "$URL" -Xq -c "DROP TABLE min_vaccinations, min_patients, min_messages" >/dev/null
	done
	bin/benchtool ceiling --batch "$CEILING_BATCH" --out "$WORK/ceiling.sql"
	for c in $CEILING_CLIENTS; do
		say "same-rows ceiling: pgbench, $c clients, $CEILING_BATCH messages per transaction, ${CEILING_SECONDS}s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
		g0="$(pg_cpu)"
		res="$(pgbench_rate "$c" "$CEILING_BATCH" "$WORK/ceiling.sql")"; read -r rate pbcpu <<<"$res"
		g1="$(pg_cpu)"
		gcpu="$(awk -v g="$g0" -v G="$g1" -v r="$rate" -v s="$CEILING_SECONDS" 'BEGIN {printf "%.0f", r ? 1e6 * (G - g) / (r * s) : 0}')"
		say "same-rows ceiling: $c clients: $rate messages/s, CPU per message: PostgreSQL $gcpu µs, pgbench $pbcpu µs"
		if (( rate > SAME )); then
			SAME=$rate
			SAME_DESC="pgbench, $c clients, $CEILING_BATCH msg/txn"
			SAME_CPU="PostgreSQL $gcpu µs, pgbench $pbcpu µs ($(cpu_bound "$gcpu" "$pbcpu") msg/s CPU-bound)"
		fi
	done
fi

# --- (b) vaxgate end to end --------------------------------------------------------------------
# Start (b) from a settled database: the ceiling's dirty pages written and its tables analysed, so
# that neither the checkpointer nor autovacuum bills (b) for (a)'s rows.
"$PSQL" "$URL" -Xq -c "CHECKPOINT" -c "VACUUM ANALYZE" >/dev/null
if [[ "${BENCH_STATEMENTS:-0}" == 1 ]]; then
	"$PSQL" "$URL" -Xq -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null
fi
declare -a ROWS=() ROW_RATES=() CPUROWS=()
RSS_START="$(rss)"
MAXCONNS=0
for c in $CONNS; do (( c > MAXCONNS )) && MAXCONNS=$c; done
LAST_RATE=""
PHASE_MSGS=0         # messages sent by the phases so far (the statements' per-message denominator)
PROFILE_SERVE_US=""  # serve's CPU µs per message in the profiled phase
PHASE_FLAGS=()   # extra flags of vaxgate bench for the next phase
PHASE_LABEL=""   # label of the next phase's row (default: its connections, rate and window)
SPLIT=""         # the last phase's "first 20 s, then" rates, when it asked for them
phase() { # phase CONNS MESSAGES [RATE] [WINDOW]: one run of vaxgate bench, one row of the table
	local c=$1 n=$2 RATE=${3:-} WIN=${4:-$WINDOW} label=$1
	[[ -n "$RATE" ]] && label="$c@$RATE/s"
	[[ "$WIN" != "$WINDOW" ]] && label="$label w$WIN"
	[[ -n "$PHASE_LABEL" ]] && label="$PHASE_LABEL"
	b0="$(metric vaxgate_store_batch_size_sum)"; b1="$(metric vaxgate_store_batch_size_count)"
	t0="$(metric vaxgate_store_batch_seconds_sum)"
	say "vaxgate: $c connections, $n messages, window $WIN (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	local m0 m1
	m0="$(maint_state)"
	s0="$(serve_cpu)"; g0="$(pg_cpu)"; w0="$(date +%s.%N)"; l0="$(wal_lsn)"
	local prof=""
	if [[ "$PROFILE" == 1 && -z "$PROFILED" && ( ( -z "${BENCH_PROFILE_PHASE:-}" && "$c" == "$MAXCONNS" ) || "$label" == "${BENCH_PROFILE_PHASE:-}" ) ]]; then
		PROFILED=1
		curl -fsS -o "$WORK/serve.cpu.pprof" "http://127.0.0.1:$HTTP_PORT/debug/pprof/profile?seconds=${BENCH_PROFILE_SECONDS:-15}" &
		prof=$!
	fi
	# The CPU and wall time of the phase end when the bench prints its ACK counts ("acks:", right
	# after the last ACK): what it does next (the stored count, the read-back) is not billed.
	local outf="$WORK/phase.out" bpid cc
	: >"$outf" # the wait below must not find the previous phase's "acks:" line
	# The bench verifies (counts what is stored, reads records back) only once the readings below
	# are taken (--verify-after): its queries are not billed to the phase.
	local go="$WORK/phase.go"
	rm -f "$go"
	bin/vaxgate bench --addr "127.0.0.1:$MLLP_PORT" --conns "$c" --messages "$n" --window "$WIN" \
		--timeout "${TIMEOUT}s" --run-id "R$c-$RANDOM" --seed "$((c + 11))" --verify-db env --verify-records "$VERIFY" \
		--verify-after "$go" ${RATE:+--rate "$RATE"} "${PHASE_FLAGS[@]}" >"$outf" 2>&1 &
	bpid=$!
	while kill -0 "$bpid" 2>/dev/null && ! grep -q '^acks:' "$outf"; do sleep 0.2; done
	s1="$(serve_cpu)"; g1="$(pg_cpu)"; w1="$(date +%s.%N)"; client="$(cpu_of "/proc/$bpid/stat")"; l1="$(wal_lsn)"
	m1="$(maint_diff "$m0" "$(maint_state)")"
	touch "$go"
	wait "$bpid" && rc=0 || rc=$?
	out="$(cat "$outf")"
	[[ -n "$prof" ]] && { wait "$prof" || say "CPU profile failed"; }
	# The bench's own CPU at its last ACK, when it says (exact; /proc above is read a moment later).
	cc="$(sed -n 's/^client cpu: \([0-9.]*\)s$/\1/p' <<<"$out")"
	[[ -n "$cc" ]] && client="$cc"
	echo "$out" | sed 's/^/    /' >&2
	a0="$(metric vaxgate_store_batch_size_sum)"; a1="$(metric vaxgate_store_batch_size_count)"
	u0="$(metric vaxgate_store_batch_seconds_sum)"
	rate="$(sed -n 's/.*s: \([0-9]*\) msg\/s$/\1/p' <<<"$out")"
	lat="$(sed -n 's/^ack latency: p50 \(.*\)  p90 \(.*\)  p99 \(.*\)  max \(.*\)$/\1 \2 \3 \4/p' <<<"$out")"
	SPLIT="$(sed -n 's/^rate: //p' <<<"$out")"
	nonaa="$(sed -n 's/.*non-AA=\([0-9]*\).*/\1/p' <<<"$out")"
	verify="$(sed -n 's/^verify: \([0-9]*\) acknowledged (AA\/AE), \([0-9]*\) stored.*/\2\/\1/p' <<<"$out")"
	readback="$(sed -n 's/^records: \([0-9]*\) sampled, \([0-9]*\) identical.*/\2\/\1/p' <<<"$out")"
	batch="$(awk -v s="$a0" -v s0="$b0" -v c="$a1" -v c0="$b1" 'BEGIN {if (c > c0) printf "%.1f", (s - s0) / (c - c0); else print "-"}')"
	commit="$(awk -v s="$u0" -v s0="$t0" -v c="$a1" -v c0="$b1" 'BEGIN {if (c > c0) printf "%.1fms", 1000 * (s - s0) / (c - c0); else print "-"}')"
	[[ $rc -eq 0 ]] || say "vaxgate bench exited $rc"
	read -r p50 p90 p99 pmax <<<"${lat:-- - - -}"
	# The ratio column is added to the row in the report, once the ceiling is final.
	ROWS+=("$(printf '%-12s %-9s %-10s %-10s %-10s %-10s %-7s %-15s %-10s %-7s %-9s' "$label" "${rate:--}" "$p50" "$p90" "$p99" "$pmax" "${nonaa:--}" "${verify:--}" "${readback:--}" "$batch" "$commit")")
	ROW_RATES+=("${rate:--}")
	LAST_RATE="${rate:-}"
	PHASE_MSGS=$(( PHASE_MSGS + n ))
	[[ -n "$prof" ]] && PROFILE_SERVE_US="$(awk -v n="$n" -v s="$s0" -v S="$s1" 'BEGIN {printf "%.0f", 1e6 * (S - s) / n}')"
	CPUROWS+=("$(awk -v l="$label" -v n="$n" -v s="$s0" -v S="$s1" -v g="$g0" -v G="$g1" -v c="$client" -v w="$w0" -v W="$w1" -v cpus="$(nproc)" -v wal="$(wal_bytes "$l0" "$l1")" -v m="$m1" 'BEGIN {
		printf "%-12s %-10.0f %-10.0f %-10.0f %-10.0f %-6.0f %-16.0f %-10s %s", l, 1e6 * (G - g) / n, 1e6 * (S - s) / n, 1e6 * c / n,
			1e6 * ((W - w) * cpus - (G - g) - (S - s) - c) / n, 100 * ((G - g) + (S - s) + c) / ((W - w) * cpus),
			cpus * n / ((G - g) + (S - s) + c), (wal == "" ? "-" : sprintf("%.0f", wal / n)), m}')")
	if [[ "${BENCH_WALSTATS:-0}" == 1 && -z "$WALSTATS_DONE" && "$c" == "$MAXCONNS" && -n "$l0" && -n "$l1" ]]; then
		WALSTATS_DONE=1
		WALSTATS="$(walstats "$l0" "$l1" "$n")"
	fi
}
if [[ "$LONG" == 1 ]]; then
	# serve's RSS every RSS_INTERVAL seconds, with the records written so far, so that a run cut
	# short still shows the trend: time, seconds since the start, RSS in kB, records written.
	( T0="$(date +%s)"
	  while kill -0 "$SERVE_PID" 2>/dev/null; do
		echo "$(date +%H:%M:%S) $(( $(date +%s) - T0 )) $(rss | cut -d' ' -f1) $(metric vaxgate_store_batch_size_sum | cut -d. -f1)"
		sleep "$RSS_INTERVAL"
	  done ) >"$WORK/rss.log" 2>/dev/null &
	RSS_LOOP=$!
fi
for c in $CONNS; do
	# The largest phase sends BENCH_MESSAGES; smaller ones proportionally fewer (at least 2,000),
	# so that each lasts long enough to be measured and the whole run stays bounded.
	n=$(( MESSAGES * c / MAXCONNS ))
	(( n < 2000 )) && n=2000
	(( n > MESSAGES )) && n=$MESSAGES
	phase "$c" "$n"
done
SAT_RATE="$LAST_RATE"
if [[ -n "$RSS_LOOP" ]]; then
	echo "$(date +%H:%M:%S) end $(rss | cut -d' ' -f1) $(metric vaxgate_store_batch_size_sum | cut -d. -f1)" >>"$WORK/rss.log"
	kill "$RSS_LOOP" 2>/dev/null || true
	RSS_LOOP=""
fi
# The same connections as EHRs use them: one message, then wait for its ACK (window 1). Fewer
# messages in flight than with pipelining: lower latency, smaller group commits.
W1_RATE=""
if [[ "$LONG" != 1 && "$WINDOW" != 1 ]]; then
	phase "$MAXCONNS" "$MESSAGES" "" 1
	W1_RATE="$LAST_RATE"
fi
# Latency below saturation: the largest connection count again, one message at a time per
# connection, each on a schedule (vaxgate bench --rate), for about 20 s: at BENCH_RATED (default
# 0.8) of the rate the pipelined phase reached (the issue's latency target; one message at a time,
# the connections may not carry it: the row shows the rate they did), then, when that is more than
# they carried at window 1, at BENCH_RATED of the window-1 rate (below window-1 saturation). At
# saturation ACK latency is the queue (messages in flight over throughput, Little's law); these
# rows show the latency of the work itself.
RATED="${BENCH_RATED:-0.8}"
if [[ "$LONG" != 1 && -n "$SAT_RATE" && "$RATED" != 0 ]]; then
	r="$(awk -v r="$SAT_RATE" -v f="$RATED" 'BEGIN {printf "%d", r * f}')"
	(( r > 0 )) && phase "$MAXCONNS" "$(( r * 20 ))" "$r" 1
	if [[ -n "$W1_RATE" ]]; then
		r1="$(awk -v r="$W1_RATE" -v f="$RATED" 'BEGIN {printf "%d", r * f}')"
		(( r1 > 0 && r1 < r )) && phase "$MAXCONNS" "$(( r1 * 20 ))" "$r1" 1
	fi
fi
RSS_END="$(rss)"
QUEUE="$(metric vaxgate_store_queue_depth)"
# The writer's failures over the whole run, by stage (a batch written again in halves — a deadlock
# PostgreSQL broke, a bad record —, a record answered with an error, ...): a latency spike with
# none is not the writer's.
FAILURES="$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null | awk -F'[{}"= ]+' '/^vaxgate_store_failures_total\{/ {printf "%s%s %d", sep, $3, $NF; sep = ", "}')"

if [[ "${BENCH_STATEMENTS:-0}" == 1 ]]; then
	# Per message sent in (b): execution time (wall time inside the executor: CPU, and waits for
	# locks and I/O; planning not included), share of the top-level statements' total, calls.
	# Nested statements (foreign-key checks, functions) are inside their caller's time as well.
	N=$(( PHASE_MSGS > 0 ? PHASE_MSGS : 1 ))
	# The multi-row forms of one INSERT (VALUES lists of different lengths) are one line.
	"$PSQL" "$URL" -X -c "WITH s AS (
			SELECT toplevel, calls, rows, total_exec_time, total_plan_time,
				regexp_replace(regexp_replace(query, '\s+', ' ', 'g'), ' VALUES \(.*$', ' VALUES (…)') AS q
			FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())),
		g AS (SELECT CASE WHEN length(q) <= 100 THEN q ELSE left(q, 68) || ' … ' || right(q, 29) END AS statement,
			toplevel, sum(calls) AS calls, sum(rows) AS rows, sum(total_exec_time) AS t,
			sum(total_plan_time) AS plan FROM s GROUP BY q, 2)
		SELECT round((1000 * t / $N)::numeric, 1) AS us_per_msg, round((1000 * plan / $N)::numeric, 1) AS plan_us_per_msg,
			round((100 * t / (SELECT sum(t) FROM g WHERE toplevel))::numeric, 1) AS pct,
			round(calls::numeric / $N, 2) AS calls_per_msg, round((1000 * t / nullif(calls, 0))::numeric, 1) AS mean_us,
			round(rows::numeric / $N, 2) AS rows_per_msg, CASE WHEN toplevel THEN '' ELSE 'nested' END AS nested, statement
		FROM g ORDER BY t DESC LIMIT 25" \
		-c "SELECT round((1000 * sum(total_exec_time) / $N)::numeric, 1) AS us_per_msg_all_top_level,
			round((1000 * sum(total_plan_time) / $N)::numeric, 1) AS plan_us_per_msg_all_top_level,
			round((sum(calls)::numeric / $N), 1) AS statements_per_msg
		FROM pg_stat_statements WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())" \
		>"$WORK/statements.txt"
fi

# --- (a) again: the minimal-record ceiling after (b) ---------------------------------------------
# Its best shape and client count once more, on the same server (its own tables, created again):
# the higher of the two rates is the ceiling the ratios are taken against.
if [[ "$LONG" != 1 && -n "$CEILING_SHAPE" && "${CEILING_AGAIN:-1}" != 0 ]]; then
	bin/benchtool ceiling --minimal $([[ "$CEILING_SHAPE" == set-based ]] && echo --set-based) --batch "$CEILING_MIN_BATCH" \
		--setup "$WORK/minimal-setup.sql" --out "$WORK/minimal-$CEILING_SHAPE.sql"
	# From a settled server, as (b) started: (b)'s rows vacuumed and analysed (else autovacuum does
	# it during the measurement) and its dirty pages written, not during it.
	"$PSQL" "$URL" -Xq -c "VACUUM ANALYZE" >/dev/null
	"$PSQL" "$URL" -Xq -v ON_ERROR_STOP=1 -f "$WORK/minimal-setup.sql" -c "CHECKPOINT" >/dev/null
	read -r rate gcpu pbcpu <<<"$(min_ceiling "$CEILING_SHAPE" "$CEILING_BEST_CLIENTS")"
	"$PSQL" "$URL" -Xq -c "DROP TABLE min_vaccinations, min_patients, min_messages" >/dev/null
	say "minimal-record ceiling ($CEILING_SHAPE) again: $CEILING_BEST_CLIENTS clients: $rate messages/s, CPU per message: PostgreSQL $gcpu µs, pgbench $pbcpu µs"
	CEILING_FIRST="$CEILING"
	if (( rate > CEILING )); then
		CEILING=$rate
		CEILING_CPU="PostgreSQL $gcpu µs, pgbench $pbcpu µs ($(cpu_bound "$gcpu" "$pbcpu") msg/s CPU-bound)"
	fi
	CEILING_DESC="$CEILING_DESC; the higher of $CEILING_FIRST before the vaxgate phases and $rate after"
fi

# --- (c) a fresh database on a stock server, new patients only ---------------------------------
FRESH=""
FRESH_SCANS=""
if [[ "$LONG" != 1 && "$FRESH_MESSAGES" != 0 ]]; then
	stop_servers
	start_pg "$WORK/fresh" --stock
	start_serve serve-fresh
	PHASE_FLAGS=(--new-patients --split 20s) PHASE_LABEL="fresh $MAXCONNS"
	phase "$MAXCONNS" "$FRESH_MESSAGES"
	PHASE_FLAGS=() PHASE_LABEL=""
	FRESH="$SPLIT"
	# Whole-table scans of the tables the writer reads by key (a stale generic plan shows here),
	# and whether autovacuum had analysed them by the end.
	FRESH_SCANS="$("$PSQL" "$URL" -XAt -c "SELECT string_agg(relname || ' ' || seq_scan || ' reading ' || seq_tup_read || ' rows'
			|| CASE WHEN last_autoanalyze IS NULL THEN '' ELSE ' (analysed)' END, ', ' ORDER BY relname)
		FROM pg_stat_user_tables WHERE relname IN ('patients', 'registry_patients', 'vaccinations')")"
fi

# --- report ------------------------------------------------------------------------------------
echo
echo "vaxgate bench — $(date '+%Y-%m-%d %H:%M:%S'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $("$BINDIR/postgres" --version)"
if [[ "$LONG" != 1 ]]; then
	echo "Ceilings of this run (PostgreSQL alone, pgbench, fsync on, statements pipelined):"
	echo "  minimal record: $CEILING msg/s ($CEILING_DESC) — per message the archive row (raw message, ACK,"
	echo "                  findings), a patient upsert and two vaccination rows, on tables of its own; ratio is over this"
	echo "  same rows:      $SAME msg/s ($SAME_DESC) — per message the rows vaxgate's schema stores for an accepted VXU"
	echo "                  of a new patient with one dose (scripts/benchtool: writeCeiling lists them)"
	echo "  CPU per message at the best rate (pgbench runs on the same CPUs): minimal record $CEILING_CPU; same rows $SAME_CPU"
fi
echo
printf '%-12s %-9s %-10s %-10s %-10s %-10s %-7s %-15s %-10s %-7s %-9s %-6s\n' conns "msg/s" p50 p90 p99 max non-AA "stored/acked" "read-back" batch commit "ratio"
for i in "${!ROWS[@]}"; do
	ratio="-"
	[[ "${ROW_RATES[$i]}" != - && "$CEILING" -gt 0 ]] && ratio="$(awk -v r="${ROW_RATES[$i]}" -v c="$CEILING" 'BEGIN {printf "%.2f", r / c}')"
	printf '%s %-6s\n' "${ROWS[$i]}" "$ratio"
done
echo "(stored/acked: this phase's messages in the archive / answered AA or AE; read-back: patient records read"
echo " back identical, field by field, to what was sent / sampled (patients the phase reported once); batch: mean"
echo " records per group commit; commit: mean time to write and commit one; ratio: msg/s over the minimal-record"
echo " ceiling; fresh: a stock PostgreSQL, an empty database, new patients only)"
[[ -n "$FRESH" ]] && echo "fresh database, stock settings: $FRESH"
[[ -n "$FRESH_SCANS" ]] && echo "fresh database, whole-table scans from migration on (while a table is tiny one is the right plan): $FRESH_SCANS"
echo
echo "Where the time goes: CPU microseconds per message"
printf '%-12s %-10s %-10s %-10s %-10s %-6s %-16s %-10s %s\n' conns postgres serve client other "busy%" "CPU-bound msg/s" "WAL B/msg" "upkeep"
for r in "${CPUROWS[@]}"; do echo "$r"; done
echo "(postgres: the server and its backends; serve: vaxgate serve; client: vaxgate bench; other: CPU time"
echo " of the machine not used by those three — other processes, or idle; busy: the three's share of all CPUs;"
echo " CPU-bound: the rate all CPUs would sustain at postgres + serve + client µs per message — the ceilings'"
echo " CPU-bound rates above count PostgreSQL + pgbench the same way; WAL B/msg: PostgreSQL's write-ahead log"
echo " written during the phase, per message — what every commit must write and flush; upkeep: PostgreSQL's"
echo " own work that ran during the phase and is billed to it — autovacuum's vacuums and analyzes, the writer's"
echo " ANALYZE, checkpoints; compare the postgres column of phases with and without it)"
if [[ -n "${WALSTATS:-}" ]]; then
	echo "PostgreSQL's WAL by record type, first phase at $MAXCONNS connections (pg_waldump --stats=record; per message):"
	echo "$WALSTATS"
fi
echo "serve RSS: start $RSS_START, end $RSS_END; queue depth at end: $QUEUE; writer failures: ${FAILURES:-none}"
if [[ "$LONG" == 1 && -s "$WORK/rss.log" ]]; then
	echo "serve RSS every $RSS_INTERVAL s (time, seconds from the start, RSS kB, records written):"
	sed 's/^/    /' "$WORK/rss.log"
	# Flat or not: the samples after the first minute, their extremes and the least-squares slope
	# of RSS over the records written (growth in proportion to traffic is what a leak looks like).
	awk '$2 != "end" && $2 >= 60 && $3 > 0 {
			n++; x = $4; y = $3 / 1024; sx += x; sy += y; sxx += x * x; sxy += x * y
			if (n == 1 || y < lo) lo = y; if (n == 1 || y > hi) hi = y
			if (n == 1) x0 = x; x1 = x
		}
		END {
			if (n < 3 || x1 == x0) { print "serve RSS: fewer than 3 samples after the first minute: no trend (a longer run, or BENCH_RSS_INTERVAL)"; exit }
			slope = (n * sxy - sx * sy) / (n * sxx - sx * sx); rise = slope * (x1 - x0)
			printf "serve RSS after the first minute: min %.0f MB, max %.0f MB over %d samples; slope %+.2f MB per 100,000 messages (fitted %+.1f MB over %d messages): %s\n",
				lo, hi, n, slope * 1e5, rise, x1 - x0, (rise < 0.1 * lo ? "flat" : "GROWING")
		}' "$WORK/rss.log"
fi

if [[ -s "$WORK/serve.cpu.pprof" ]]; then
	echo
	echo "vaxgate serve CPU profile, ${BENCH_PROFILE_PHASE:-$MAXCONNS connections}, ${BENCH_PROFILE_SECONDS:-15} s (the file: $WORK/serve.cpu.pprof with BENCH_KEEP=1)."
	echo "By area: self = samples whose innermost vaxgate or third-party package is the area (the standard library"
	echo "and runtime it calls — allocation, GC assists, syscalls — included); cum = samples with the area anywhere on"
	echo "the stack; µs/msg = self share × serve's CPU per message in that phase (${PROFILE_SERVE_US:-?} µs):"
	"$GO" tool pprof -traces bin/vaxgate "$WORK/serve.cpu.pprof" 2>/dev/null | awk -v us="${PROFILE_SERVE_US:-0}" -f scripts/profile-areas.awk
	echo "top functions by own time (go tool pprof -top):"
	"$GO" tool pprof -top -nodecount=25 bin/vaxgate "$WORK/serve.cpu.pprof" 2>/dev/null | awk '/ flat%/ {p = 1} p'
	echo "by cumulative time:"
	"$GO" tool pprof -top -cum -nodecount=30 bin/vaxgate "$WORK/serve.cpu.pprof" 2>/dev/null | awk '/ flat%/ {p = 1} p'
fi

if [[ "${BENCH_STATEMENTS:-0}" == 1 ]]; then
	echo
	echo "PostgreSQL time by statement during the vaxgate phases of (b), $PHASE_MSGS messages (pg_stat_statements;"
	echo "us_per_msg: execution time per message sent — CPU and waits; plan_us_per_msg: planning time; compare with postgres CPU above):"
	cat "$WORK/statements.txt"
fi

if [[ "$LONG" != 1 && "${BENCH_GOBENCH:-1}" != 0 ]]; then
	echo
	echo "Go benchmarks (per message):"
	"$GO" test -run '^$' -bench 'Parse' -benchmem ./hl7 2>&1 | grep -E '^(Benchmark|ok|FAIL)' || true
	"$GO" test -run '^$' -bench 'Validate' -benchmem ./ingest/validate 2>&1 | grep -E '^(Benchmark|ok|FAIL)' || true
fi
