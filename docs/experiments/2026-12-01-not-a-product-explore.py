"""Exploration: which not-a-product score separates the non-product set from real photos (old model)."""

import sys
from pathlib import Path

import numpy as np

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()
import keras
from sklearn.metrics import roc_auc_score

from fashiongen.batches import to_unit_float
from fashiongen.dataset import load_dataset
from fashiongen.labeler.labeler import Labeler
from fashiongen.labeler.non_products import non_product_images
from fashiongen.splits import make_split

folder = sys.argv[1]
lab = Labeler.load(folder)
m = lab.model
names = [l.name for l in m.layers]
stages = [n for n in ("relu1_2", "relu2_2", "relu3_2", "relu4_2") if n in names]
view = keras.Model(m.input, [m.get_layer(n).output for n in stages])


def feats(images):
    out = [[] for _ in stages]
    for i in range(0, len(images), 256):
        for k, o in enumerate(view.predict_on_batch(to_unit_float(images[i : i + 256]))):
            o = np.asarray(o)
            out[k].append(np.concatenate([o.mean((1, 2)), o.std((1, 2))], 1))
    return [np.concatenate(x) for x in out]


ds = load_dataset("../shared/data/fashion-small")
split = make_split("random", ds)
rng = np.random.default_rng(0)
train = np.sort(rng.choice(split.train, 8000, replace=False))
np_set = non_product_images()
Ftr, Fva, Fno = feats(ds.images[train]), feats(ds.images[split.validation]), feats(np_set.images)
Path("runs/ood").mkdir(parents=True, exist_ok=True)
np.savez("runs/ood/feats_%s.npz" % folder.strip("/").split("/")[-1], *Ftr, *Fva, *Fno)


def rate(real, other):
    t = np.quantile(real, 0.98, method="higher")
    return np.mean(other > t), roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(other))], np.r_[real, other])


def gauss(tr, x):
    mu = tr.mean(0)
    c = np.cov(tr.T) + 1e-3 * np.trace(np.cov(tr.T)) / tr.shape[1] * np.eye(tr.shape[1])
    P = np.linalg.inv(c)
    d = x - mu
    return np.einsum("ij,jk,ik->i", d, P, d)


def knn(tr, x, k=10):
    tr = tr / np.linalg.norm(tr, axis=1, keepdims=True).clip(1e-9)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-9)
    d = 2 - 2 * x @ tr.T
    return np.sort(d, 1)[:, k - 1]


for i, s in enumerate(stages):
    print(
        s,
        "gauss mean+std",
        rate(gauss(Ftr[i], Fva[i]), gauss(Ftr[i], Fno[i])),
        "knn",
        rate(knn(Ftr[i], Fva[i]), knn(Ftr[i], Fno[i])),
    )
allf = lambda F: np.concatenate(F, 1)
g = lambda F: sum(gauss(Ftr[i], F[i]) / np.median(gauss(Ftr[i], Fva[i])) for i in range(len(stages)))
print("sum of stage gaussians", rate(g(Fva), g(Fno)))
kinds = np.array(np_set.kinds)
s_no = g(Fno)
t = np.quantile(g(Fva), 0.98, method="higher")
print({k: float(np.mean(s_no[kinds == k] > t)) for k in sorted(set(kinds))})
