#!/usr/bin/env bash
# scripts/_venv.sh — helper sourced by scripts/run and scripts/test (it can
# also be executed directly, e.g. `scripts/_venv.sh test`, to just install).
#
# It picks a Python >= 3.11 (${PYTHON:-python3}), creates the virtualenv .venv
# at the repository root if it is missing, and installs the project in editable
# mode with the extras given as the first argument:
#
#     source scripts/_venv.sh test   # pip install -e ".[test]"
#     source scripts/_venv.sh ""     # pip install -e .
#
# Always pass an argument (even ""): a sourced file with no arguments sees the
# caller's own positional parameters.
#
# The pip install is skipped when nothing changed: a stamp file
# .venv/.installed-<sha256>[-<extras>] records the last successful install. The
# hash covers pyproject.toml and the list of top-level packages present
# (domain/, api/, flows/), because setuptools' editable install maps top-level
# packages statically and must be redone when a new one appears.
#
# Afterwards REPO_ROOT and VENV_DIR are set, and .venv/bin is first on PATH.
#
# When sourced it leaves the caller's shell options alone (the callers use
# `set -euo pipefail` themselves); when executed it sets them.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
fi

_venv_main() {
    local extras="${1-}"
    local py="${PYTHON:-python3}"
    local root venv
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$root/.venv"

    _venv_die() {
        echo "error: $*" >&2
        return 1
    }

    # A Python >= 3.11 must be at hand, at least to create the venv.
    _venv_check_python() {  # $1 = interpreter, $2 = what to call it in messages
        local version
        if ! version="$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"; then
            _venv_die "cannot run $2 ('$1'). Install Python >= 3.11 or point PYTHON at one, e.g. PYTHON=python3.12 $0"
            return 1
        fi
        if ! "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            _venv_die "$2 ('$1') is Python $version, but union-welfare needs Python >= 3.11. Point PYTHON at a newer interpreter${3:-}."
            return 1
        fi
    }

    if [[ ! -x "$venv/bin/python" ]]; then
        _venv_check_python "$py" "the Python interpreter" || return 1
        echo "Creating virtualenv $venv with $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')..." >&2
        if ! "$py" -m venv "$venv" || [[ ! -x "$venv/bin/python" ]]; then
            rm -rf "$venv"
            # Debian/Ubuntu ship venv/ensurepip separately; install it when we can.
            if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
                local pkg
                pkg="python$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
                echo "venv creation failed; trying: apt-get install -y $pkg python3-venv" >&2
                DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || true
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" python3-venv >&2 || true
            fi
        fi
        if [[ ! -x "$venv/bin/python" ]] && { ! "$py" -m venv "$venv" || [[ ! -x "$venv/bin/python" ]]; }; then
            rm -rf "$venv"  # do not leave a half-made venv behind for the next run
            _venv_die "could not create the virtualenv at $venv (on Debian/Ubuntu: apt-get install python3-venv)."
            return 1
        fi
        # Editable installs driven by pyproject.toml need a recent pip.
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2 \
            || echo "warning: could not upgrade pip in $venv; continuing with the bundled one." >&2
    else
        _venv_check_python "$venv/bin/python" "the existing virtualenv's Python" \
            " and recreate it: rm -rf .venv" || return 1
    fi

    # Stamp key: pyproject.toml plus the top-level packages that exist now.
    local key pkgs="" d
    for d in domain api flows; do
        if [[ -f "$root/$d/__init__.py" ]]; then pkgs+=" $d"; fi
    done
    key="$({ cat "$root/pyproject.toml"; printf '\n# packages:%s\n' "$pkgs"; } \
        | "$venv/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')" \
        || { _venv_die "could not hash pyproject.toml"; return 1; }

    local stamp="$venv/.installed-$key" target="."
    if [[ -n "$extras" ]]; then
        stamp+="-${extras//[^A-Za-z0-9_.-]/_}"
        target=".[$extras]"
    fi

    local have_stamp=0
    if [[ -e "$stamp" ]]; then
        have_stamp=1
    elif [[ -z "$extras" ]] && compgen -G "$venv/.installed-$key*" >/dev/null; then
        have_stamp=1  # any install with extras also installed the base project
    fi

    if (( have_stamp )); then
        echo "Project already installed in .venv (pyproject.toml unchanged), skipping pip." >&2
    else
        echo "Installing union-welfare in editable mode: pip install -e \"$target\" ..." >&2
        if ! (cd "$root" && PIP_NO_INPUT=1 "$venv/bin/python" -m pip install -q \
                --disable-pip-version-check -e "$target" >&2); then
            _venv_die "pip install -e \"$target\" failed (see the messages above)."
            return 1
        fi
        # Stamps of other pyproject.toml versions are stale now.
        local old
        for old in "$venv"/.installed-*; do
            if [[ -e "$old" && "$old" != "$venv/.installed-$key"* ]]; then rm -f "$old"; fi
        done
        touch "$stamp" || return 1
    fi

    REPO_ROOT="$root"
    VENV_DIR="$venv"
    VIRTUAL_ENV="$venv"
    PATH="$venv/bin:$PATH"
    export REPO_ROOT VENV_DIR VIRTUAL_ENV PATH
}

_venv_rc=0
_venv_main "${1-}" || _venv_rc=$?
unset -f _venv_main _venv_die _venv_check_python
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    exit "$_venv_rc"
fi
# Sourced: report failure through `source`'s status (stops callers using set -e).
if ((_venv_rc != 0)); then
    unset _venv_rc
    return 1
fi
unset _venv_rc
