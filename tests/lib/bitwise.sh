# Bitwise comparison of chainz results, shared by the shell tests (source it, then
# bw_init BUILD_DIR). "Bitwise" here means the stored BYTES, never printed text:
#  - checkpoints: every dataset and attribute under /model (layers, output, input mean/std),
#    /optimizer (the moments) and /state (RNG, epoch sums, cursor, partial tau histograms),
#    digested by tests/h5bytes (raw bytes read with each dataset's own file type);
#  - metrics.h5: /tau (every histogram) and /history, all but the wall-clock column
#    /history/seconds;
#  - history.jsonl: compared with cmp after dropping only its wall-clock field "seconds".
# Why not h5dump text: it prints ~6 significant digits (a one-ulp change mostly vanishes).
# Why not h5diff: it compares values, so -0.0 equals 0.0 and NaNs need care; bytes do not.
# The root attributes of a checkpoint (time, world_size, config JSON with --out and
# --threads, SLURM fields) legitimately differ between runs and are not compared.
#
# Functions return 0 for the same bytes, 1 for a difference (printing the first differing
# objects), 2 when something could not be read (never "equal" by accident).
#
# CHAINZ_TEST_ULP_FLIP=DATASET (e.g. /model/layer_1/weight): every comparison first adds
# one ulp to element 0 of DATASET in a copy of the SECOND (candidate) checkpoint; a
# correct test must then fail. Used once by hand for docs/RELIABILITY.md section B.

bw_init() { # bw_init BUILD_DIR
    BW_H5BYTES="$1/h5bytes"
    BW_ULP_FLIP="$1/ulp_flip"
    [ -x "$BW_H5BYTES" ] && [ -x "$BW_ULP_FLIP" ] || { echo "FAIL: $BW_H5BYTES or $BW_ULP_FLIP not built" >&2; return 2; }
    if [ -n "${CHAINZ_TEST_ULP_FLIP:-}" ]; then
        echo "# CHAINZ_TEST_ULP_FLIP=$CHAINZ_TEST_ULP_FLIP: one ulp is added to every compared candidate; this run MUST fail"
    fi
}

# the final checkpoint file of a run directory
bw_final_ckpt() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest" 2>/dev/null)"; }

# byte digests of a checkpoint's /model /optimizer /state, one line per object
bw_ckpt_bytes() { "$BW_H5BYTES" "$1" /model /optimizer /state; }
# byte digests of a run's metrics.h5 (histograms and history columns, not the timings)
bw_metrics_bytes() { "$BW_H5BYTES" -x /history/seconds "$1/metrics.h5" /tau /history; }
# history.jsonl without the wall-clock field
bw_history() { [ -f "$1/history.jsonl" ] && sed -E 's/, "seconds": [0-9.e+-]+//' "$1/history.jsonl"; }

# _bw_candidate CKPT TMPDIR: the checkpoint to compare as candidate (a one-ulp copy when
# CHAINZ_TEST_ULP_FLIP is set)
_bw_candidate() {
    if [ -n "${CHAINZ_TEST_ULP_FLIP:-}" ]; then
        cp "$1" "$2/ulp.h5" && "$BW_ULP_FLIP" "$2/ulp.h5" "$CHAINZ_TEST_ULP_FLIP" >&2 || return 2
        echo "$2/ulp.h5"
    else
        echo "$1"
    fi
}

# _bw_cmp LABEL A_FILE B_FILE: 0 same, 1 differ (prints the first differing lines)
_bw_cmp() {
    if cmp -s "$2" "$3"; then return 0; fi
    echo "# bitwise: $1 differs:" >&2
    diff "$2" "$3" | grep '^[<>]' | head -6 | sed 's/^/#   /' >&2
    return 1
}

bw_same_ckpt() { # bw_same_ckpt REF_CKPT CAND_CKPT
    local t rc=0 cand
    t=$(mktemp -d) || return 2
    cand=$(_bw_candidate "$2" "$t") || { rm -rf "$t"; return 2; }
    if bw_ckpt_bytes "$1" >"$t/a" && bw_ckpt_bytes "$cand" >"$t/b" && [ -s "$t/a" ]; then
        _bw_cmp "checkpoint $2 vs $1" "$t/a" "$t/b" || rc=1
    else
        echo "# bitwise: cannot read checkpoint $1 or $2" >&2; rc=2
    fi
    rm -rf "$t"
    return $rc
}

# bw_same_run REF_DIR CAND_DIR [ckpt|metrics|history]...: the final checkpoint, metrics.h5
# and history.jsonl (default: all three) of two run directories hold the same bytes
bw_same_run() {
    local ref=$1 cand=$2 what rc=0 t
    shift 2
    [ $# -gt 0 ] || set -- ckpt metrics history
    t=$(mktemp -d) || return 2
    for what in "$@"; do
        case $what in
        ckpt)
            bw_same_ckpt "$(bw_final_ckpt "$ref")" "$(bw_final_ckpt "$cand")"
            local r=$?
            [ $r -gt $rc ] && rc=$r ;;
        metrics)
            if bw_metrics_bytes "$ref" >"$t/a" && bw_metrics_bytes "$cand" >"$t/b" && [ -s "$t/a" ]; then
                _bw_cmp "metrics.h5 of $cand vs $ref" "$t/a" "$t/b" || [ $rc -gt 1 ] || rc=1
            else
                echo "# bitwise: cannot read $ref/metrics.h5 or $cand/metrics.h5" >&2; rc=2
            fi ;;
        history)
            if bw_history "$ref" >"$t/a" && bw_history "$cand" >"$t/b" && [ -s "$t/a" ]; then
                _bw_cmp "history.jsonl of $cand vs $ref" "$t/a" "$t/b" || [ $rc -gt 1 ] || rc=1
            else
                echo "# bitwise: cannot read $ref/history.jsonl or $cand/history.jsonl" >&2; rc=2
            fi ;;
        *) echo "bw_same_run: unknown part '$what'" >&2; rc=2 ;;
        esac
    done
    rm -rf "$t"
    return $rc
}
