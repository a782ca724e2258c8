"""basinsx.embedding.model: the contrastive losses."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# imported after the importorskip: basinsx.embedding needs torch
from basinsx.embedding.model import ntxent_loss, triplet_loss  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_contrastive_losses_prefer_clustered_embeddings():
    labels = torch.arange(4).repeat_interleave(3)
    centres = torch.eye(8)[:4] * 10
    clustered = centres[labels] + 0.01 * torch.randn(12, 8, generator=torch.Generator().manual_seed(0))
    scattered = torch.randn(12, 8, generator=torch.Generator().manual_seed(1))
    assert float(triplet_loss(clustered, labels, 0.5)) == 0.0
    assert float(triplet_loss(scattered, labels, 0.5)) > 0.0
    assert float(ntxent_loss(clustered, labels, 0.1)) < float(ntxent_loss(scattered, labels, 0.1))
    # analytic NT-Xent: two identical pairs, orthogonal to each other
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    t = 0.5
    expected = -np.log(np.exp(1 / t) / (np.exp(1 / t) + 2 * np.exp(0.0)))
    assert float(ntxent_loss(e, torch.tensor([0, 0, 1, 1]), t)) == pytest.approx(expected, rel=1e-6)
