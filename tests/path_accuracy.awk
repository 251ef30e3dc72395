# path_accuracy.awk — the accuracy of decoded state paths against the true
# ones, up to relabelling (the best of the K! maps of decoded states to
# true states), over the steps whose data are given:
#   awk -f tests/path_accuracy.awk -v K=3 TRUE.csv DECODED.csv [DATA.csv]
# Each file: a header line, then one row per sequence, one column per step
# (DATA: NaN marks a missing step, which is not counted). Prints the
# accuracy with 4 decimals (0 when no step is counted).
BEGIN { FS = ","; files = 0 }
FNR == 1 { files++; next }
files == 1 { for (i = 1; i <= NF; i++) truth[FNR, i] = $i; next }
files == 2 { for (i = 1; i <= NF; i++) dec[FNR, i] = $i; rows = FNR; cols = NF; next }
files == 3 { for (i = 1; i <= NF; i++) if ($i == "NaN" || $i == "nan" || $i == "") skip[FNR, i] = 1 }
function best_map(k, used, score,    j, s, b) {
    if (k == K) return score
    b = -1
    for (j = 0; j < K; j++) {
        if (used[j]) continue
        used[j] = 1
        s = best_map(k + 1, used, score + c[j, k])
        used[j] = 0
        if (s > b) b = s
    }
    return b
}
END {
    n = 0
    for (r = 2; r <= rows; r++)
        for (i = 1; i <= cols; i++)
            if (!skip[r, i]) { c[dec[r, i], truth[r, i]]++; n++ }
    # c[d, t]: decoded d where the truth is t; map decoded j to true k
    printf "%.4f\n", n ? best_map(0, used, 0) / n : 0
}
