"""Home page: what FashionGen is and what is ready on this machine."""

from pathlib import Path

import streamlit as st

import fashiongen

st.title("FashionGen")
st.write(
    "Label, reconstruct and generate fashion product images. "
    "The labeler and the generator pages arrive with their trained models."
)
data_dir = Path("data") / "fashion-small"
if (data_dir / "styles.csv").is_file():
    st.success(f"Dataset found in `{data_dir}`.")
else:
    st.info("No dataset in `data/fashion-small` yet: `python scripts/download_data.py` fetches it from Kaggle.")
st.caption(f"fashiongen {fashiongen.__version__}")
