import sys

import numpy as np
from sklearn.metrics import roc_auc_score

z = np.load(sys.argv[1])
a = [z[f"arr_{i}"] for i in range(len(z.files))]
n = len(a) // 3
Ftr, Fva, Fno = a[:n], a[n : 2 * n], a[2 * n :]
from fashiongen.labeler.non_products import non_product_images

kinds = np.array(non_product_images().kinds)


def rate(real, other):
    t = np.quantile(real, 0.98, method="higher")
    return round(float(np.mean(other > t)), 3), round(
        roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(other))], np.r_[real, other]), 4
    )


def nrm(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-9)


def knn(tr, x, k):
    return np.sort(2 - 2 * nrm(x) @ nrm(tr).T, 1)[:, k - 1]


def std(tr, *xs):
    mu, sd = tr.mean(0), tr.std(0) + 1e-6
    return [(x - mu) / sd for x in (tr, *xs)]


for k in (1, 5, 20):
    for idx in ([2], [1, 2], [2, 3], [1, 2, 3], [0, 1, 2, 3]):
        cat = lambda F: np.concatenate([nrm(F[i]) for i in idx], 1)
        tr, va, no = cat(Ftr), cat(Fva), cat(Fno)
        print(
            k,
            idx,
            "knn",
            rate(knn(tr, va, k), knn(tr, no, k)),
            "std-knn",
            rate(*[knn(*std(tr, va, no)[0:1], x, k) for x in std(tr, va, no)[1:]]),
        )
# sum of per-stage knn (normalised by validation median)
for k in (5, 20):
    sv = sum(knn(Ftr[i], Fva[i], k) / np.median(knn(Ftr[i], Fva[i], k)) for i in range(4))
    sn = sum(knn(Ftr[i], Fno[i], k) / np.median(knn(Ftr[i], Fva[i], k)) for i in range(4))
    print("sum knn", k, rate(sv, sn))
    t = np.quantile(sv, 0.98, method="higher")
    print({kk: round(float(np.mean(sn[kinds == kk] > t)), 2) for kk in sorted(set(kinds))})
    mx_v = np.max([knn(Ftr[i], Fva[i], k) / np.quantile(knn(Ftr[i], Fva[i], k), 0.98) for i in range(4)], 0)
    mx_n = np.max([knn(Ftr[i], Fno[i], k) / np.quantile(knn(Ftr[i], Fva[i], k), 0.98) for i in range(4)], 0)
    print("max knn", k, rate(mx_v, mx_n))
