# bayes_pca_compare.awk — q(W) of examples/bayes_pca.vlm against the MAP W of
# examples/pca_map.vlm, from two `params` outputs (rows: name,row,values):
#   awk -F, -f examples/bayes_pca_compare.awk bayes.csv map.csv
# prints: mean sd of q(W), mean |mean of q(W)|, fraction of loadings with
# |mean| > 2 sd, mean |W_map|, and the relative distance of the subspaces
# ||A A' - B B'||_F / ||B B'||_F (A = q's mean, B = W_map; invariant to
# rotations of the K components).
FNR == 1 { f++ }
f == 1 && $1 == "W_loc"    { for (k = 3; k <= NF; k++) A[$2, k - 3] = $k; K = NF - 2; if ($2 + 1 > D) D = $2 + 1 }
f == 1 && $1 == "W_log_sd" { for (k = 3; k <= NF; k++) { s = exp($k); ssum += s; n++; m = A[$2, k - 3]; am += (m < 0 ? -m : m);
                                                          if ((m < 0 ? -m : m) > 2 * s) sig++ } }
f == 2 && $1 == "W"        { for (k = 3; k <= NF; k++) { B[$2, k - 3] = $k; bm += ($k < 0 ? -$k : $k); nb++ } }
END {
    for (i = 0; i < K; i++) for (j = 0; j < K; j++) { aa = bb = ab = 0;
        for (d = 0; d < D; d++) { aa += A[d, i] * A[d, j]; bb += B[d, i] * B[d, j]; ab += A[d, i] * B[d, j] }
        AA += aa * aa; BB += bb * bb; AB += ab * ab }
    dist = AA + BB - 2 * AB; if (dist < 0) dist = 0
    printf "%.5f %.5f %.4f %.5f %.4f\n", ssum / n, am / n, sig / n, bm / nb, sqrt(dist) / sqrt(BB)
}
