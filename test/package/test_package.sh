#!/usr/bin/env bash
# The Debian packages, end to end, as root on this machine: builds them (scripts/package), checks them with
# lintian (errors and warnings fail), installs them with dpkg -i, runs the installed programs (-v, -h, the
# example config, a -once copy between two consul-kvsim through the unit's ExecStart as the kvship user),
# verifies the systemd unit (systemd-analyze verify, security) and removes (dpkg -r) and purges (dpkg -P)
# them, checking what each step must leave behind.
# Usage: test/package/test_package.sh [--no-build]   (--no-build: use the .debs already in $OUT_DIR)
# Environment: OUT_DIR (build/packages), KVSHIP_MAX_EXPOSURE (the highest systemd-analyze security
# exposure accepted for kvship@.service, 2.0).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out=${OUT_DIR:-$root/build/packages}
max_exposure=${KVSHIP_MAX_EXPOSURE:-2.0}
packages=(kvship kvship-kvsim)

step() { echo "== package test: $* =="; }
fail() { echo "package test FAILED: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    fail "needs root (dpkg -i, a system user); run it as root, as CI does"
fi
for tool in lintian systemd-analyze man python3 dpkg-deb runuser strace; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/setup"
done
for p in "${packages[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
        fail "$p is already installed on this machine; purge it first (dpkg -P ${packages[*]})"
    fi
done
if getent passwd kvship >/dev/null || getent group kvship >/dev/null; then
    fail "a user or group named kvship exists already; the package creates its own and purge removes it"
fi
if [ -e /etc/kvship ]; then
    fail "/etc/kvship exists already; the test checks that purge leaves nothing there"
fi

work=$(mktemp -d)
sims=()
cleanup() {
    local rc=$?
    for pid in "${sims[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${sims[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -f /etc/kvship/pkgtest.hcl /etc/kvship/pkgtest.json
    # never leave the packages installed: a consul-replicate on PATH would be taken for HashiCorp's
    for p in "${packages[@]}"; do
        if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
            echo "package test: cleaning up: dpkg -P $p" >&2
            dpkg -P "$p" >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT

start=$(date +%s)
if [ "${1:-}" != "--no-build" ]; then
    step "build (scripts/package)"
    OUT_DIR=$out scripts/package
fi
version=$(dpkg-parsechangelog -SVersion)
arch=$(dpkg --print-architecture)
debs=()
for p in "${packages[@]}"; do
    deb=$out/${p}_${version}_${arch}.deb
    [ -f "$deb" ] || fail "$deb was not built"
    debs+=("$deb")
done

step "lintian"
# --fail-on error,warning: any E: or W: tag fails; I: tags are shown. No overrides are shipped.
rc=0
lintian --fail-on error,warning --display-info "${debs[@]}" > "$work/lintian.txt" 2>&1 || rc=$?
grep -v 'running with root privileges' "$work/lintian.txt" || true
[ $rc -eq 0 ] || fail "lintian found errors or warnings (above), exit $rc"

step "dpkg -i"
dpkg -i "${debs[@]}"
installed=$(dpkg-query -W -f='${Version}' kvship)
[ "$installed" = "$version" ] || fail "installed kvship is $installed, built $version"
dpkg -L "${packages[@]}" | sort -u > "$work/files.txt"
# the upgrade path (postinst configure with the old version): the user is kept as it is
uid_before=$(id -u kvship) || fail "no kvship user after dpkg -i"
dpkg -i "$out/kvship_${version}_${arch}.deb" >/dev/null || fail "installing kvship over itself failed"
[ "$(id -u kvship)" = "$uid_before" ] || fail "reinstalling kvship changed the kvship user"

# the name consul-replicate is an alternative pointing at kvship, with its man page as a slave
[ "$(readlink -f /usr/bin/consul-replicate)" = /usr/bin/kvship ] \
    || fail "/usr/bin/consul-replicate does not lead to /usr/bin/kvship: $(ls -l /usr/bin/consul-replicate 2>&1)"
update-alternatives --query consul-replicate | grep -qx 'Value: /usr/bin/kvship' \
    || fail "update-alternatives does not select /usr/bin/kvship for consul-replicate"
[ "$(readlink -f /usr/share/man/man1/consul-replicate.1.gz)" = /usr/share/man/man1/kvship.1.gz ] \
    || fail "consul-replicate.1.gz is not the slave alternative of kvship.1.gz"

step "the installed programs"
expected="consul-replicate v0.4.0 (kvship $version)"
for prog in /usr/bin/consul-replicate /usr/bin/kvship; do
    got=$("$prog" -v 2>&1) || fail "$prog -v exited $?"
    [ "$got" = "$expected" ] || fail "$prog -v printed '$got', expected '$expected' (the package version)"
done
/usr/bin/consul-replicate -h > "$work/help.txt" 2>&1 || fail "consul-replicate -h exited $?"
grep -q '^Usage: consul-replicate \[options\]' "$work/help.txt" || fail "consul-replicate -h printed no usage"
grep -q -- '-kill-signal=<signal>' "$work/help.txt" || fail "consul-replicate -h lacks -kill-signal"
/usr/bin/consul-kvsim -h > "$work/kvsim-help.txt" 2>&1 || fail "consul-kvsim -h exited $?"
grep -q '^Usage: consul-kvsim' "$work/kvsim-help.txt" || fail "consul-kvsim -h printed no usage"
# -v loads the configuration first: the shipped example must be a valid configuration
/usr/bin/kvship -config=/etc/kvship/vault.hcl.example -v >/dev/null 2>&1 \
    || fail "/etc/kvship/vault.hcl.example is not a valid configuration (kvship -config=... -v exited $?)"

step "man pages"
for page in kvship consul-replicate consul-kvsim; do
    path=$(man -w "$page" 2>/dev/null) || fail "man -w $page finds no page"
    echo "$page: $path"
    man -l "$path" 2>&1 >/dev/null | grep . && fail "man $page prints warnings"
    man "$page" 2>/dev/null | grep -q '^EXIT STATUS' || fail "man $page has no EXIT STATUS section"
done
man kvship 2>/dev/null | grep -q -- '-consul-addr' || fail "man kvship lacks the options from -h"
# the files the man pages point at
for f in /usr/share/doc/kvship/README.md.gz /usr/share/doc/kvship/README.consul-replicate.md.gz \
         /usr/share/doc/kvship/DRIVER.md.gz /usr/share/doc/kvship/examples/dc1.hcl \
         /usr/share/doc/kvship-kvsim/README.md.gz; do
    [ -f "$f" ] || fail "$f, named in the man pages, is not installed"
done

step "the system user"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd kvship) || fail "no kvship user after install"
[ "$uid" -lt 1000 ] || fail "kvship is uid $uid, not a system user"
[ "$(getent group kvship | cut -d: -f3)" = "$gid" ] || fail "kvship's primary group is not the kvship group"
[ "$shell" = /usr/sbin/nologin ] || fail "kvship's shell is $shell"
[ ! -e "$home" ] || fail "kvship's home $home exists"

step "systemd-analyze verify"
unit=/lib/systemd/system/kvship@.service
[ -f "$unit" ] || fail "$unit is not installed"
mkdir "$work/units"
cp "$unit" "$work/units/kvship@pkgtest.service"
if ! systemd-analyze verify --man=yes "$work/units/kvship@pkgtest.service" > "$work/verify.txt" 2>&1 \
        || [ -s "$work/verify.txt" ]; then
    cat "$work/verify.txt"
    fail "systemd-analyze verify reports problems with kvship@.service"
fi
systemd-analyze security --offline=yes --no-pager "$work/units/kvship@pkgtest.service" > "$work/security.txt" 2>&1 \
    || { cat "$work/security.txt"; fail "systemd-analyze security failed"; }
exposure=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$work/security.txt")
echo "systemd-analyze security: exposure $exposure"
[ -n "$exposure" ] || { cat "$work/security.txt"; fail "no exposure level in systemd-analyze security"; }
python3 -c "import sys; sys.exit(0 if float('$exposure') <= float('$max_exposure') else 1)" \
    || { grep '✗' "$work/security.txt" || true; fail "exposure $exposure is above $max_exposure"; }

step "the unit's ExecStart, as the kvship user, against two consul-kvsim"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p1=$(free_port)
p2=$(free_port)
/usr/bin/consul-kvsim -dc dc1 -http-addr "127.0.0.1:$p1" -wan "dc2=127.0.0.1:$p2" -log-level err &
sims+=($!)
/usr/bin/consul-kvsim -dc dc2 -http-addr "127.0.0.1:$p2" -wan "dc1=127.0.0.1:$p1" -log-level err &
sims+=($!)
http() {  # http METHOD URL [BODY]: prints the body, fails on a non-2xx answer
    python3 - "$@" <<'PY'
import sys, time, urllib.request
method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
for attempt in range(50):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method=method), timeout=5) as r:
            sys.stdout.write(r.read().decode())
            sys.exit(0)
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {url}: HTTP {e.code}")
    except OSError:
        time.sleep(0.1)  # the sim is still starting
