#!/usr/bin/env bash
# cluster.sh — a scratch PostgreSQL cluster for the demo, the tests and the benchmarks.
#
#   scripts/cluster.sh start      initdb if needed, then start (idempotent)
#   scripts/cluster.sh stop       stop it (idempotent)
#   scripts/cluster.sh restart
#   scripts/cluster.sh status
#   scripts/cluster.sh psql ARGS  psql into it (database postgres unless ARGS say otherwise)
#   scripts/cluster.sh env        print the PGHOST/PGPORT/PGUSER exports: eval "$(scripts/cluster.sh env)"
#   scripts/cluster.sh dir        print the cluster's folder
#   scripts/cluster.sh destroy    stop it and remove its folder
#
# Where it lives: as root the server runs as the 'postgres' system user (PostgreSQL refuses
# root), which must not need to read the clone: the cluster is in cluster/ of the clone's
# scratch directory, /var/tmp/camembert-<hash of the clone's path>, owned by postgres, mode 0700
# (scripts/scratch.sh).  As another user it is in the clone's ignored .cluster/ folder.
# Data in <folder>/data, the unix socket in <folder> itself, no TCP: the server trusts whoever
# connects, so only its own operating-system user (and root) may reach the socket (mode 0700,
# in a folder of the cluster's).  The port, which names the socket, is chosen free at initdb
# time, or at start if that one has been taken since (kept in <folder>/port).
# shared_preload_libraries = 'camembert'.
# PG_CONFIG selects the PostgreSQL installation (default: pg_config on PATH);
# CAMEMBERT_CLUSTER_DIR another folder for the cluster (scripts/test.sh uses test-cluster/ of the
# scratch directory, so that tests never disturb the demo's or a benchmark's cluster).
# Extra settings for postgresql.conf can be given in CAMEMBERT_CLUSTER_CONF at initdb time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/scratch.sh"
SCRATCH=
if [ -n "${CAMEMBERT_CLUSTER_DIR:-}" ]; then
	DIR=$(realpath -m "$CAMEMBERT_CLUSTER_DIR")
elif [ "$(id -u)" = 0 ]; then
	SCRATCH=$(camembert_scratch)
	DIR=$SCRATCH/cluster
else
	DIR=$ROOT/.cluster
fi
DATA=$DIR/data
PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$("$PG_CONFIG" --bindir)

if [ "$(id -u)" = 0 ]; then
	# from /: the server's user may not be allowed into the caller's directory
	RUNAS=(env -C / runuser -u postgres --)
	DBUSER=postgres
else
	RUNAS=()
	DBUSER=$(id -un)
fi

port() { cat "$DIR/port"; }

free_port() {
	local p
	for p in $(seq 54330 54999); do
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"; return 0
		fi
	done
	echo "no free port in 54330-54999" >&2; return 1
}

unreachable() {
	echo "cluster.sh: user postgres cannot reach $DIR; leave CAMEMBERT_CLUSTER_DIR unset" \
		"(the default is outside the clone) or choose a folder it can reach" >&2
	exit 1
}

init() {
	[ -f "$DATA/PG_VERSION" ] && return 0
	[ -z "$SCRATCH" ] || camembert_scratch --create >/dev/null
	if [ "$(id -u)" = 0 ]; then
		# postgres must reach the folder: check before creating or handing over anything
		local up=$DIR
		until [ -e "$up" ]; do up=$(dirname "$up"); done
		"${RUNAS[@]}" test -x "$up" || unreachable
		if [ "$up" != "$DIR" ]; then
			mkdir -p "$DIR"
			chown postgres: "$DIR"
		elif ! "${RUNAS[@]}" test -w "$DIR"; then
			[ -z "$(ls -A "$DIR")" ] || unreachable   # only an empty folder is handed over
			chown postgres: "$DIR"
		fi
		if [ -n "$SCRATCH" ] && [ -f "$ROOT/.cluster/data/postmaster.pid" ]; then
			echo "cluster.sh: note: a scratch cluster of an older version may still run in $ROOT/.cluster;" \
				"stop it with CAMEMBERT_CLUSTER_DIR=$ROOT/.cluster $0 stop" >&2
		fi
	else
		mkdir -p "$DIR"
	fi
	free_port > "$DIR/port"
	"${RUNAS[@]}" "$BINDIR/initdb" -D "$DATA" -U "$DBUSER" --auth=trust --encoding=UTF8 \
		--locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
	cat >> "$DATA/postgresql.conf" <<CONF

# scratch cluster written by scripts/cluster.sh
listen_addresses = ''
unix_socket_permissions = 0700
port = $(port)
unix_socket_directories = '$DIR'
shared_preload_libraries = 'camembert'
max_connections = 40
fsync = off
logging_collector = off
log_min_messages = warning
lc_messages = 'C'
max_parallel_workers_per_gather = 2
${CAMEMBERT_CLUSTER_CONF:-}
CONF
}

running() { "${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
	init
	running && return 0
	# a cluster made by an older cluster.sh listened on 127.0.0.1 with trust: any local user
	# could connect as the superuser
	if ! grep -q "^unix_socket_permissions = 0700" "$DATA/postgresql.conf"; then
		printf "listen_addresses = ''\nunix_socket_permissions = 0700\n" >> "$DATA/postgresql.conf"
	fi
	# the port chosen at initdb may have been taken while the cluster was stopped
	# (by another clone's cluster, say): take another; the last port line wins
	if (exec 3<>"/dev/tcp/127.0.0.1/$(port)") 2>/dev/null; then
		free_port > "$DIR/port"
		echo "port = $(port)   # the previous one was taken (scripts/cluster.sh start)" >> "$DATA/postgresql.conf"
	fi
	"${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 start >/dev/null || {
		echo "cluster.sh: server did not start; last lines of $DIR/server.log:" >&2
		tail -20 "$DIR/server.log" >&2; exit 1; }
}

stop() {
	[ -f "$DATA/PG_VERSION" ] || return 0
	running || return 0
	"${RUNAS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
}

cmd=${1:-status}
shift || true
case "$cmd" in
	start) start ;;
	stop) stop ;;
	restart) stop; start ;;
	status) if running; then echo "running on port $(port), socket in $DIR"; else echo "not running"; exit 3; fi ;;
	env) echo "export PGHOST='$DIR' PGPORT='$(port)' PGUSER='$DBUSER' PGDATABASE=postgres" ;;
	psql) PGHOST=$DIR PGPORT=$(port) PGUSER=$DBUSER exec "$BINDIR/psql" -X -d postgres "$@" ;;
	dir) echo "$DIR" ;;
	destroy) stop; rm -rf "$DIR"; [ -z "$SCRATCH" ] || rmdir --ignore-fail-on-non-empty "$SCRATCH" 2>/dev/null || true ;;
	*) echo "usage: $0 start|stop|restart|status|env|psql|dir|destroy" >&2; exit 2 ;;
esac
