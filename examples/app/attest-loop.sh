#!/bin/sh
# Long-running attestation loop: every INTERVAL seconds, quote fresh report data through the node's
# quote helper (/var/run/aesmd/aesm.socket) and print the quote's identity. Stops on SIGTERM.
set -eu
interval="${INTERVAL:-60}"
out="${TMPDIR:-/tmp}/quote.bin"
trap 'exit 0' TERM INT
while :; do
    nonce=$(date +%s%N | sha256sum | cut -c1-64)
    if confcom quote --report-data "$nonce" --out "$out"; then
        echo "quote for report data $nonce ($(wc -c <"$out") bytes):"
        confcom inspect "$out"
    else
        echo "quote failed; is the quote helper running on this node?" >&2
    fi
    sleep "$interval" &
    wait $!
done