sys.exit(f"{method} {url}: no answer")
PY
}
http PUT "http://127.0.0.1:$p1/v1/kv/app/config" 'from dc1' >/dev/null || fail "cannot write to the dc1 sim"
http GET "http://127.0.0.1:$p2/v1/status/leader" >/dev/null || fail "the dc2 sim does not answer"

# no configuration, then two: a configuration error (15), which the unit does not restart
set +e
runuser -u kvship -- /usr/libexec/kvship/instance pkgtest > "$work/none.txt" 2>&1
rc=$?
set -e
[ $rc -eq 15 ] && grep -q 'no configuration: create /etc/kvship/pkgtest.hcl' "$work/none.txt" \
    || fail "instance without a config: exit $rc, $(cat "$work/none.txt")"
cat > /etc/kvship/pkgtest.hcl <<EOF
consul {
  address = "127.0.0.1:$p2"
}
prefix {
  source = "app/@dc1"
}
EOF
echo '{}' > /etc/kvship/pkgtest.json
set +e
runuser -u kvship -- /usr/libexec/kvship/instance pkgtest > "$work/both.txt" 2>&1
rc=$?
set -e
[ $rc -eq 15 ] && grep -q 'both /etc/kvship/pkgtest.hcl and /etc/kvship/pkgtest.json exist' "$work/both.txt" \
    || fail "instance with .hcl and .json: exit $rc, $(cat "$work/both.txt")"
