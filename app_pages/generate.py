"""Generate page: pick a sub-category, gender and seed; the generator draws new products.

The grid and the interpolation are fragments: a change to one's widgets reruns only that one, and
their pictures come cached per choices (webapp.generated_png, webapp.interpolation_png)."""

import streamlit as st

import webapp

st.title("Generate")
schema = webapp.generator_or_stop().schema


@st.fragment
def grid() -> None:
    left, middle, right = st.columns(3)
    sub_category = left.selectbox("Sub-category", schema.sub_categories)
    gender = middle.selectbox("Gender", schema.genders)
    count = right.slider("How many", 1, 32, 8)
    seed = st.slider("Seed (the same choices always give the same images)", 0, 9999, 7)
    png = webapp.generated_png(sub_category, gender, seed, count)
    st.image(png, caption=f"{count} x {sub_category} / {gender}, seed {seed}", output_format="PNG")
    st.download_button("Download PNG", png, f"{sub_category}-{gender}-seed{seed}.png", "image/png")


@st.fragment
def interpolation() -> None:
    st.subheader("Interpolate")
    st.caption("Walk from one seed and label to another: the decoder's view of what lies between.")
    start, end = st.columns(2)
    ends = []
    for column, which, seed in ((start, "From", 7), (end, "To", 8)):
        ends.append((column.selectbox(f"{which} sub-category", schema.sub_categories),
                     column.selectbox(f"{which} gender", schema.genders),
                     column.slider(f"{which} seed", 0, 9999, seed)))
    steps = st.slider("Steps", 3, 12, 8)
    st.image(webapp.interpolation_png(*ends, steps), output_format="PNG")


grid()
interpolation()
