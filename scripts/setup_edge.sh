#!/usr/bin/env bash
# Install what the emulated Raspberry Pi 3 (Cortex-A53, aarch64) board needs,
# once, cached under <repo>/.edge/ (or $TVMQ_EDGE_DIR):
#   - Debian packages qemu-user-static, gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu
#     (apt-get, as root; without root it prints the one command that would do it)
#   - an arm64 Python 3.11 sysroot, unpacked from Debian's arm64 packages
#   - the aarch64 wheels of TVM and its runtime dependencies
#   - bin/python-aarch64: a /bin/sh wrapper that runs that Python under
#     qemu-aarch64-static -cpu cortex-a53 (sys.executable is the wrapper,
#     so TVM's RPC server can start child processes)
# Idempotent: every step has its own stamp; a second run checks the final
# stamp and returns in well under a second.  `--force` redoes everything.
set -euo pipefail

RECIPE=5   # bump when the recipe changes: the stamp then no longer matches
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EDGE="${TVMQ_EDGE_DIR:-$REPO/.edge}"
STAMP="$EDGE/setup.stamp"
WRAPPER="$EDGE/bin/python-aarch64"
APT_PKGS="qemu-user-static gcc-aarch64-linux-gnu g++-aarch64-linux-gnu llvm"  # llvm: llvm-mca, the edge performance model
# arm64 packages that make a working python3.11 (dpkg -x, no maintainer scripts)
SYSROOT_PKGS="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libstdc++6 libgcc-s1
  zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libsqlite3-0 libncursesw6 libtinfo6 libreadline8
  libuuid1 libcrypt1 libnsl2 libtirpc3 libdb5.3 libgdbm6 libgomp1"
TVM_VERSION="${TVMQ_EDGE_TVM:-0.27.0.post1}"
FFI_VERSION="${TVMQ_EDGE_TVM_FFI:-0.1.14.post1}"
WHEELS="apache-tvm==$TVM_VERSION apache-tvm-ffi==$FFI_VERSION numpy ml_dtypes typing_extensions psutil cloudpickle tornado"
WANT="recipe=$RECIPE tvm=$TVM_VERSION ffi=$FFI_VERSION"

log() { echo "setup_edge: $*" >&2; }
die() { echo "setup_edge: error: $*" >&2; exit 1; }

have_tools() { command -v qemu-aarch64-static >/dev/null && command -v aarch64-linux-gnu-g++ >/dev/null && command -v llvm-mca >/dev/null; }

FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

