"""How noisy are the labels a head learns from? Two measures that need no new labels:

- duplicate groups: byte-identical photos listed under several ids should carry the same labels;
  the share of such pairs that disagree estimates each column's noise;
- colour words in product names: when a photo's name says one colour (e.g. "Puma Men Black
  T-shirt") and its baseColour label another, one of them is wrong. Among the labeler's colour
  errors, those where the name agrees with the prediction, not the label, are (mostly) label noise.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Sequence

import numpy as np
import pandas as pd

from fashiongen.schema import MISSING_VALUES
from fashiongen.splits import duplicate_groups


def duplicate_disagreement(styles: pd.DataFrame, digests: np.ndarray, columns: Sequence[str]) -> dict[str, Any]:
    """Per column: pairs of byte-identical photos (both labelled) and the share whose labels differ."""
    groups = duplicate_groups(np.asarray(digests))
    sizes = np.bincount(groups)
    members = [np.flatnonzero(groups == group) for group in np.flatnonzero(sizes > 1)]
    result = {}
    for column in columns:
        values = styles[column].to_numpy()
        pairs = [(values[a], values[b]) for rows in members for a, b in itertools.combinations(rows, 2)
                 if values[a] not in MISSING_VALUES and values[b] not in MISSING_VALUES]
        differ = sum(a != b for a, b in pairs)
        result[column] = {"pairs": len(pairs), "disagreeing": differ,
                          "disagreement": differ / len(pairs) if pairs else None}
    return result


def named_colours(names: Sequence[str], colours: Sequence[str]) -> list[str | None]:
    """The one colour of `colours` each product name says, as whole words (the longest phrase wins:
    "Navy Blue" over "Blue"); None when it says none or several."""
    ordered = sorted(colours, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(colour) for colour in ordered) + r")\b", re.IGNORECASE)
    by_lower = {colour.lower(): colour for colour in colours}
    found = []
    for name in names:
        said = {by_lower[match.lower()] for match in pattern.findall(str(name))}
        found.append(said.pop() if len(said) == 1 else None)
    return found


def colour_error_sources(names: Sequence[str], truth: Sequence[str], predicted: Sequence[str],
                         colours: Sequence[str]) -> dict[str, Any]:
    """For rows whose label is one of `colours`: how the product name sides on the labeler's errors.

    `name_says_prediction`: errors where the name names the predicted colour (the label is likely
    wrong); `name_says_label`: the name backs the label (a model error); `name_silent`: no colour,
    several, or a third one. `name_vs_label_disagreement`: among all rows whose name names a colour,
    the share where it is not the label (the names' view of the labels' noise)."""
    said = named_colours(names, colours)
    truth, predicted = list(truth), list(predicted)
    errors = [i for i, (t, p) in enumerate(zip(truth, predicted)) if t != p]
    backs_prediction = sum(said[i] == predicted[i] for i in errors)
    backs_label = sum(said[i] == truth[i] for i in errors)
    named = [i for i, colour in enumerate(said) if colour is not None]
    return {
        "rows": len(truth), "errors": len(errors),
        "name_says_prediction": backs_prediction, "name_says_label": backs_label,
        "name_silent": len(errors) - backs_prediction - backs_label,
        "rows_naming_a_colour": len(named),
        "name_vs_label_disagreement": (sum(said[i] != truth[i] for i in named) / len(named)) if named else None,
    }
