#!/usr/bin/env bash
# tests/server_doc/run.sh (`make server-doc-tests`): docs/server.md followed
# command by command, and a C worker run through the server it sets up.
#
#  1. takes the page's fenced blocks: the one marked `sh server-settings`
#     (its names must be exactly the ones this test sets) and, in order, every
#     one marked `sh server-test`;
#  2. sets those names to a scratch directory, free ports on 127.0.0.1, a
#     private PostgreSQL cluster (tests/server_doc/postgres.py, the harness's
#     postgres_cluster module) and a certificate of a test CA; puts a `sudo`
#     on PATH that runs `sudo -u postgres COMMAND` as that cluster's OS user
#     with PGHOST and PGPORT set to it (it refuses anything else);
#  3. runs the blocks in one bash (set -euo pipefail) in a directory holding
#     `worker` (examples/worker.c built against target/release); after the
#     gunicorn block it waits for the server to answer, after the nginx block
#     it starts nginx with the page's site file (its own pid, logs and temp
#     paths; as the current user, in the foreground, in the background);
#  4. checks the run is done (`100 0 0 20`, two workers), the index exists,
#     both access logs hold task requests, and neither holds the password or
#     a token (one is fetched for the check).
# gunicorn, nginx and PostgreSQL are stopped by their PIDs on exit.
# Ends with "N passed, M failed". Needs `make build` first.
set -uo pipefail

# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
start=$(date +%s)
page=docs/server.md
need cc "apt-get install -y gcc"
need curl "apt-get install -y curl"
need nginx "apt-get install -y nginx"
need openssl "apt-get install -y openssl"
need psql "apt-get install -y postgresql"
need python3 "apt-get install -y python3 python3-venv"
need runuser "apt-get install -y util-linux"
need_release_library

scratch_dir tf-server-doc
run_dir=$tmp/run
mkdir -p "$run_dir" "$tmp/bin" "$tmp/nginx" "$tmp/tls" "$tmp/state"
chmod 755 "$tmp" # the cluster's OS user (postgres, when root) reaches its files

# Stopped by PID on exit: gunicorn (its pid file), nginx, the cluster.
stop_all() {
    local pid
    for pid in $(cat "$tmp/srv/gunicorn.pid" 2>/dev/null) $(cat "$tmp/state/nginx.pid" 2>/dev/null); do
        kill "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    [ -f "$tmp/pg/postgres.json" ] && python3 tests/server_doc/postgres.py stop "$tmp/pg"
}
trap 'status=$?; stop_all; (exit $status); tf_cleanup' EXIT
# Killed (a make test stopped by its process group): the EXIT trap still
# stops the servers (bash runs it for a signal only through exit).
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# blocks INFO: the page's fenced blocks whose info string is INFO, each
# followed by a line "#### end of block".
blocks() {
    awk -v info="$1" '
        /^```/ { if (inside) { print "#### end of block"; inside = 0; next }
                 if ($0 == "```" info) { inside = 1; next } }
        inside { print }' "$page"
}

# ---------------------------------------------------------------------------
echo "== 1. the blocks of $page"
blocks "sh server-settings" >"$tmp/settings.sh"
blocks "sh server-test" >"$tmp/blocks.sh"
names=$(sed -n 's/^\([A-Z_]*\)=.*/\1/p' "$tmp/settings.sh" | sort | tr '\n' ' ')
ours="NGINX_LOG NGINX_SITE PG_PORT SERVER_NAME TF_HOME TF_PORT TLS_CERT TLS_KEY TLS_LISTEN TLS_PORT "
if [ "$names" = "$ours" ]; then
    pass "the settings block names what this test sets: $names"
else
    fail "the settings block names '$names', this test sets '$ours'"
fi
count=$(grep -c '^#### end of block' "$tmp/blocks.sh")
if [ "$count" -ge 8 ] && grep -q -- '--access-logfile' "$tmp/blocks.sh" && grep -q 'NGINX_SITE' "$tmp/blocks.sh"; then
    pass "$count blocks to follow, gunicorn and nginx among them"
