# Throwaway PostgreSQL clusters for tests, benchmarks and the demo.
# Source this file, then:
#   pgc_start [postgresql.conf lines...]   initdb into a temp dir, start on a
#                                          free port with a unix socket only;
#                                          exports PGHOST PGPORT PGUSER PGDATABASE PGC_DIR
#   pgc_stop                               stop the server and delete the directory
# Servers run as the `postgres` user when we are root (initdb refuses root).
# Never touches a system-wide cluster.

PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}

# Runs a command as the server's owner. As root it runs as postgres from /,
# since postgres may not be allowed into the caller's directory: give it
# absolute paths.
pgc_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pgc_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pgc_start() {
  PGC_DIR=$(mktemp -d /tmp/vecext-pg.XXXXXX)
  chmod 755 "$PGC_DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$PGC_DIR"
  local port
  port=$(pgc_free_port)
  pgc_as_owner "$PGBIN/initdb" -D "$PGC_DIR/data" -A trust -U postgres --no-sync -E UTF8 --locale=C >"$PGC_DIR/initdb.log" 2>&1 \
    || { cat "$PGC_DIR/initdb.log"; return 1; }
  {
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$PGC_DIR'"
    echo "port = $port"
    echo "max_connections = 50"
    echo "shared_buffers = 512MB"
    echo "maintenance_work_mem = 1GB"
    echo "max_wal_size = 4GB"
    echo "fsync = ${PGC_FSYNC:-off}"
    echo "synchronous_commit = off"
    echo "full_page_writes = on"
    echo "log_min_messages = warning"
    echo "lc_messages = 'C'"
    for line in "$@"; do echo "$line"; done
  } | pgc_as_owner tee -a "$PGC_DIR/data/postgresql.conf" >/dev/null
  pgc_as_owner "$PGBIN/pg_ctl" -D "$PGC_DIR/data" -l "$PGC_DIR/server.log" -w -t 60 start >/dev/null \
    || { cat "$PGC_DIR/server.log"; return 1; }
  export PGHOST=$PGC_DIR PGPORT=$port PGUSER=postgres PGDATABASE=postgres PGC_DIR
}

pgc_stop() {
  [ -n "${PGC_DIR:-}" ] || return 0
  pgc_as_owner "$PGBIN/pg_ctl" -D "$PGC_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PGC_DIR"
  unset PGC_DIR
}
