"""Random-shift augmentation: a crop of the edge-padded image within the pad, per-sample shifts, shapes kept."""
import numpy as np
import pytest
import torch

from sole_r1_rl.augment import RandomShiftsAug


def _crops_of_edge_padded(image: np.ndarray, pad: int) -> list:
    """Every (2*pad+1)^2 crop of the image padded by edge replication (numpy, independent of the code under test)."""
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    h, w = image.shape[1:]
    return [padded[:, y:y + h, x:x + w] for y in range(2 * pad + 1) for x in range(2 * pad + 1)]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augmented_batch_keeps_shape_and_dtype(dtype):
    images = torch.randint(0, 256, (5, 9, 20, 24)).to(dtype)
    out = RandomShiftsAug(pad=4)(images)
    assert out.shape == images.shape and out.dtype == dtype


def test_every_augmented_image_is_a_crop_of_the_edge_padded_image_shifted_at_most_pad():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 12, 12), dtype=torch.uint8, generator=generator)
    out = RandomShiftsAug(pad=4)(images, generator=generator).numpy()
    for original, augmented in zip(images.numpy(), out):
        assert any(np.array_equal(augmented, crop) for crop in _crops_of_edge_padded(original, 4))


def test_shifts_differ_between_samples_of_one_batch():
    image = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    out = RandomShiftsAug(pad=4)(image.repeat(32, 1, 1, 1), generator=torch.Generator().manual_seed(2))
    distinct = {bytes(sample.numpy().tobytes()) for sample in out}
    assert len(distinct) > 10  # 81 possible shifts; identical shifts for all 32 would mean no per-sample draw


def test_shift_of_one_pixel_moves_content_by_one_pixel():
    image = torch.arange(36, dtype=torch.float32).reshape(1, 1, 6, 6)
    crops = [torch.from_numpy(c) for c in _crops_of_edge_padded(image[0].numpy(), 1)]
    out = RandomShiftsAug(pad=1)(image.repeat(64, 1, 1, 1), generator=torch.Generator().manual_seed(3))
    centre = crops[4]  # offset (1, 1) == no shift
    assert torch.equal(crops[4], image[0])
    shifted_down = crops[7]  # offset (2, 1): row i shows original row i+1, last row repeated
    assert torch.equal(shifted_down[0, :5], image[0, 0, 1:]) and torch.equal(shifted_down[0, 5], image[0, 0, 5])
    assert any(torch.equal(sample, centre) for sample in out)


def test_zero_pad_is_identity_and_negative_pad_is_rejected():
    images = torch.rand(2, 3, 8, 8)
    assert torch.equal(RandomShiftsAug(pad=0)(images), images)
    with pytest.raises(ValueError, match="pad"):
        RandomShiftsAug(pad=-1)
