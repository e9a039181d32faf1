#!/usr/bin/env bash
# bench/scale_out.sh — sharded classification with postgres_fdw against one server, and what
# the coordinator costs per row (README, "Scaling out").
#
#   bash bench/scale_out.sh        uses the extension installed for PG_CONFIG (and its
#                                  postgres_fdw and dblink, from postgresql-contrib)
#
# Three servers of its own on this machine (unix sockets only, in <scratch>/scale-out/; as root
# they run as the postgres system user): a coordinator and two shards, each with
# shared_preload_libraries = camembert, the bundled langid classifier loaded (BENCH_MODEL_DIR
# chooses another classifier directory), camembert.threads = 1.  BENCH_ROWS rows (default
# 10,000) of one-sentence texts in four languages are inserted through the coordinator's
# `posts` (partitioned by hash; partitions: postgres_fdw foreign tables, async_capable) and
# kept in `posts_local` on the coordinator, the one-server baseline.  BENCH_PASSES passes
# (default 3) of each query below, alternating within each pass; medians:
#   one_1      one server, one backend:  SELECT count(camembert_classify(body, m)) FROM posts_local
#   one_2      the same with 2 parallel workers (leader not participating: 2 processes)
#   naive      coordinator, the foreign partitions: SELECT count(camembert_classify(body, m)) FROM posts
#              (postgres_fdw ships no STABLE function: pulls every body, classifies locally)
#   sharded    coordinator: SELECT count(label) FROM posts_classified   (each shard's view
#              classifies its rows; the coordinator only counts what arrives)
#   shard1/2   on one shard alone, directly: SELECT count(label) FROM posts_classified
#   pull_fdw   coordinator: SELECT count(body) FROM posts   (the transfer, nothing classified)
#   pull_local coordinator: SELECT count(body) FROM posts_local
#   label_one  one server: UPDATE posts_local SET label = camembert_classify(body, m)
#   label_naive   coordinator: UPDATE posts SET label = camembert_classify(body, m) (the foreign
#              partitions: every row pulled, classified on the coordinator, sent back one by one)
#   label_shards  each shard its UPDATE, both at once (dblink_send_query, as the README shows)
# Around each query it reads the CPU time of the backend it was sent to (/proc/self/schedstat,
# through pg_read_file): for the coordinator's queries, the coordinator's cost per row, which
# bounds how many shards one coordinator can feed; for the others, the cost per row on one
# core whatever else loads the machine.  Prints one table and writes it, with the
# plans, to bench/runs/scale-out-<date>/report.txt.
set -euo pipefail
shopt -s extglob
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
ROWS=${BENCH_ROWS:-10000}
PASSES=${BENCH_PASSES:-3}
PORT=${BENCH_PORT:-5461}
MODEL_DIR=${BENCH_MODEL_DIR:-$ROOT/models/langid}
SCRATCH=$(scripts/scratch.sh)
DIR=$SCRATCH/scale-out
if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); else RUNAS=(); fi
run() { env -C / "${RUNAS[@]}" "$@"; }
OUT=$ROOT/bench/runs/scale-out-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
REPORT=$OUT/report.txt

NODES=(coord shard1 shard2)
stop_all() {
	local n
	for n in "${NODES[@]}"; do
		[ -f "$DIR/$n/postmaster.pid" ] && run "$BIN/pg_ctl" -D "$DIR/$n" -m immediate stop >/dev/null 2>&1
	done
	return 0
}
trap stop_all EXIT

stop_all
run rm -rf "$DIR"
run mkdir -m 0700 "$DIR" "$DIR/sock" "$DIR/model"
# the servers read the model from a copy they can reach (the clone may be private)
tar -C "$MODEL_DIR" -cf - . | run tar -C "$DIR/model" -xf -
i=0
for n in "${NODES[@]}"; do
	run "$BIN/initdb" -D "$DIR/$n" -U postgres -A trust >/dev/null
	cat <<-EOF | run tee -a "$DIR/$n/postgresql.conf" >/dev/null
	shared_preload_libraries = 'camembert'
	listen_addresses = ''
	unix_socket_directories = '$DIR/sock'
	port = $((PORT + i))
	camembert.threads = 1
	max_parallel_workers_per_gather = 0
	EOF
	run "$BIN/pg_ctl" -D "$DIR/$n" -l "$DIR/$n.log" -w start >/dev/null
	i=$((i + 1))
