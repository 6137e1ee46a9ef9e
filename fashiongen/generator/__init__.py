"""The generator: a conditional VAE that reconstructs product photos and draws new ones.

- `architectures`: the encoders and decoders (the paper's dense CVAE and the convolutional default).
- `cvae`: `CVAE`, the training model that owns `train_step` and its loss trackers.
- `judge`: label consistency, a frozen classifier's verdict on generated images.
- `prior`: `LatentPrior`, one Gaussian per label pair, where generation draws its codes.
- `refine`: moving the prior towards codes the judge labels as asked (`refine_prior`).
- `generator`: `Generator`, a trained model with its schema and prior, as users and the app call it.
- `quality`: how close generated images come to real photos (Fréchet distance, k-NN precision/recall, ...).
"""
