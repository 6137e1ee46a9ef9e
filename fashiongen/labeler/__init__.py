"""The labeler: a product photo's sub-category and gender, with probabilities.

- `model`: the networks (`compact`, `paper`, `mobilenet`), their loss and per-head accuracy.
- `labeler`: `Labeler`, a trained model with its label schema, as users and the app call it.
- `report`: accuracy, AUC, F1, confusion matrices and their figures.
- `evaluation`: a labeler scored on any folder of labelled images.
"""
