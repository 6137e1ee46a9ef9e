"""The labeler: every attribute of a product photo with probabilities, and whether it is one at all.

- `model`: the networks (`compact`, `paper`, `mobilenet`), their loss and per-head accuracy.
- `labeler`: `Labeler`, a trained model with its label schema and calibration, as users and the app call it.
- `calibration`: temperature scaling, expected calibration error, reliability diagrams.
- `outliers`: the not-a-product scores and their threshold.
- `fitting`: temperatures and the not-a-product detector fitted on a dataset after training.
- `non_products`: the images (natural photos, charts, documents, noise...) that measure the detector.
- `report`: accuracy, AUC, F1, confusion matrices and their figures.
- `evaluation`: a labeler scored on any folder of labelled images.
- `label_noise`: how often the dataset's own labels disagree, and how much of the colour error that explains.
"""
