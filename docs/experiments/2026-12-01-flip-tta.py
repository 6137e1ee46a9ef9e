import sys

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()
from fashiongen.dataset import load_dataset
from fashiongen.labeler.labeler import Labeler
from fashiongen.labeler.report import classification_report
from fashiongen.splits import split_of_card

lab = Labeler.load(sys.argv[1])
bare = Labeler(lab.model, lab.schema)
d = load_dataset("../shared/data/fashion-small")
split = split_of_card(lab.card.get("split"), d, sys.argv[1])
v = split.validation
y = d.labels(lab.schema)[v]
a = bare.scores(d.images[v])
b = bare.scores(d.images[v][:, :, ::-1].copy())
for name, s in (("plain", a), ("flip-avg", (a + b) / 2)):
    r = classification_report(y, s, lab.schema)
    print(name, {k: round(r[f"{k}_accuracy"], 4) for k in lab.schema.heads})
