"""About page: what the models are, their measured metrics, and where TensorFlow runs."""

import streamlit as st

import webapp
from fashiongen.runtime import device_summary

st.title("About FashionGen")
st.write("FashionGen labels product photos (every attribute of the catalog), reconstructs them with a conditional "
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
    heads = webapp.head_metrics_table(card) if title == "Labeler" else None
    if heads is not None:
        st.dataframe(heads, hide_index=True)
        if isinstance(validation.get("micro_auc"), float):
            st.caption(f"Micro AUC {validation['micro_auc']:.4f} over every output.")
        caption = webapp.detector_caption(card)
        if caption:
            st.caption(caption)
    elif validation:
        st.table({k: [round(v, 4) if isinstance(v, float) else v] for k, v in validation.items()})
    with st.expander("Model card"):
        st.json(card)
