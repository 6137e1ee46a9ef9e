"""Reconstruct page: encode an image with the generator chosen in the sidebar and decode it back."""

import numpy as np
import streamlit as st

import webapp
from fashiongen.errors import GeneratorError

st.title("Reconstruct")
labeler = webapp.labeler_or_stop()
generator = webapp.generator_or_stop(webapp.choose_generator())

source = st.radio("Image", ["Upload", "Example"], horizontal=True)
image = None
if source == "Upload":
    upload = st.file_uploader("A product photo (JPEG, PNG or WebP)", type=webapp.IMAGE_TYPES)
    if upload is not None:
        image = webapp.read_upload(upload)
else:
    examples = webapp.dataset_examples()
    if examples:
        choice = st.selectbox("Photo from the local dataset (data/fashion-small)", examples, format_func=lambda p: p.name)
        image = webapp.read_example(choice)
    else:
        st.caption("No local dataset in data/fashion-small: the examples are images the generator draws itself.")
        sub_category = st.selectbox("Sub-category", generator.schema.sub_categories)
        gender = st.selectbox("Gender", generator.schema.genders)
        image = generator.generate(sub_category, gender, seed=0, n=1)[0]

if image is not None:
    try:
        conditions = generator.conditions_from_scores(labeler.scores(image), labeler.schema)
    except GeneratorError as problem:  # a generator of other classes (FASHIONGEN_GENERATOR_DIR) than the labeler
        st.error(f"This generator cannot reconstruct with the labeler's labels: {problem}")
        st.stop()
    reconstruction = generator.reconstruct(image, conditions)[0]
    error = float(np.mean((image.astype(np.float32) - reconstruction.astype(np.float32)) ** 2) / 255**2)
    left, right = st.columns(2)
    left.image(webapp.enlarge(image), caption="original (60x80)")
    right.image(webapp.enlarge(reconstruction), caption="reconstruction")
    st.metric("Reconstruction error (mean squared, pixels in [0, 1])", f"{error:.4f}")
