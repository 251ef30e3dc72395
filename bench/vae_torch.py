#!/usr/bin/python3
"""vae_torch.py — the hand-written PyTorch peer of examples/vae.vlm.

Same model and training as `vae train`: encoder 784-400 relu, mean and
logvar heads 400-20, decoder 20-400 relu -> 784 Bernoulli logits;
reparameterized sample z = mean + exp(logvar/2) * eps; loss = -ELBO summed
over pixels and averaged over the batch; Adam; the training set shuffled
every epoch, the last partial batch kept. Intensities are byte/255 in
[0,1], read from the IDX .gz files with gzip + numpy (as vlm reads them).
The KL term is the closed form (what one writes by hand in PyTorch); the
test ELBO is one reparameterized sample per image, like vlm's.

    /usr/bin/python3 bench/vae_torch.py [--threads T] [--epochs E]
        [--batch B] [--lr LR] [--n N] [--test-n N] [--seed S] [--dir DIR]
        [--init torch|glorot] [--bf16]

--bf16: the forward and backward passes under
torch.autocast("cpu", dtype=torch.bfloat16) (the linear layers in bf16,
fp32 master weights and Adam, the loss in fp32), the usual mixed-precision
recipe on CPU; the test pass stays fp32.

Prints one line per epoch:
    epoch E seconds S train_elbo X test_elbo Y
`seconds` is the training pass only (not data loading, not the test pass).
Judges nothing itself."""
import argparse, gzip, os, sys, time

import numpy as np


def load_idx(path, n=0):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    x = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    x = x.reshape(dims[0], -1)
    if n:
        x = x[:n]
    return x.astype(np.float32) / 255.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n", type=int, default=0, help="first N training images (0: all)")
    ap.add_argument("--test-n", type=int, default=0, help="first N test images (0: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=400)
    ap.add_argument("--latent", type=int, default=20)
    ap.add_argument("--init", choices=["torch", "glorot"], default="torch",
                    help="torch: nn.Linear's default, uniform +-1/sqrt(fan_in) "
                         "(vlm's too); glorot: uniform +-sqrt(6/(fan_in+fan_out)) "
                         "weights, zero biases")
    ap.add_argument("--bf16", action="store_true",
                    help="train under torch.autocast('cpu', dtype=torch.bfloat16)")
    args = ap.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr = torch.from_numpy(load_idx(os.path.join(args.dir, "train-images-idx3-ubyte.gz"), args.n))
    xte = torch.from_numpy(load_idx(os.path.join(args.dir, "t10k-images-idx3-ubyte.gz"), args.test_n))
    D, H, Z = xtr.shape[1], args.hidden, args.latent

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(D, H)
            self.mean = nn.Linear(H, Z)
            self.logvar = nn.Linear(H, Z)
            self.dec1 = nn.Linear(Z, H)
            self.dec2 = nn.Linear(H, D)

        def neg_elbo(self, x):
            """-ELBO per item: BCE summed over pixels + KL(q || N(0, I))."""
            h = F.relu(self.enc(x))
            mu, logvar = self.mean(h), self.logvar(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = self.dec2(F.relu(self.dec1(z)))
            # the loss in fp32 (under autocast the layers' outputs are bf16)
            logits, mu, logvar = logits.float(), mu.float(), logvar.float()
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
            kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(1)
            return rec + kl

    model = VAE()
    if args.init == "glorot":
        for mod in model.modules():
            if isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n = xtr.shape[0]
    print("torch %s threads %d n %d test_n %d batch %d precision %s"
          % (torch.__version__, torch.get_num_threads(), n, xte.shape[0], args.batch,
             "bf16-autocast" if args.bf16 else "fp32"))
    sys.stdout.flush()
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, args.batch):
            x = xtr[perm[i:i + args.batch]]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                loss = model.neg_elbo(x).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * x.shape[0]
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            test = sum(model.neg_elbo(xte[i:i + 1000]).sum().item()
                       for i in range(0, xte.shape[0], 1000))
        print("epoch %d seconds %.4f train_elbo %.4f test_elbo %.4f"
              % (epoch, secs, -total / n, -test / xte.shape[0]))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