done
port_of() { case $1 in coord) echo "$PORT" ;; shard1) echo $((PORT + 1)) ;; shard2) echo $((PORT + 2)) ;; esac; }
q() { local n=$1; shift; "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR/sock" -p "$(port_of "$n")" -U postgres -d postgres "$@"; }

M=model
for n in "${NODES[@]}"; do
	q "$n" -c "CREATE EXTENSION camembert" -c "SELECT camembert_load('$M', '$DIR/model')" >/dev/null
done
for n in shard1 shard2; do
	q "$n" -c "CREATE TABLE posts (id bigint PRIMARY KEY, body text, label text)" \
		-c "CREATE VIEW posts_classified AS SELECT id, body, camembert_classify(body, '$M') AS label FROM posts"
done
q coord >/dev/null <<-EOF
	CREATE EXTENSION postgres_fdw;
	CREATE EXTENSION dblink;
	CREATE SERVER shard1 FOREIGN DATA WRAPPER postgres_fdw
		OPTIONS (host '$DIR/sock', port '$((PORT + 1))', dbname 'postgres', async_capable 'true');
	CREATE SERVER shard2 FOREIGN DATA WRAPPER postgres_fdw
		OPTIONS (host '$DIR/sock', port '$((PORT + 2))', dbname 'postgres', async_capable 'true');
	CREATE USER MAPPING FOR CURRENT_USER SERVER shard1;
	CREATE USER MAPPING FOR CURRENT_USER SERVER shard2;
	CREATE TABLE posts (id bigint, body text, label text) PARTITION BY HASH (id);
	CREATE FOREIGN TABLE posts_1 PARTITION OF posts FOR VALUES WITH (MODULUS 2, REMAINDER 0)
		SERVER shard1 OPTIONS (table_name 'posts');
	CREATE FOREIGN TABLE posts_2 PARTITION OF posts FOR VALUES WITH (MODULUS 2, REMAINDER 1)
		SERVER shard2 OPTIONS (table_name 'posts');
	CREATE TABLE posts_classified (id bigint, body text, label text) PARTITION BY HASH (id);
	CREATE FOREIGN TABLE posts_classified_1 PARTITION OF posts_classified FOR VALUES WITH (MODULUS 2, REMAINDER 0)
		SERVER shard1 OPTIONS (table_name 'posts_classified');
	CREATE FOREIGN TABLE posts_classified_2 PARTITION OF posts_classified FOR VALUES WITH (MODULUS 2, REMAINDER 1)
		SERVER shard2 OPTIONS (table_name 'posts_classified');
	-- the README's labelling function: the statement sent to every shard, then collected
	CREATE FUNCTION on_shards(sql text) RETURNS TABLE (shard name, result text)
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
	DECLARE
		servers name[] := ARRAY(SELECT srvname FROM pg_catalog.pg_foreign_server
		                        WHERE srvname LIKE 'shard%' ORDER BY srvname);
	BEGIN
		FOREACH shard IN ARRAY servers LOOP
			PERFORM public.dblink_connect(shard, shard);
			PERFORM public.dblink_send_query(shard, sql);
		END LOOP;
		FOREACH shard IN ARRAY servers LOOP
			SELECT r INTO result FROM public.dblink_get_result(shard) AS t(r text);
			PERFORM public.dblink_disconnect(shard);
			RETURN NEXT;
		END LOOP;
	END \$\$;
	INSERT INTO posts (id, body)
		SELECT i, format((ARRAY['Le fichier %s n''existe pas dans ce répertoire.',
		                        'Die Datei %s existiert nicht in diesem Verzeichnis.',
		                        'El archivo %s no existe en este directorio.',
		                        'The file %s does not exist in this directory.'])[1 + i % 4], 'f' || i)
		FROM generate_series(1, $ROWS) i;
	CREATE TABLE posts_local AS SELECT id, body, label FROM posts;
	VACUUM ANALYZE posts_local;
EOF
for n in shard1 shard2; do q "$n" -c "VACUUM ANALYZE posts"; done
held1=$(q shard1 -c "SELECT count(*) FROM posts")
held2=$(q shard2 -c "SELECT count(*) FROM posts")

PAR="SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;"
declare -A NODE=(
	[one_1]=coord [one_2]=coord [naive]=coord [sharded]=coord [shard1]=shard1 [shard2]=shard2
	[pull_fdw]=coord [pull_local]=coord [label_one]=coord [label_naive]=coord [label_shards]=coord)
