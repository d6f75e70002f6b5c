# A private PostgreSQL server for the tests; sourced by scripts/test.sh from the repository root.
#
# Creates a cluster (initdb) in a fresh temporary directory owned by the postgres user when run as
# root (the server refuses to run as root), trusting connections from 127.0.0.1 only, starts it on
# a free loopback port and exports BATON_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT/postgres;
# each test creates a database of its own there. The server takes TLS and plain connections alike:
# its certificate, for localhost and 127.0.0.1, is signed by a CA made here, whose certificate is
# exported as BATON_TEST_POSTGRES_CA. The server is stopped and its directory removed when the
# calling shell exits (after whatever EXIT trap was set before).

postgres_bin=$(find /usr/lib/postgresql -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1)
postgres_bin=${postgres_bin%/initdb}
if [ -z "$postgres_bin" ]; then
  echo "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql" >&2
  return 1
fi
if ! command -v openssl >/dev/null 2>&1; then
  echo "openssl is not installed (it makes the server's TLS certificates): apt-get install openssl" >&2
  return 1
fi

postgres_dir=$(mktemp -d /tmp/baton-test-postgres.XXXXXX)
postgres_as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$postgres_dir"
  postgres_as=(runuser -u postgres --)
fi
postgres_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

postgres_server_stop() {
  "${postgres_as[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$postgres_dir"
}
# The EXIT trap set so far (bash shows the caller's traps inside a command substitution).
postgres_previous_exit_trap() {
  eval "set -- $(trap -p EXIT)"
  printf '%s' "${3:-}"
}
trap "postgres_server_stop; $(postgres_previous_exit_trap)" EXIT

"${postgres_as[@]}" "$postgres_bin/initdb" -D "$postgres_dir/data" -U postgres --auth=trust \
  --encoding=UTF8 --locale=C --no-sync >"$postgres_dir/initdb.log" 2>&1 ||
  { cat "$postgres_dir/initdb.log" >&2; return 1; }
echo 'host all all 127.0.0.1/32 trust' >"$postgres_dir/data/pg_hba.conf"
postgres_tls=$postgres_dir/tls
mkdir "$postgres_tls"
(
  cd "$postgres_tls" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -subj '/CN=Baton test PostgreSQL CA' -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.pem &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
      -keyout server.key -out server.csr &&
    printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=critical,CA:FALSE' \
      'extendedKeyUsage=serverAuth' >server.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -extfile server.ext -out server.pem &&
    chmod 600 server.key
) >"$postgres_dir/tls.log" 2>&1 || { cat "$postgres_dir/tls.log" >&2; return 1; }
if [ "$(id -u)" = 0 ]; then
  chown -R postgres: "$postgres_tls"
fi
# Durability is not under test: no fsync, so that a database a test creates costs milliseconds.
"${postgres_as[@]}" "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -l "$postgres_dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $postgres_port -k $postgres_dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on -c ssl_cert_file=$postgres_tls/server.pem -c ssl_key_file=$postgres_tls/server.key" \
  start >/dev/null || { cat "$postgres_dir/server.log" >&2; return 1; }
for _ in $(seq 100); do
  "$postgres_bin/pg_isready" -q -h 127.0.0.1 -p "$postgres_port" && break
  sleep 0.1
done
"$postgres_bin/pg_isready" -q -h 127.0.0.1 -p "$postgres_port" ||
  { echo "PostgreSQL does not accept connections on port $postgres_port" >&2; return 1; }

export BATON_TEST_POSTGRES=postgres://postgres@127.0.0.1:$postgres_port/postgres
export BATON_TEST_POSTGRES_CA=$postgres_tls/ca.pem
