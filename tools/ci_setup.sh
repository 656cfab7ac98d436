#!/usr/bin/env bash
# Prepares a Debian 12 machine (Python 3.11) for the test suite; idempotent.
# Installs, only when missing, the Debian packages whose binaries the tests
# start as private servers (mariadb-server, clickhouse-server, clickhouse-client,
# prometheus with promtool for the observability tests), Debian's chromium
# for the web-console test, then the Python test extra: pip install -e '.[test]'.
# It must not leave a system database server running: services are kept from
# starting during the install (policy-rc.d), and a newly installed service is
# stopped and disabled should it start anyway. Runs as root (no sudo needed);
# as another user it uses sudo for apt. PYTHON=/path/to/python overrides python3.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SERVER_PACKAGES=(mariadb-server clickhouse-server clickhouse-client prometheus)
# Debian's chromium: the web console test drives it headless through Playwright.
BROWSER_PACKAGES=(chromium fonts-liberation)  # fonts: readable text in screenshots
# service name of each server package, to stop/disable after a fresh install
declare -A SERVICE_OF=([mariadb-server]=mariadb [clickhouse-server]=clickhouse-server
                       [prometheus]=prometheus)
POLICY_RC=/usr/sbin/policy-rc.d

log() { echo "ci_setup: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root (or sudo) to run: $*"
        return 1
    fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for package in "${SERVER_PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
for package in "${BROWSER_PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
# .ci/run and the README call `python`; fresh Debian only has python3.
if ! command -v python >/dev/null 2>&1 && ! installed python-is-python3; then
    missing+=(python-is-python3)
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1 && ! installed python3-pip; then
    missing+=(python3-pip)
fi

policy_created=0
remove_policy() {
    if [ "$policy_created" -eq 1 ]; then
        as_root rm -f "$POLICY_RC"
        policy_created=0
    fi
}
trap remove_policy EXIT

stop_service() {
    # A service that started despite the policy: stop it and keep it off at
    # boot, so no system server holds 3306/9000/8123 next to the test servers.
    local service=$1
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        as_root systemctl disable --now "$service" >/dev/null 2>&1 || true
    else
        as_root service "$service" stop >/dev/null 2>&1 || true
        as_root update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
}

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    if [ ! -e "$POLICY_RC" ]; then
        # invoke-rc.d and deb-systemd-invoke ask this; 101 = "do not start".
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY_RC" >/dev/null
        as_root chmod 755 "$POLICY_RC"
        policy_created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"; then
        # A postinst that tries to start its service can fail without the
        # binaries being at fault; finish configuring and check the binaries below.
        log "apt-get install reported an error (often a service start in postinst); continuing"
        as_root env DEBIAN_FRONTEND=noninteractive dpkg --configure -a || true
    fi
    remove_policy
    for package in "${missing[@]}"; do
        if [ -n "${SERVICE_OF[$package]:-}" ]; then
            stop_service "${SERVICE_OF[$package]}"
        fi
    done
else
    log "Debian packages present: ${SERVER_PACKAGES[*]}"
fi

PATH="$PATH:/usr/sbin:/sbin"
for binary in mariadbd mariadb-install-db clickhouse-server prometheus promtool chromium; do
    if ! command -v "$binary" >/dev/null 2>&1; then
        log "$binary still missing after the install; the tests need it"
        exit 1
    fi
done

export PIP_ROOT_USER_ACTION=ignore  # root is the norm on CI machines
pip_options=()
# Debian's own python3 refuses pip installs outside a venv (PEP 668); on a CI
# machine the test tools belong in that interpreter, so say so explicitly.
if "$PYTHON" - <<'PY'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if not in_venv and os.path.exists(marker) else 1)
PY
then
    pip_options+=(--break-system-packages)
fi
log "pip install -e '.[test]' with $("$PYTHON" -c 'import sys; print(sys.executable)')"
"$PYTHON" -m pip install -q "${pip_options[@]}" -e '.[test]'
