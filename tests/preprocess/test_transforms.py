import numpy as np
import pytest

from astroreg.preprocess import ImageNormalizer, TargetScaler, apply_target_transform, invert_target_transform


def test_log10_round_trip_and_error_names_objects():
    y = np.array([10.0, 1000.0])
    assert np.allclose(apply_target_transform(y, "log10", name="flux"), [1, 3])
    assert np.allclose(invert_target_transform([1, 3], "log10"), y)
    with pytest.raises(ValueError, match=r"'flux': 1 value\(s\) <= 0 .*\['b'\]"):
        apply_target_transform(np.array([1.0, -2.0]), "log10", name="flux", ids=["a", "b"])


def test_target_scaler_fits_train_only_and_inverts():
    rng = np.random.default_rng(0)
    y = rng.normal(5, 2, (100, 2))
    s = TargetScaler("standard").fit(y)
    z = s.transform(y)
    assert np.allclose(z.mean(0), 0, atol=1e-5) and np.allclose(z.std(0), 1, atol=1e-5)
    assert np.allclose(s.inverse_transform(z), y, atol=1e-4)


def test_image_normalizer_crop_scale_and_nonfinite():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 4, (10, 1, 9, 9)).astype("f4")
    x[:, :, 4, 4] = 100.0
    norm = ImageNormalizer(crop=3).fit(x)
    out = norm.transform(x)
    assert out.shape == (10, 1, 3, 3)
    assert np.allclose(out[:, 0, 1, 1], 100.0 / norm.scale_[0])
    bad = x.copy()
    bad[3, 0, 4, 4] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf.*\['obj3'\].*nonfinite: zero"):
        norm.transform(bad, ids=[f"obj{i}" for i in range(10)])
    assert np.isfinite(ImageNormalizer(crop=3, nonfinite="zero").fit(x).transform(bad)).all()
    with pytest.raises(ValueError, match=r"crop 20 is larger than the 9x9"):
        ImageNormalizer(crop=20).fit(x)
