"""FashionGen's Streamlit app: `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="FashionGen", page_icon="👗", layout="wide")
# The page scripts live in app_pages/, not pages/: with a pages/ folder beside app.py, Streamlit ran a
# new server's first script run as an old-style multipage app (file names in the sidebar).
navigation = st.navigation([
    st.Page("app_pages/label.py", title="Label", icon=":material/label:", default=True),
    st.Page("app_pages/reconstruct.py", title="Reconstruct", icon=":material/autorenew:"),
    st.Page("app_pages/generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page("app_pages/about.py", title="About", icon=":material/info:"),
])
navigation.run()
