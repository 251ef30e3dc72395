#!/usr/bin/env python3
"""psis_reference.py — reference values for tests/unit/test_psis.c, from a
direct pure-Python transcription of R loo's gpdfit (Zhang & Stephens 2009
with min_grid_pts = 30 and the weakly informative prior on k) and of
psis's tail (n_pareto with r_eff = 1, excess over the cutoff). Written
apart from runtime/psis.c; run once, its output pasted into the test:

    python3 tests/unit/psis_reference.py
"""
import math


def gpdfit(x):
    x = sorted(x)
    n = len(x)
    prior = 3
    m = 30 + math.floor(math.sqrt(n))
    xstar = x[math.floor(n / 4 + 0.5) - 1]          # R is 1-based
    theta = [1 / x[n - 1] + (1 - math.sqrt(m / (j - 0.5))) / prior / xstar
             for j in range(1, m + 1)]
    def lx(t):
        k = sum(math.log1p(-t * xi) for xi in x) / n
        return math.log(-t / k) - k - 1
    l = [n * lx(t) for t in theta]
    lmax = max(l)
    lse = lmax + math.log(sum(math.exp(v - lmax) for v in l))
    w = [math.exp(v - lse) for v in l]
    th = sum(t * wi for t, wi in zip(theta, w))
    k = sum(math.log1p(-th * xi) for xi in x) / n
    sigma = -k / th
    k = (k * n + 10 * 0.5) / (n + 10)
    return k, sigma


def khat(lw):
    s = len(lw)
    m = math.ceil(min(0.2 * s, 3 * math.sqrt(s)))
    lw = sorted(v - max(lw) for v in lw)
    tail = lw[s - m:]
    cutoff = lw[s - m - 1]
    x = [math.exp(t) - math.exp(cutoff) for t in tail]
    return gpdfit(x)[0]


# the fixed vectors of test_psis.c
gpd_x = [0.11, 0.52, 0.03, 1.7, 0.26, 0.94, 3.8, 0.07, 0.61, 2.2, 0.38, 12.5]
lw = [2.0 * math.sin(0.7 * i) + 0.013 * i ** 1.3 for i in range(100)]

k, sigma = gpdfit(gpd_x)
print("gpdfit: k = %.15g  sigma = %.15g" % (k, sigma))
print("khat(lw, S = 100) = %.15g" % khat(lw))
print("khat(sin(1.3 i), S = 21) = %.15g" % khat([math.sin(1.3 * i) for i in range(21)]))
