"""FashionGen's Streamlit app: `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="FashionGen", page_icon="👗", layout="wide")
navigation = st.navigation([
    st.Page("pages/label.py", title="Label", icon=":material/label:", default=True),
    st.Page("pages/reconstruct.py", title="Reconstruct", icon=":material/autorenew:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page("pages/about.py", title="About", icon=":material/info:"),
])
navigation.run()