rm /etc/kvship/pkgtest.json
# a config readable by the service user only through its group, as the README advises for tokens
chown root:kvship /etc/kvship/pkgtest.hcl
chmod 0640 /etc/kvship/pkgtest.hcl
# under strace, to hold the system calls it makes against the unit's SystemCallFilter= (systemd is not
# PID 1 here, so the unit itself cannot be started)
mkdir "$work/trace"
chown kvship:kvship "$work/trace"
chmod 0711 "$work"
runuser -u kvship -- strace -f -qq -o "$work/trace/once.txt" /usr/libexec/kvship/instance pkgtest -once \
    > "$work/once.txt" 2>&1 || { cat "$work/once.txt"; fail "kvship@pkgtest's ExecStart with -once exited $?"; }
got=$(http GET "http://127.0.0.1:$p2/v1/kv/app/config?raw") || fail "app/config did not reach dc2"
[ "$got" = 'from dc1' ] || fail "dc2 has app/config = '$got'"
sed -E 's/^[0-9]+ +//; s/^<\.\.\. ([a-z0-9_]+) resumed>.*/\1/; s/\(.*//' "$work/trace/once.txt" \
    | grep -E '^[a-z0-9_]+$' | sort -u > "$work/used.txt"
[ "$(wc -l < "$work/used.txt")" -gt 20 ] || fail "strace saw almost no system calls: $(cat "$work/used.txt")"
syscalls() {  # the system calls of filter groups and names, groups expanded
    local n
    for n in "$@"; do
        case $n in
            @*) systemd-analyze syscall-filter "$n" | awk '/^    [a-z0-9_@]/ {print $1}' \
                    | while read -r m; do syscalls "$m"; done ;;
            *) echo "$n" ;;
        esac
    done
}
# shellcheck disable=SC2046
syscalls $(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$unit") | sort -u > "$work/allowed.txt"
# shellcheck disable=SC2046
syscalls $(sed -n 's/^SystemCallFilter=~\(.*\)/\1/p' "$unit") | sort -u > "$work/denied.txt"
[ -s "$work/allowed.txt" ] && [ -s "$work/denied.txt" ] || fail "no SystemCallFilter= allow and deny lists in $unit"
bad=$( (comm -23 "$work/used.txt" "$work/allowed.txt"; comm -12 "$work/used.txt" "$work/denied.txt") | sort -u)
[ -z "$bad" ] || fail "kvship makes system calls kvship@.service's SystemCallFilter= refuses: $bad"
echo "system calls: $(wc -l < "$work/used.txt"), all allowed by the unit's SystemCallFilter="
# the journal note of a replication failure
note=$(EXIT_CODE=exited EXIT_STATUS=14 SERVICE_RESULT=exit-code /usr/libexec/kvship/exit-note pkgtest)
echo "$note" | grep -q '^kvship@pkgtest: exit 14: .*restarts it in 30 s' || fail "exit-note for 14: '$note'"
[ -z "$(EXIT_CODE=exited EXIT_STATUS=12 /usr/libexec/kvship/exit-note pkgtest)" ] \
    || fail "exit-note says something about a clean stop (12)"
rm /etc/kvship/pkgtest.hcl

step "dpkg -r"
dpkg -r "${packages[@]}"
for f in /usr/bin/kvship /usr/bin/consul-kvsim /usr/bin/consul-replicate "$unit" /usr/libexec/kvship; do
    [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is still there after dpkg -r"
done
if update-alternatives --query consul-replicate >/dev/null 2>&1; then
    fail "the consul-replicate alternative is still registered after dpkg -r"
fi
[ -f /etc/kvship/vault.hcl.example ] || fail "dpkg -r removed the conffile /etc/kvship/vault.hcl.example (purge's job)"
getent passwd kvship >/dev/null || fail "dpkg -r removed the kvship user (purge's job)"

# kvship has conffiles, so it stays in the config-files state; kvship-kvsim has none and is gone
[ "$(dpkg-query -W -f='${Status}' kvship)" = "deinstall ok config-files" ] \
    || fail "kvship is '$(dpkg-query -W -f='${Status}' kvship)' after dpkg -r, not config-files"

step "dpkg -P"
dpkg -P kvship
[ ! -e /etc/kvship ] || fail "/etc/kvship is still there after purge: $(ls -la /etc/kvship)"
! getent passwd kvship >/dev/null || fail "the kvship user is still there after purge"
! getent group kvship >/dev/null || fail "the kvship group is still there after purge"
for p in "${packages[@]}"; do
    ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed' || fail "$p is still known to dpkg"
done
left=()
while IFS= read -r f; do
    if [ -e "$f" ] && [ ! -d "$f" ]; then left+=("$f"); fi
done < "$work/files.txt"
[ ${#left[@]} -eq 0 ] || fail "files left after purge: ${left[*]}"
ls /etc/alternatives/consul-replicate* >/dev/null 2>&1 && fail "alternative links left in /etc/alternatives"

echo "== package test passed in $(( $(date +%s) - start )) s =="
