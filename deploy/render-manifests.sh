#!/usr/bin/env bash
# Regenerates the checked-in default manifests in deploy/manifests/ from the typed objects of the
# addon crate (the same code as `confcom addon render`). The addon test suite fails while they are
# stale.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFCOM_UPDATE_MANIFESTS=1 cargo test -p addon --test render checked_in_default_manifests_are_up_to_date
git status --short deploy/manifests