# Fast path: everything is in place.
if [[ $FORCE == 0 && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$WRAPPER" ]] && have_tools; then
  log "already set up in $EDGE ($WANT)"
  exit 0
fi

mkdir -p "$EDGE"
exec 9>"$EDGE/setup.lock"
if ! flock -w 1800 9; then die "another setup_edge.sh holds $EDGE/setup.lock"; fi
if [[ $FORCE == 1 ]]; then rm -f "$EDGE"/*.stamp; fi
T0=$(date +%s)

# 1. Debian packages (root) -------------------------------------------------
arm64_known() { dpkg --print-foreign-architectures | grep -qx arm64 && apt-cache show python3.11-minimal:arm64 >/dev/null 2>&1; }
if ! have_tools || ! arm64_known; then
  if [[ $(id -u) != 0 ]]; then
    echo "setup_edge: needs system packages; run as root:" >&2
    echo "  sudo sh -c 'dpkg --add-architecture arm64 && apt-get update && apt-get install -y --no-install-recommends $APT_PKGS'" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  dpkg --print-foreign-architectures | grep -qx arm64 || { log "dpkg --add-architecture arm64"; dpkg --add-architecture arm64; }
  log "apt-get update"
  apt-get update -qq
  log "apt-get install $APT_PKGS"
  apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null
  have_tools || die "qemu-aarch64-static, aarch64-linux-gnu-g++ or llvm-mca still missing after apt-get install"
fi

# 2. arm64 Python sysroot -----------------------------------------------------
if [[ ! -f "$EDGE/sysroot.stamp" ]]; then
  log "downloading arm64 packages: $(echo $SYSROOT_PKGS | wc -w) debs"
  rm -rf "$EDGE/debs" "$EDGE/sysroot" "$EDGE/sysroot.tmp"
  mkdir -p "$EDGE/debs" "$EDGE/sysroot.tmp"
  pkgs=()
  for p in $SYSROOT_PKGS; do pkgs+=("$p:arm64"); done
  (cd "$EDGE/debs" && apt-get download -qq -o APT::Sandbox::User=root "${pkgs[@]}") \
    || die "apt-get download of arm64 packages failed (is 'arm64' in dpkg --print-foreign-architectures, and apt-get update done?)"
  for d in "$EDGE"/debs/*.deb; do dpkg -x "$d" "$EDGE/sysroot.tmp"; done
  [[ -x "$EDGE/sysroot.tmp/usr/bin/python3.11" ]] || die "no usr/bin/python3.11 in the unpacked sysroot"
  mv "$EDGE/sysroot.tmp" "$EDGE/sysroot"
  rm -rf "$EDGE/debs"
  touch "$EDGE/sysroot.stamp"
fi

# 3. aarch64 wheels ------------------------------------------------------------
if [[ ! -f "$EDGE/wheels.stamp" ]]; then
  PY=""
  for c in "$REPO/.venv/bin/python" python3; do
    if command -v "$c" >/dev/null && "$c" -m pip --version >/dev/null 2>&1; then PY="$c"; break; fi
  done
  [[ -n "$PY" ]] || die "no Python with pip found (tried $REPO/.venv/bin/python, python3); apt-get install python3-pip"
  log "pip install --target wheels (aarch64, cp311): $WHEELS"
  rm -rf "$EDGE/wheels" "$EDGE/wheels.tmp"
  PIP_BREAK_SYSTEM_PACKAGES=1 "$PY" -m pip install -q --disable-pip-version-check --no-compile \
    --target "$EDGE/wheels.tmp" --only-binary=:all: --python-version 3.11 --implementation cp \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_24_aarch64 \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 --no-deps $WHEELS \
    || die "pip could not fetch the aarch64 wheels"
  mv "$EDGE/wheels.tmp" "$EDGE/wheels"
  touch "$EDGE/wheels.stamp"
fi

# 4. the wrapper ----------------------------------------------------------------
mkdir -p "$EDGE/bin"
cat > "$WRAPPER.tmp" <<'EOF'
#!/bin/sh
# aarch64 Python 3.11 under qemu-user (Cortex-A53), written by scripts/setup_edge.sh.
# -0 makes the emulated Python see this wrapper as sys.executable, so child
# processes (TVM's RPC server forks workers that way) are emulated too.
HERE=$(cd "$(dirname "$0")" && pwd)
EDGE=$(dirname "$HERE")
export QEMU_LD_PREFIX="$EDGE/sysroot"
export PYTHONHOME="$EDGE/sysroot/usr"
export PYTHONPATH="$EDGE/wheels"
export PYTHONNOUSERSITE=1
unset PYTHONSTARTUP VIRTUAL_ENV
exec qemu-aarch64-static -cpu cortex-a53 -0 "$HERE/$(basename "$0")" "$EDGE/sysroot/usr/bin/python3.11" "$@"
EOF
chmod +x "$WRAPPER.tmp"
mv "$WRAPPER.tmp" "$WRAPPER"

# 4b. byte-compile (the environment may set PYTHONDONTWRITEBYTECODE; compiling
# ~1000 modules under qemu on every import doubles TVM's import time)
if [[ ! -f "$EDGE/pyc.stamp" ]]; then
  HOSTPY=""
  for c in "$REPO/.venv/bin/python" python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      HOSTPY="$c"; break
    fi
  done
  if [[ -n "$HOSTPY" ]]; then  # .pyc files do not depend on the CPU: the host's 3.11 writes them
    log "byte-compiling the sysroot's stdlib and the wheels (host $HOSTPY)"
  else
    log "byte-compiling the sysroot's stdlib and the wheels (emulated Python; a few minutes)"
    HOSTPY="$WRAPPER"
  fi
  "$HOSTPY" -m compileall -q -j0 "$EDGE/wheels" "$EDGE/sysroot/usr/lib/python3.11" >/dev/null 2>&1 || true
  touch "$EDGE/pyc.stamp"
fi


# 5. smoke test: the emulated Python imports TVM ------------------------------
log "checking the emulated Python (imports tvm under qemu, ~10-20 s)"
out=$("$WRAPPER" -c 'import platform, sys, numpy, tvm; from tvm import rpc; print(platform.machine(), sys.version.split()[0], tvm.__version__, numpy.__version__)') \
  || die "the emulated Python failed to import tvm; see the messages above"
log "emulated: $out"
case "$out" in aarch64*) ;; *) die "the emulated Python reports machine ${out%% *}, not aarch64" ;; esac

echo "$WANT" > "$STAMP"
log "done in $(( $(date +%s) - T0 )) s; wrapper: $WRAPPER"
