#!/usr/bin/env bash
# Fails unless every ELF file given is statically linked: no PT_INTERP program header (no dynamic
# loader) and no DT_NEEDED entries (no shared libraries). Static-PIE binaries keep a dynamic
# section for their own relocations, so its mere presence is not a failure.
set -euo pipefail
if [[ $# -eq 0 ]]; then
    echo "usage: $0 ELF..." >&2
    exit 2
fi
status=0
for bin in "$@"; do
    if ! headers=$(readelf --program-headers --wide "$bin" 2>&1); then
        echo "$bin: not an ELF file: $headers" >&2
        status=1
        continue
    fi
    if grep -q 'INTERP' <<<"$headers"; then
        echo "$bin: dynamically linked (has a program interpreter)" >&2
        status=1
        continue
    fi
    if readelf --dynamic --wide "$bin" | grep -q '(NEEDED)'; then
        echo "$bin: needs shared libraries:" >&2
        readelf --dynamic --wide "$bin" | grep '(NEEDED)' >&2
        status=1
        continue
    fi
    echo "$bin: statically linked"
done
exit "$status"
