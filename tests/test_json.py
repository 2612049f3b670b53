"""``mosaico_dsl._json.dumps`` writes what ``json.dumps(indent=n, sort_keys=True)`` writes,
byte for byte (artifacts and their golden files depend on it), for any JSON document."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mosaico_dsl._json import dumps

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text())
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(), inner, max_size=4)
    | st.dictionaries(st.integers(), inner, max_size=3),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(documents, st.integers(0, 3))
def test_same_text_as_the_standard_library(doc, indent):
    assert dumps(doc, indent) == json.dumps(doc, indent=indent, sort_keys=True)
