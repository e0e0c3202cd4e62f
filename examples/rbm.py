"""A Bernoulli RBM models binarized 8x8 Digits, trained with CD-1 (or PCD-1) in a plain
PyTorch-style loop over a DataLoader.

The gradient of `rbm.contrastive_divergence_loss(v)` is the contrastive-divergence estimate,
so any ember optimizer can follow it. Reported: the exact log pseudo-likelihood per image of
held-out digits (sum over the 64 pixels of log p(pixel | the others); higher is better) before
and after training. An untrained RBM scores about 64 log(1/2) = -44.4 nats.

    python examples/rbm.py            # CD-1
    python examples/rbm.py --pcd      # persistent chains (PCD-1)
"""
from __future__ import annotations

import argparse

import ember
from ember.data import DataLoader, TensorDataset


def binarized_digits(train: bool):
    images, _ = ember.datasets.Digits(train=train).arrays()
    return (images.reshape(len(images), -1) > 0.5).astype("float32")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--pcd", action="store_true", help="persistent contrastive divergence")
    parser.add_argument("--limit", type=int, default=None, help="use only N training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2, help="0 silent, 2 per epoch")
    args = parser.parse_args(argv)

    ember.manual_seed(args.seed)
    train = binarized_digits(train=True)[:args.limit]
    held_out = ember.asarray(binarized_digits(train=False))
    loader = DataLoader(TensorDataset(ember.asarray(train)), batch_size=20, shuffle=True)
    rbm = ember.nn.RBM(64, args.hidden, k=1, persistent=args.pcd,
                       generator=ember.random.Generator(args.seed))
    optimizer = ember.optim.SGD(rbm.parameters(), lr=0.05, momentum=0.5)

    before = rbm.pseudo_likelihood(held_out).item()
    for epoch in range(args.epochs):
        for (batch,) in loader:
            loss = rbm.contrastive_divergence_loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if args.verbose >= 2 and (epoch + 1) % 10 == 0:
            score = rbm.pseudo_likelihood(held_out).item()
            print(f"epoch {epoch + 1}/{args.epochs}: held-out pseudo-likelihood {score:.2f}")
    after = rbm.pseudo_likelihood(held_out).item()
    print(f"held-out log pseudo-likelihood per image: {before:.2f} nats before training, "
          f"{after:.2f} after ({'PCD-1' if args.pcd else 'CD-1'}, {args.hidden} hidden units)")
    return {"pseudo_likelihood_before": before, "pseudo_likelihood_after": after}


if __name__ == "__main__":
    main()
