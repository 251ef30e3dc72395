#!/usr/bin/python3
"""gmm_sklearn.py — scikit-learn's GaussianMixture on Fashion-MNIST, the peer
of `mog train` with EM: K=10 diagonal Gaussians, reg_covar=1e-3, k-means
init (sklearn's default), random_state=--seed (default 0). Prints the fit's wall time, its
iterations and the mean test log-likelihood per image (nats).

    /usr/bin/python3 bench/gmm_sklearn.py [--dir DIR] [--n N] [--k K] [--max-iter N] [--seed S]
        [--init-params CSV]

Intensities are byte/255 in [0,1], as vlm's IDX reader gives them."""
import argparse, gzip, os, sys, time

import numpy as np


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    x = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    return x.reshape(dims[0], -1).astype(np.float64) / 255.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--n", type=int, default=0, help="first N training images (0: all)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="random_state (k-means init)")
    ap.add_argument("--init-params", metavar="CSV",
                    help="start EM from these parameters (the CSV of vlm's `mog params`: "
                         "logits, mu, log_sigma) instead of sklearn's own k-means")
    args = ap.parse_args()
    from sklearn.mixture import GaussianMixture
    xtr = load_idx(os.path.join(args.dir, "train-images-idx3-ubyte.gz"))
    xte = load_idx(os.path.join(args.dir, "t10k-images-idx3-ubyte.gz"))
    if args.n:
        xtr = xtr[:args.n]
    init = {}
    if args.init_params:
        rows = {}
        with open(args.init_params) as f:
            for line in f:
                p = line.strip().split(",")
                rows.setdefault(p[0], []).append([float(v) for v in p[2:]])
        logits = np.array(rows["logits"][0])
        w = np.exp(logits - logits.max())
        init = dict(weights_init=w / w.sum(), means_init=np.array(rows["mu"]),
                    precisions_init=np.exp(-2 * np.array(rows["log_sigma"])))
    g = GaussianMixture(n_components=args.k, covariance_type="diag", reg_covar=1e-3,
                        random_state=args.seed, max_iter=args.max_iter, **init)
    t0 = time.perf_counter()
    g.fit(xtr)
    t = time.perf_counter() - t0
    print("sklearn fit_seconds %.3f iterations %d converged %s train_ll %.4f test_ll %.4f"
          % (t, g.n_iter_, g.converged_, g.score(xtr), g.score(xte)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
