"""Label page: upload product photos, see every label the model gives with its probability."""

import numpy as np
import streamlit as st

import webapp

st.title("Label a product photo")
labeler = webapp.labeler_or_stop()
heads = webapp.shown_heads(labeler.schema)
uploads = st.file_uploader(f"Product photos (JPEG, PNG or WebP, any size): {webapp.upload_limits()}",
                           type=webapp.IMAGE_TYPES, accept_multiple_files=True)
accepted, left_out = webapp.within_upload_limits(uploads or [])
if left_out:
    st.warning(left_out)
names, images = [], []
for upload in accepted:  # one at a time: only the 60x80 image of each is kept
    image = webapp.read_upload(upload)
    if image is not None:
        names.append(upload.name)
        images.append(image)
predictions = labeler.predict(np.stack(images)) if images else []  # one model call for the batch

if len(predictions) == 1:
    (name,), (image,), (prediction,) = names, images, predictions
    left, right = st.columns([1, 3])
    left.image(webapp.enlarge(image), caption=f"{webapp.literal(name)} as the model sees it (60x80)")
    with right:
        if prediction.not_a_product:
            st.warning(webapp.NOT_A_PRODUCT_WARNING)
            shown = st.expander("Show the labels anyway", expanded=False)
        else:
            shown = st.container()
        with shown:
            webapp.show_top_labels(prediction, heads)
            st.plotly_chart(webapp.probability_chart(prediction, heads), width="stretch")
elif predictions:
    table = webapp.labels_table(names, predictions, heads)
    flagged = int(table[webapp.NOT_A_PRODUCT_COLUMN].sum())
    if flagged:
        st.warning(f"{flagged} of {len(table)} photos do not look like product photos (`not a product` is True "
                   "in the table): their labels are guesses.")
    st.dataframe(table, hide_index=True, width="stretch")
    st.download_button("Download as CSV", table.to_csv(index=False), "labels.csv", "text/csv")
elif not uploads:
    st.info("Upload one photo to see its labels and probabilities, or several for a table.")