else
    fail "only $count server-test blocks found in $page"
fi

# ---------------------------------------------------------------------------
echo "== 2. the test's settings: PostgreSQL, certificates, ports"
if ! python3 tests/server_doc/postgres.py start "$tmp/pg" >"$tmp/pg.env" 2>"$tmp/pg.err"; then
    cat "$tmp/pg.err"
    die "could not start a private PostgreSQL cluster"
fi
# shellcheck disable=SC1091 # written just above
source "$tmp/pg.env"
pass "a private PostgreSQL cluster on 127.0.0.1:$PGPORT (pid $PG_PID, as $PG_OS_USER)"

(
    cd "$tmp/tls" &&
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj "/CN=taskfarm server.md test CA" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" &&
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 &&
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
            -days 2 -extfile server.ext
) >"$tmp/tls/openssl.log" 2>&1 || { cat "$tmp/tls/openssl.log"; die "openssl could not make the certificates"; }

tf_port=$(free_port)
tls_port=$(free_port)
cat >"$tmp/test-settings.sh" <<EOF
TF_HOME=$tmp/srv
TF_PORT=$tf_port
PG_PORT=$PGPORT
SERVER_NAME=127.0.0.1
TLS_LISTEN=127.0.0.1:$tls_port
TLS_PORT=$tls_port
TLS_CERT=$tmp/tls/server.pem
TLS_KEY=$tmp/tls/server.key
NGINX_SITE=$tmp/nginx/site.conf
NGINX_LOG=$tmp/nginx/access.log
EOF

# sudo -u postgres COMMAND...: COMMAND as the private cluster's OS user.
cat >"$tmp/bin/sudo" <<EOF
#!/usr/bin/env bash
[ "\${1:-}" = -u ] && [ "\${2:-}" = postgres ] && [ \$# -gt 2 ] ||
    { echo "tests/server_doc: this sudo only runs 'sudo -u postgres COMMAND'" >&2; exit 1; }
shift 2
env=(PGHOST='$PGHOST' PGPORT='$PGPORT' PGUSER='$PG_OS_USER' PGDATABASE=postgres)
if [ "\$(id -u)" = 0 ] && [ '$PG_OS_USER' != root ]; then
    exec runuser -u '$PG_OS_USER' -- env "\${env[@]}" "\$@"
fi
exec env "\${env[@]}" "\$@"
EOF
chmod 755 "$tmp/bin/sudo"

cc -std=c11 -O2 -Iinclude examples/worker.c -Ltarget/release -Wl,-rpath,"$root/target/release" \
    -ltaskfarm_worker -o "$run_dir/worker" || die "examples/worker.c does not build"
ln -s "$root/tests" "$run_dir/tests" # the page's commands run from a clone

# ---------------------------------------------------------------------------
echo "== 3. the page's commands"
# After the gunicorn block (--access-logfile): wait until it answers. After the nginx block:
# start nginx with the site file. At the end: the variables the checks need.
cat >"$tmp/hooks.sh" <<EOF
after_block() {
    if grep -q -- '--access-logfile' "\$1"; then
        for _ in \$(seq 300); do
            curl -sf -o /dev/null "http://127.0.0.1:\$TF_PORT/" && return 0
            sleep 0.1
        done
        echo "gunicorn does not answer on 127.0.0.1:\$TF_PORT" >&2
        cat "\$TF_HOME/log/error.log" >&2
        return 1
    fi
    if grep -q 'NGINX_SITE' "\$1"; then
        cat >'$tmp/nginx/nginx.conf' <<CONF
daemon off;
master_process off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    include \$NGINX_SITE;
}
CONF
        # In a subshell: not a job of this shell, which the page's \`wait\` would wait for.
        (nginx -p '$tmp/nginx' -c '$tmp/nginx/nginx.conf' >'$tmp/nginx/stdout.log' 2>&1 &
            echo \$! >'$tmp/state/nginx.pid')
        for _ in \$(seq 300); do
            curl -s -o /dev/null --cacert '$tmp/tls/ca.pem' "https://127.0.0.1:\$TLS_PORT/" && return 0
            kill -0 "\$(cat '$tmp/state/nginx.pid')" 2>/dev/null || break
            sleep 0.1
        done
        echo "nginx does not answer on \$TLS_LISTEN" >&2
        cat '$tmp/nginx/error.log' '$tmp/nginx/stdout.log' >&2
        return 1
    fi
}
EOF
{
    echo "set -euo pipefail"
    echo "source '$tmp/hooks.sh'"
    cat "$tmp/test-settings.sh"
    n=0
    block=$tmp/block-$n.sh
    : >"$block"
    while IFS= read -r line; do
        if [ "$line" = "#### end of block" ]; then
            echo "after_block '$block'"
            n=$((n + 1))
            block=$tmp/block-$n.sh
            : >"$block"
        else
            printf '%s\n' "$line" >>"$block"
            printf '%s\n' "$line"
        fi
    done <"$tmp/blocks.sh"
    echo "declare -p uuid TF_PASSWORD >'$tmp/state/vars.sh'"
} >"$tmp/page.sh"