declare -A SQL=(
	[one_1]="SELECT count(camembert_classify(body, '$M')) FROM posts_local"
	[one_2]="$PAR SELECT count(camembert_classify(body, '$M')) FROM posts_local"
	[naive]="SELECT count(camembert_classify(body, '$M')) FROM posts"
	[sharded]="SELECT count(label) FROM posts_classified"
	[shard1]="SELECT count(label) FROM posts_classified"
	[shard2]="SELECT count(label) FROM posts_classified"
	[pull_fdw]="SELECT count(body) FROM posts"
	[pull_local]="SELECT count(body) FROM posts_local"
	[label_one]="UPDATE posts_local SET label = camembert_classify(body, '$M') WHERE label IS NULL"
	[label_naive]="UPDATE posts SET label = camembert_classify(body, '$M') WHERE label IS NULL"
	[label_shards]="SELECT * FROM on_shards(\$\$UPDATE posts SET label = camembert_classify(body, '$M') WHERE label IS NULL\$\$)")
declare -A ROWSOF=([shard1]=$held1 [shard2]=$held2)
KEYS=(one_1 one_2 naive sharded shard1 shard2 pull_fdw pull_local label_one label_naive label_shards)

{
	echo "rows: $ROWS (shard1 $held1, shard2 $held2), passes: $PASSES, model: $MODEL_DIR"
	echo "$(q coord -c 'SELECT camembert_version()'), $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	for k in one_2 naive sharded label_naive; do
		echo "--- plan of $k: ${SQL[$k]}"
		q coord -c "${SQL[$k]%%@(SELECT|UPDATE)*}EXPLAIN (VERBOSE, COSTS OFF) ${SQL[$k]##*; }"
	done
} >"$REPORT"

# one timed query: "<ms> <CPU ms of the backend it was sent to>" (/proc/self/schedstat: ns on a
# CPU); a coordinator's query first opens its connections to both shards (untimed), so the
# times are those of a session already connected
CPUQ="SELECT 'cpu ' || split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)"
timed() {
	local k=$1 n=${NODE[$1]} out warm=
	case $k in
		label_one) q coord -c "UPDATE posts_local SET label = NULL" -c "VACUUM posts_local" ;;
		label_*) for s in shard1 shard2; do q "$s" -c "UPDATE posts SET label = NULL" -c "VACUUM posts"; done ;;
	esac
	[ "$n" = coord ] && warm="SELECT count(*) FROM posts WHERE id < 0"
	out=$(q "$n" -c "${warm:-SELECT 1}" -c "$CPUQ" -c '\timing on' -c "${SQL[$k]}" -c '\timing off' -c "$CPUQ")
	local ms cpu
	ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -1)
	cpu=$(grep '^cpu ' <<<"$out" | awk 'NR == 1 {a = $2} NR == 2 {printf "%.1f", ($2 - a) / 1e6}')
	echo "$ms $cpu"
}
declare -A MS CPU
for ((p = 0; p < PASSES; p++)); do
	for k in "${KEYS[@]}"; do
		read -r ms cpu < <(timed "$k")
		MS[$k]="${MS[$k]:-} $ms"; CPU[$k]="${CPU[$k]:-} $cpu"
		echo "pass $p $k: $ms ms, backend CPU $cpu ms" >>"$REPORT"
	done
done
# every label the shards computed equals one server's
diff=$(q coord -c "SELECT count(*) FROM posts_local l FULL JOIN posts_classified s USING (id) WHERE l.label IS DISTINCT FROM s.label")
echo "rows whose sharded label differs from one server's: $diff" >>"$REPORT"

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
{
	echo
	echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
	printf '| query | server | rows | median ms | rows/s | CPU of its backend, µs/row |\n|---|---|---|---|---|---|\n'
	for k in "${KEYS[@]}"; do
		m=$(echo "${MS[$k]}" | median); c=$(echo "${CPU[$k]}" | median)
		r=${ROWSOF[$k]:-$ROWS}
		cpu_row=$(awk -v c="$c" -v r="$r" 'BEGIN {printf "%.1f", c * 1000 / r}')
		printf '| %s | %s | %s | %s | %s | %s |\n' "$k" "${NODE[$k]}" "$r" "$m" \
			"$(awk -v m="$m" -v r="$r" 'BEGIN {printf "%.0f", r * 1000 / m}')" "$cpu_row"
	done
} | tee -a "$REPORT"
echo "report: $REPORT"
