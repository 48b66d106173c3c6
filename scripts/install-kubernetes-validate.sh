#!/usr/bin/env bash
# Installs the tests' Python tools (PyPI) into a project-local virtualenv, target/venv:
# - kubernetes-validate, for tests/deploy.rs: it validates deploy/kubernetes/*.yaml
#   offline against the Kubernetes OpenAPI schemas it ships;
# - logfmt, for tests/logging.rs: an independent parser of the exporter's logfmt lines.
# Idempotent: does nothing when the pinned versions are already there. Needs python3
# with the venv module (Debian: python3-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

# name==version, each pinned.
pins=(kubernetes-validate==1.37.0 logfmt==0.4)
venv=target/venv
log() { printf 'install-kubernetes-validate: %s\n' "$*"; }
# The system's Python when there is one: the venv outlives shells whose PATH differs.
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3) || { log "python3 not found: install python3 and python3-venv" >&2; exit 1; }

installed='import importlib.metadata as m, sys
sys.exit(any(m.version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))'
if [ -x "$venv/bin/kubernetes-validate" ] && "$venv/bin/python" -c "$installed" "${pins[@]}" 2>/dev/null; then
    log "${pins[*]} already in $venv"
    exit 0
fi

if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv ||
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv; }
    else
        log "python3 lacks the venv module: install python3-venv" >&2
        exit 1
    fi
fi

# Start afresh: a venv whose interpreter went away cannot be repaired in place.
rm -rf "$venv"
mkdir -p target
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
log "installed ${pins[*]} in $venv"
