"""Tests of torch_backend.pose.cues: each scoring term of the pose search by its public name."""
import pytest
import torch

from torch_backend.pose import cues


def test_silhouette_iou_of_identical_disjoint_and_half_overlapping_masks():
    a = torch.zeros(1, 4, 4)
    a[:, :, :2] = 1.0
    b = torch.zeros(1, 4, 4)
    b[:, :, 2:] = 1.0
    assert float(cues.silhouette_iou(a, a)) == pytest.approx(1.0)
    assert float(cues.silhouette_iou(a, b)) == pytest.approx(0.0)
    half = torch.zeros(1, 4, 4)
    half[:, :, 1:3] = 1.0
    assert float(cues.silhouette_iou(a, half)) == pytest.approx(4 / 12)


def test_box_iou_matches_hand_computed_overlap_and_is_differentiable():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0]], dtype=torch.float64)
    assert float(cues.box_iou(a.detach(), b)) == pytest.approx(1 / 7)
    assert torch.autograd.gradcheck(lambda box: cues.box_iou(box, b), (a,))


def test_moments_of_a_square():
    weights = torch.zeros(1, 10, 10)
    weights[:, 2:6, 4:8] = 1.0
    centre, area, radius = cues.moments(weights)
    assert centre[0].tolist() == pytest.approx([6.0, 4.0])
    assert float(area) == pytest.approx(16.0)
    # radius of gyration of a 4 x 4 pixel square: sqrt(2 * (4**2 - 1) / 12)
    assert float(radius) == pytest.approx((2 * 15 / 12) ** 0.5)


def test_masked_hog_cosine_ignores_cells_outside_the_region():
    a = torch.rand(1, 9, 4, 4)
    b = a.clone()
    b[..., 0, 0] = torch.rand(9)  # differs only in one cell
    region = torch.ones(1, 4, 4)
    region[:, 0, 0] = 0
    assert float(cues.masked_hog_cosine(a, b, region)) == pytest.approx(1.0)
    assert float(cues.masked_hog_cosine(a, b, torch.ones(1, 4, 4))) < 1.0


def test_region_color_information_bounds_symmetry_and_gradient():
    """The colour region term: 1 when colour decides the label, 0 when it says nothing, symmetric
    in object/background, and differentiable in the silhouette (float64 gradcheck)."""
    bins = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    split = torch.tensor([[1.0, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.float64)
    valid = torch.ones(8)
    assert float(cues.region_color_information(split, bins, valid, n_bins=4)) == pytest.approx(1.0, abs=1e-9)
    # Every colour half object, half background: the colours carry no information on the label.
    mixed = torch.tensor([[1.0, 0, 1, 0, 1, 0, 1, 0]], dtype=torch.float64)
    assert float(cues.region_color_information(mixed, bins, valid, n_bins=4)) == pytest.approx(0.0, abs=1e-9)
    generator = torch.Generator().manual_seed(0)
    soft = torch.rand(3, 40, generator=generator, dtype=torch.float64) * 0.9 + 0.05
    colours = torch.randint(0, 6, (40,), generator=generator)
    weights = (torch.rand(40, generator=generator) > 0.2).double()
    forward = cues.region_color_information(soft, colours, weights, n_bins=6)
    backward = cues.region_color_information(1 - soft, colours, weights, n_bins=6)
    assert torch.allclose(forward, backward, atol=1e-12)
    assert bool(((forward >= 0) & (forward <= 1)).all())
    soft.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: cues.region_color_information(s, colours, weights, n_bins=6), (soft,))


def test_color_bins_cover_the_cube():
    rgb = torch.tensor([[[0.0]], [[0.0]], [[0.0]]])
    assert int(cues.color_bins(rgb)) == 0
    assert int(cues.color_bins(torch.ones(3, 1, 1))) == cues.COLOR_BINS**3 - 1
    many = cues.color_bins(torch.rand(2, 3, 5, 7))
    assert many.shape == (2, 5, 7) and int(many.min()) >= 0 and int(many.max()) < cues.COLOR_BINS**3


def test_occlusion_edge_evidence_rewards_seen_edges_and_penalises_hallucinated_ones():
    """A candidate whose parts occlude each other along a line scores above zero when the photo
    has an edge there, below zero when the photo is plain there, and zero without such edges."""
    size = 40
    silhouette = torch.zeros(1, size, size)
    silhouette[:, 5:35, 5:35] = 1.0
    depth = torch.full((1, size, size), 2.0) * silhouette
    depth[:, 5:35, 20:35] = 1.5  # a part in front of the right half: an occlusion edge at x = 20
    flat_depth = torch.full((1, size, size), 2.0) * silhouette
    generator = torch.Generator().manual_seed(0)
    texture = 0.3 + 0.02 * torch.rand(size, size, generator=generator)
    with_edge = texture.clone()
    with_edge[:, 20:] += 0.3
    seen = cues.occlusion_edge_evidence(silhouette, depth, cues.gradient_magnitude(with_edge))
    hallucinated = cues.occlusion_edge_evidence(silhouette, depth, cues.gradient_magnitude(texture))
    none = cues.occlusion_edge_evidence(silhouette, flat_depth, cues.gradient_magnitude(with_edge))
    assert float(seen) > 0.0 > float(hallucinated)
    assert float(none) == 0.0


@pytest.mark.parametrize("variant", ["uoctti", "dalal", "skimage"])
def test_hog_cells_of_every_variant_are_unsigned_cells(variant):
    cells = cues.hog_cells(torch.rand(2, 64, 48), variant)
    assert cells.shape == (2, 9, 8, 6) and torch.isfinite(cells).all()


def test_gray_photos_are_told_apart_and_binned_by_intensity():
    generator = torch.Generator().manual_seed(0)
    gray = torch.rand(1, 40, 50, generator=generator).expand(3, -1, -1)
    colour = torch.rand(3, 40, 50, generator=generator)
    noisy_gray = (gray + 0.004 * (torch.rand(3, 40, 50, generator=generator) - 0.5)).clamp(0, 1)
    assert cues.is_gray(gray) and cues.is_gray(noisy_gray)
    assert not cues.is_gray(colour)
    bins = cues.color_bins(gray, gray=True)
    assert int(bins.min()) >= 0 and int(bins.max()) < cues.GRAY_LEVELS
    # the joint RGB bins leave a gray photo only COLOR_BINS levels; intensity bins keep GRAY_LEVELS
    assert len(torch.unique(cues.color_bins(gray))) <= cues.COLOR_BINS
    assert len(torch.unique(bins)) > cues.COLOR_BINS
