"""About page: what the models are, their measured metrics, and where TensorFlow runs."""

import streamlit as st

import webapp
from fashiongen.runtime import device_summary

st.title("About FashionGen")
st.write("FashionGen labels product photos (sub-category and gender), reconstructs them with a conditional "
         "variational autoencoder, and generates new ones from chosen labels.")
st.metric("TensorFlow runs on", device_summary())

for title, (model, problem) in (("Labeler", webapp.load_labeler()), ("Generator", webapp.load_generator())):
    st.subheader(title)
    if model is None:
        st.error(problem)
        continue
    card = model.card
    st.write(f"Architecture **{card.get('arch', '?')}**, trained with `{card.get('command', '?')}`")
    validation = card.get("metrics", {}).get("validation", {})
    if validation:
        st.table({k: [round(v, 4) if isinstance(v, float) else v] for k, v in validation.items()})
    with st.expander("Model card"):
        st.json(card)