if (cd "$run_dir" && PATH=$tmp/bin:$PATH TASKFARM_CA_FILE=$tmp/tls/ca.pem \
    timeout 600 bash "$tmp/page.sh") >"$tmp/page.out" 2>"$tmp/page.err"; then
    pass "every server-test block of $page ran (gunicorn + PostgreSQL behind nginx with TLS)"
else
    fail "the blocks of $page failed (exit $?)"
    tail -n 30 "$tmp/page.err"
fi

# ---------------------------------------------------------------------------
echo "== 4. what the server did"
uuid='' TF_PASSWORD=''
# shellcheck disable=SC1091 # written by the page's script
[ -f "$tmp/state/vars.sh" ] && source "$tmp/state/vars.sh"
check "two C workers did the run through nginx: '$(tail -n 1 "$tmp/page.out")' is '100 0 0 20'" \
    test "$(tail -n 1 "$tmp/page.out")" = "100 0 0 20"
index=$(PATH=$tmp/bin:$PATH sudo -u postgres psql -X -tA -d taskfarm \
    -c "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_tasks_run_id'" 2>&1)
check "the index of BENCHMARKS.md is there: $index" \
    test "$index" = "CREATE INDEX ix_tasks_run_id ON public.tasks USING btree (run_id)"
check "gunicorn's access log holds the task requests of run $uuid" \
    grep -q "\"POST /api/runs/$uuid/task " "$tmp/srv/log/access.log"
check "nginx's access log holds the task requests of run $uuid" \
    grep -q "\"POST /api/runs/$uuid/task " "$tmp/nginx/access.log"
token=$(curl -sf --cacert "$tmp/tls/ca.pem" -u "alice:$TF_PASSWORD" "https://127.0.0.1:$tls_port/api/token" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])' 2>/dev/null)
check "a token was fetched for the next check" test -n "$token"
# A request with the token, so that the logs have one to leak.
curl -sf -o /dev/null --cacert "$tmp/tls/ca.pem" -u "$token:" "https://127.0.0.1:$tls_port/api/runs"
no_secret() { # FILE
    [ -n "$TF_PASSWORD" ] && [ -n "$token" ] && [ -s "$1" ] &&
        ! grep -qF -e "$TF_PASSWORD" -e "$token" -e "${token:0:20}" "$1"
}
check "gunicorn's access log holds neither the password nor the token" no_secret "$tmp/srv/log/access.log"
check "nginx's access log holds neither the password nor the token" no_secret "$tmp/nginx/access.log"

echo "server.md test: $(($(date +%s) - start)) s"
summary
