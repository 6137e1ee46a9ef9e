"""Generate page: pick a sub-category, gender and seed; the generator draws new products."""

import streamlit as st

import webapp
from fashiongen.imaging import image_grid

st.title("Generate")
generator = webapp.generator_or_stop()
schema = generator.schema

left, middle, right = st.columns(3)
sub_category = left.selectbox("Sub-category", schema.sub_categories)
gender = middle.selectbox("Gender", schema.genders)
count = right.slider("How many", 1, 32, 8)
seed = st.slider("Seed (the same choices always give the same images)", 0, 9999, 7)

images = generator.generate(sub_category, gender, seed, count)
grid = image_grid(images, columns=min(count, 8), scale=2)
st.image(grid, caption=f"{count} x {sub_category} / {gender}, seed {seed}")
st.download_button("Download PNG", webapp.png_bytes(grid), f"{sub_category}-{gender}-seed{seed}.png", "image/png")

st.subheader("Interpolate")
st.caption("Walk from one seed and label to another: the decoder's view of what lies between.")
a, b = st.columns(2)
seed_b = b.slider("Second seed", 0, 9999, seed + 1 if seed < 9999 else 0)
sub_category_b = b.selectbox("Second sub-category", schema.sub_categories, index=schema.sub_categories.index(sub_category))
gender_b = b.selectbox("Second gender", schema.genders, index=schema.genders.index(gender))
steps = a.slider("Steps", 3, 12, 8)
a.write(f"From **{sub_category} / {gender}**, seed {seed}")
frames = generator.interpolate((sub_category, gender, seed), (sub_category_b, gender_b, seed_b), steps)
st.image(image_grid(frames, columns=steps, scale=2))
