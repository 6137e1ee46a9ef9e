"""fashiongen/labeler/non_products.py: the set of non-product images that measures the "not a product photo"
detector."""

import io

import numpy as np
import pytest
from PIL import Image

from fashiongen.imaging import IMAGE_SHAPE, load_image
from fashiongen.labeler.non_products import KINDS, non_product_images


@pytest.fixture(scope="module")
def seed_0():
    return non_product_images(seed=0)


def test_shapes_kinds_and_counts(seed_0):
    count = len(seed_0.names)
    assert seed_0.images.shape == (count, *IMAGE_SHAPE)
    assert seed_0.images.dtype == np.uint8
    assert 300 <= count <= 400
    assert len(seed_0.kinds) == count
    counts = seed_0.counts()
    assert list(counts) == list(KINDS)  # every kind present, in KINDS order
    assert sum(counts.values()) == count
    assert min(counts.values()) >= 30, counts
    assert counts["noise"] == seed_0.kinds.count("noise")


def test_names_are_unique(seed_0):
    assert len(set(seed_0.names)) == len(seed_0.names)
    assert all(name.strip() for name in seed_0.names)


def test_no_image_is_blank_white(seed_0):
    # A (near) uniform white picture is what an empty product photo looks like: it has no place here.
    flat = seed_0.images.reshape(len(seed_0.names), -1).astype(np.float64)
    blank = [name for name, mean, std in zip(seed_0.names, flat.mean(1), flat.std(1)) if mean >= 250 and std <= 5]
    assert blank == []


def test_the_same_seed_gives_the_same_set_another_seed_another(seed_0):
    again = non_product_images(seed=0)
    np.testing.assert_array_equal(again.images, seed_0.images)
    assert again.names == seed_0.names and again.kinds == seed_0.kinds
    other = non_product_images(seed=1)
    assert other.counts() == seed_0.counts()
    # the bundled photos and drawings are the same for every seed; everything drawn at random is not
    changed = [
        kind for kind, image, before in zip(other.kinds, other.images, seed_0.images)
        if not np.array_equal(image, before)
    ]
    assert len(changed) > len(other.names) // 2
    assert {"natural photo", "drawing", "document", "chart", "screenshot", "noise", "crop"} <= set(changed)


def test_images_are_preprocessed_as_uploads(seed_0):
    import skimage.data

    # rocket is 640 wide and 427 tall: the upload path pads it to 3:4 with white above and below
    buffer = io.BytesIO()
    Image.fromarray(skimage.data.rocket()).save(buffer, format="PNG")
    expected = load_image(buffer.getvalue())
    image = seed_0.images[seed_0.names.index("skimage rocket")]
    np.testing.assert_array_equal(image, expected)
    assert (image[:8] == 255).all() and (image[-8:] == 255).all()
    assert image[40].mean() < 200  # the photo itself fills the middle rows
    # a dark phone screenshot (360 wide, 640+ tall) is taller than 3:4: white columns left and right
    dark_phones = [i for i, name in enumerate(seed_0.names) if name.startswith("dark phone app")]
    assert dark_phones
    for index in dark_phones:
        assert (seed_0.images[index][:, 0] == 255).all() and (seed_0.images[index][:, -1] == 255).all()
        assert seed_0.images[index][:, 30].mean() < 200


def test_a_negative_seed_is_refused():
    with pytest.raises(ValueError, match="non-negative"):
        non_product_images(seed=-1)
