"""Generate page: pick a sub-category, gender, colour (when the generator has colour control) and seed;
the generator chosen in the sidebar draws new products.

The grid and the interpolation are fragments: a change to one's widgets reruns only that one, and
their pictures come cached per generator and choices (webapp.generated_png, webapp.interpolation_png)."""

import streamlit as st

import webapp

st.title("Generate")
variant = webapp.choose_generator()
generator = webapp.generator_or_stop(variant)
schema, colours = generator.schema, generator.colours


@st.fragment
def grid(variant: str) -> None:
    cells = st.columns(4 if colours else 3)
    sub_category = cells[0].selectbox("Sub-category", schema.sub_categories)
    gender = cells[1].selectbox("Gender", schema.genders)
    colour = webapp.colour_choice(cells[2], "Colour", colours) if colours else None
    count = cells[-1].slider("How many", 1, 32, 8)
    seed = st.slider("Seed (the same choices always give the same images)", 0, 9999, 7)
    png = webapp.generated_png(sub_category, gender, seed, count, colour, variant)
    shown = f"{sub_category} / {gender}" + (f" / {colour}" if colour else "")
    st.image(png, caption=f"{count} x {shown}, seed {seed}", output_format="PNG")
    name = "-".join([*([variant] if variant != webapp.DEFAULT_GENERATOR else []), sub_category, gender,
                     *([colour] if colour else []), f"seed{seed}"])
    st.download_button("Download PNG", png, f"{name.replace(' ', '_')}.png", "image/png")
    if not colours:
        st.caption("This generator has no colour control: each image's colour follows the sub-category and gender.")


@st.fragment
def interpolation(variant: str) -> None:
    st.subheader("Interpolate")
    st.caption("Walk from one seed and label to another: the decoder's view of what lies between.")
    start, end = st.columns(2)
    ends = []
    for column, which, seed in ((start, "From", 7), (end, "To", 8)):
        sub_category = column.selectbox(f"{which} sub-category", schema.sub_categories)
        gender = column.selectbox(f"{which} gender", schema.genders)
        colour = webapp.colour_choice(column, f"{which} colour", colours) if colours else None
        ends.append((sub_category, gender, column.slider(f"{which} seed", 0, 9999, seed), colour))
    steps = st.slider("Steps", 3, 12, 8)
    st.image(webapp.interpolation_png(*ends, steps, variant), output_format="PNG")


grid(variant)
interpolation(variant)
