#!/usr/bin/env bash
# The race ccmux's isolation exists for, measured without it: N interactive
# Claude Code instances started at once on one HOME (each on a terminal of
# its own through script(1), whose input stays open (at EOF script ends the
# session), offline, killed after a bound), and how many of
# their N `numStartups` increments to ~/.claude.json survive. BENCHMARKS.md
# has the numbers ("The race"). The "with ccmux" side is a test:
# tests/claude_releases.rs, claudes_started_at_once_in_panes_lose_nothing.
#
# Usage: benches/race-without-ccmux.sh [CLAUDE_BIN] [N] [RUNS]
#   CLAUDE_BIN defaults to "$(.ci/install-claude)"; N to 8; RUNS to 5.
# Every run uses a fresh fake HOME in a temp dir; the real HOME is never read.
set -euo pipefail
cd "$(dirname "$0")/.."
CLAUDE="${1:-$(.ci/install-claude)}"
N="${2:-8}"
RUNS="${3:-5}"
command -v script >/dev/null || { echo "needs script(1) (util-linux)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "needs python3 to read the JSON" >&2; exit 2; }
VERSION="$("$CLAUDE" --version </dev/null 2>/dev/null | cut -d' ' -f1)"

total_lost=0
for run in $(seq 1 "$RUNS"); do
    root="$(mktemp -d "${TMPDIR:-/tmp}/ccmux-race.XXXXXX")"
    home="$root/home"
    mkdir -p "$home/work"
    printf '{"hasCompletedOnboarding": true, "lastOnboardingVersion": "2.1.197", "numStartups": 0, "projects": {"%s": {"hasTrustDialogAccepted": true}}}\n' \
        "$home/work" >"$home/.claude.json"
    pids=()
    for _ in $(seq 1 "$N"); do
        (cd "$home/work" && env -u CLAUDE_CONFIG_DIR -u CLAUDE_SECURESTORAGE_CONFIG_DIR -u CLAUDE_CODE_REMOTE_MEMORY_DIR \
            -u ANTHROPIC_API_KEY -u CCMUX_PANE_ID HOME="$home" TERM=xterm-256color \
            TMPDIR="$root" DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
            script -qfc "timeout -k 3 12 '$CLAUDE'" /dev/null < <(sleep 16) >/dev/null 2>&1) &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    read -r valid startups < <(python3 - "$home/.claude.json" <<'PY'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
    print("valid", data.get("numStartups", 0))
except Exception:
    print("INVALID", 0)
PY
)
    lost=$((N - startups))
    total_lost=$((total_lost + lost))
    echo "run $run: claude $VERSION, $N at once: numStartups $startups of $N, lost $lost, file $valid"
    rm -rf "$root"
done
echo "claude $VERSION: lost $total_lost of $((N * RUNS)) increments over $RUNS runs of $N"
