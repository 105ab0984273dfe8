"""Would a mixture-density head help?  Heads of K = 1, 2, 3 full-covariance Gaussians fitted
on a trained model's frozen features (its deterministic head input), each component
starting as the model's own head, compared on held-out galaxies.

    .venv/bin/python scripts/mixture_heads.py FIT_CATALOG TEST_CATALOG [TEST_CATALOG ...]
        [--model BUNDLE] [--n-fit 6000] [--epochs 60]

FIT_CATALOG must be galaxies the model did not train on (e.g. its calibration set); a
sixth of them is the validation split that picks each head's best epoch.  Prints, per K,
the validation NLL (censored at bt's ends, as training scores it) and per test catalog
the errors (bt MAE, r_e and flux median absolute fractional errors of the posterior
medians) and the 68 % coverage of 1,000 draws per galaxy.  The features are extracted
with one dropout-free pass through `gampen predict`'s own path.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from astropy.table import Table

import gampen.infer.predict as predict_module
from gampen.data.catalog import write_table
from gampen.data.labels import LabelTransform
from gampen.infer.predict import PredictOptions, predict
from gampen.infer.sampling import galaxy_keys
from gampen.model.bundle import load_bundle
from gampen.model.head import unpack_gaussian
from gampen.model.loss import Censoring, gaussian_nll
from gampen.models import default_model_path

K_PARAMS = 3
PER_COMPONENT = K_PARAMS * (K_PARAMS + 3) // 2


def features(catalog: Path, model: Path, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Head inputs (m, d) and physical labels (m, 3) of the catalog's usable galaxies."""
    table = Table.read(catalog)[:n]
    got: dict[int, np.ndarray] = {}
    original = predict_module.posterior_samples

    def capture(net, images, keys, **kwargs):
        kwargs["embeddings"] = embedded = []
        out = original(net, images, keys, **kwargs)
        got.update(zip((int(k) for k in keys), embedded[0].cpu().numpy(), strict=True))
        return out

    predict_module.posterior_samples = capture
    subset = catalog.parent / f".heads-{os.getpid()}.csv"  # beside it: relative file names
    try:
        write_table(table, subset)
        with tempfile.TemporaryDirectory() as tmp:
            options = PredictOptions(n_passes=1, n_samples=2, progress=False, seed=0)
            predict(subset, out=Path(tmp) / "p.parquet", model=model, options=options)
    finally:
        predict_module.posterior_samples = original
        subset.unlink(missing_ok=True)
    keys = galaxy_keys(0, np.arange(len(table)))
    usable = np.array([int(k) in got for k in keys])
    physical = np.stack([np.asarray(table[p], float) for p in ("bt", "r_e", "flux")], 1)
    return np.stack([got[int(k)] for k in keys[usable]]), physical[usable]


def components(raw: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
    """Means (B, K, 3), Cholesky factors (B, K, 3, 3) and log weights (B, K)."""
    logw = F.log_softmax(raw[:, :k], 1) if k > 1 else raw.new_zeros(len(raw), 1)
    parts = raw[:, k if k > 1 else 0 :].reshape(len(raw), k, PER_COMPONENT)
    unpacked = [unpack_gaussian(parts[:, c], K_PARAMS) for c in range(k)]
    return torch.stack([u[0] for u in unpacked], 1), torch.stack([u[1] for u in unpacked], 1), logw


def nll(raw: torch.Tensor, z: torch.Tensor, k: int, censoring: Censoring) -> torch.Tensor:
    """Mean NLL of the K-component mixture, each component censored at bt's ends."""
    mean, tril, logw = components(raw, k)
    per = [
        gaussian_nll(mean[:, c], tril[:, c], z, reduction="none", censoring=censoring)
        for c in range(k)
    ]
    per = torch.stack(per, 1)
    return -torch.logsumexp(logw - per, 1).mean()


def head(k: int, shipped: torch.nn.Linear, mu: torch.Tensor, sd: torch.Tensor) -> torch.nn.Linear:
    """A linear head on standardised features whose every component is the shipped head
    (the second and third nudged apart), with equal weights."""
    linear = torch.nn.Linear(shipped.in_features, k * PER_COMPONENT + (k if k > 1 else 0))
    weight, bias = shipped.weight.detach().double(), shipped.bias.detach().double()
    offset = k if k > 1 else 0
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        for c in range(k):
            first = offset + PER_COMPONENT * c
            linear.weight[first : first + PER_COMPONENT] = weight * sd
            linear.bias[first : first + PER_COMPONENT] = bias + weight @ mu
            if c:
                linear.bias[first : first + K_PARAMS] += 0.05 * torch.randn(K_PARAMS)
    return linear


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fit", type=Path)
    parser.add_argument("tests", type=Path, nargs="+")
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--n-fit", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    bundle = load_bundle(args.model)
    labels = LabelTransform.from_dict(bundle.preprocessing["labels"])
    censoring = Censoring(0, *labels.limits(0))
    x, physical = features(args.fit, args.model, args.n_fit)
    tests = {path: features(path, args.model, None) for path in args.tests}
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)  # the heads fit in float64 (after predict)
    x, z = torch.tensor(x, dtype=torch.float64), torch.tensor(labels.forward(physical))
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    order = torch.randperm(len(x))
    val, fit = order[: len(x) // 6], order[len(x) // 6 :]
    print("| K | validation NLL | set | bt MAE | r_e MdAFE | flux MdAFE | 68 % bt / r_e / flux |")
    print("|---|---|---|---|---|---|---|")
    for k in (1, 2, 3):
        linear = head(k, bundle.net.head.linear, mu, sd)
        optimiser = torch.optim.Adam(linear.parameters(), 3e-4)
        best, state = np.inf, None
        for _ in range(args.epochs):
            for batch in fit[torch.randperm(len(fit))].split(256):
                loss = nll(linear((x[batch] - mu) / sd), z[batch], k, censoring)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            with torch.no_grad():
                score = nll(linear((x[val] - mu) / sd), z[val], k, censoring).item()
            if score < best:
                best, state = score, {n: t.clone() for n, t in linear.state_dict().items()}
        linear.load_state_dict(state)
        for path, (tx, tphys) in tests.items():
            with torch.no_grad():
                draws = sample(linear((torch.tensor(tx, dtype=torch.float64) - mu) / sd), k)
            values = labels.inverse(draws)
            median = np.median(values, 1)
            lo, hi = np.quantile(values, [0.15865, 0.84135], axis=1)
            cover = ((tphys >= lo) & (tphys <= hi)).mean(0) * 100
            bt = np.mean(np.abs(median[:, 0] - tphys[:, 0]))
            r_e, flux = (np.median(np.abs(median[:, j] / tphys[:, j] - 1)) * 100 for j in (1, 2))
            print(
                f"| {k} | {best:.3f} | {path} | {bt:.4f} | {r_e:.2f} % | {flux:.2f} % | "
                + " / ".join(f"{c:.1f}" for c in cover)
                + " |"
            )


def sample(raw: torch.Tensor, k: int, n: int = 1000) -> np.ndarray:
    """``n`` draws per galaxy from the mixture (B, n, 3), standardised space."""
    mean, tril, logw = components(raw, k)
    which = torch.distributions.Categorical(logits=logw).sample((n,)).T
    b = len(raw)
    m = torch.gather(mean, 1, which[..., None].expand(b, n, K_PARAMS))
    lt = torch.gather(tril, 1, which[..., None, None].expand(b, n, K_PARAMS, K_PARAMS))
    return (m + (lt @ torch.randn(b, n, K_PARAMS, 1)).squeeze(-1)).numpy()


if __name__ == "__main__":
    main()
