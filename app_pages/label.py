"""Label page: upload product photos, see their sub-category and gender with probabilities."""

import pandas as pd
import streamlit as st

import webapp

st.title("Label a product photo")
labeler = webapp.labeler_or_stop()
uploads = st.file_uploader(f"Product photos (JPEG, PNG or WebP, any size): {webapp.upload_limits()}",
                           type=webapp.IMAGE_TYPES, accept_multiple_files=True)
accepted, left_out = webapp.within_upload_limits(uploads or [])
if left_out:
    st.warning(left_out)
results = []
for upload in accepted:  # one at a time: only the 60x80 image of each is kept
    image = webapp.read_upload(upload)
    if image is not None:
        results.append((upload.name, image, labeler.predict(image)[0]))

if len(results) == 1:
    name, image, prediction = results[0]
    left, right = st.columns([1, 3])
    left.image(webapp.enlarge(image), caption=f"{webapp.literal(name)} as the model sees it (60x80)")
    (sub_name, sub_p), (gender_name, gender_p) = prediction.top_sub_category, prediction.top_gender
    right.metric("Sub-category", sub_name, help=f"{sub_p:.1%} probability")
    right.caption(f"{sub_p:.1%} probability")
    right.metric("Gender", gender_name, help=f"{gender_p:.1%} probability")
    right.caption(f"{gender_p:.1%} probability")
    st.plotly_chart(webapp.probability_chart(prediction), width="stretch")
elif results:
    table = pd.DataFrame([{"file": name, "subCategory": p.top_sub_category[0],
                           "subCategory probability": round(p.top_sub_category[1], 4),
                           "gender": p.top_gender[0], "gender probability": round(p.top_gender[1], 4)}
                          for name, _, p in results])
    st.dataframe(table, hide_index=True, width="stretch")
    st.download_button("Download as CSV", table.to_csv(index=False), "labels.csv", "text/csv")
elif not uploads:
    st.info("Upload one photo to see its labels and probabilities, or several for a table.")
