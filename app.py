"""FashionGen's Streamlit app: `streamlit run app.py`.

The Label, Reconstruct and Generate pages arrive with their models (issues 3-5); until then the
app shows what is installed and how to get the data.
"""

import streamlit as st

st.set_page_config(page_title="FashionGen", page_icon="👗", layout="wide")
navigation = st.navigation([st.Page("pages/home.py", title="Home", icon="🏠", default=True)])
navigation.run()
