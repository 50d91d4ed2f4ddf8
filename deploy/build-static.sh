#!/usr/bin/env bash
# Builds the `confcom` binary statically linked against glibc (no musl target needed) and checks
# that the result really is static: no program interpreter and no shared-library dependencies.
#
#   deploy/build-static.sh   # -> target/x86_64-unknown-linux-gnu/release/confcom
#                            #    (under $CARGO_TARGET_DIR when that is set)
#
# The container image (deploy/Dockerfile) runs this script in its build stage.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-gnu
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="${TARGET_DIR}/${TARGET}/release/confcom"

locked=()
if [[ -f Cargo.lock ]]; then
    locked=(--locked)
fi

# --target keeps the static RUSTFLAGS away from build scripts and proc macros, which must stay
# dynamically linked to run on the build host.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release "${locked[@]}" -p confcom --target "${TARGET}"

deploy/check-static.sh "${BIN}"
