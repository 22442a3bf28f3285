"""FC-ResNet: the fully connected residual encoder of ProHMR's 2D-to-3D lifting model.

Martinez et al., "A simple yet effective baseline for 3d human pose estimation", ICCV 2017, as
ProHMR implements it (`prohmr/models/backbones/fcresnet.py`), with the same parameter names so
the official lifting checkpoint's `backbone.` entries load strictly:

- `fc_layers.0` = FCBlock(in -> hidden): `fc_block` = [0 Linear, 1 BatchNorm1d, 2 ReLU, 3 Dropout];
- `fc_layers.1` .. `fc_layers.{num_blocks}` = FCResBlock(hidden): x + `fc_block`(x) with
  `fc_block` = [0 Linear, 1 BN, 2 ReLU, 3 Dropout, 4 Linear, 5 BN, 6 ReLU, 7 Dropout]
  (the residual sum comes after the final ReLU and dropout);
- `fc_layers.{num_blocks + 1}` = FCBlock(hidden -> out), present only if hidden != out.

All layers keep PyTorch's default initialisation, as in the original. As there, every block
always has BatchNorm, ReLU and dropout (the original's unused `DROPOUT` config key and ignored
block arguments have no counterpart here); the dropout probability is configurable, default 0.5.
"""

from __future__ import annotations

from torch import Tensor, nn

from hmr_backbone._checks import check_input

__all__ = ["FCBlock", "FCResBlock", "FCResNet"]


class FCBlock(nn.Module):
    """Linear -> BatchNorm1d -> ReLU -> Dropout, as `fc_block.{0,1,2,3}`.

    Shapes: (M, in_features) -> (M, out_features).
    """

    def __init__(self, *, in_features: int, out_features: int, dropout: float) -> None:
        super().__init__()
        self.fc_block = nn.Sequential(
            nn.Linear(in_features, out_features),
            nn.BatchNorm1d(out_features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.fc_block(x)


class FCResBlock(nn.Module):
    """x + (Linear -> BN -> ReLU -> Dropout -> Linear -> BN -> ReLU -> Dropout)(x).

    Shapes: (M, features) -> (M, features).
    """

    def __init__(self, *, features: int, dropout: float) -> None:
        super().__init__()
        self.fc_block = nn.Sequential(
            nn.Linear(features, features),
            nn.BatchNorm1d(features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(features, features),
            nn.BatchNorm1d(features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc_block(x)


class FCResNet(nn.Module):
    """Fully connected residual network mapping flattened 2D keypoints to a context vector.

    The defaults are ProHMR's lifting configuration: 17 normalised 2D joints flattened
    joint-major (x0, y0, x1, y1, ...) = 34 inputs, 1024 hidden and output features, two
    residual blocks, dropout 0.5 (35 state-dict entries).

    BatchNorm1d needs more than one row per batch in training mode; call `eval()` for inference.

    Args:
        in_features: size of the input vector (34 for 17 joints x 2).
        hidden_features: width of the residual blocks.
        out_features: size of the output; a final FCBlock is added only if it differs from
            `hidden_features`.
        num_blocks: number of residual blocks (ProHMR's NUM_LAYERS).
        dropout: dropout probability in every block.
    """

    def __init__(
        self,
        *,
        in_features: int = 34,
        hidden_features: int = 1024,
        out_features: int = 1024,
        num_blocks: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("hidden_features", hidden_features),
            ("out_features", out_features),
        ):
            if value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value}")
        if num_blocks < 0:
            raise ValueError(f"`num_blocks` must be >= 0, got {num_blocks}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [
            FCBlock(in_features=in_features, out_features=hidden_features, dropout=dropout)
        ]
        layers += [FCResBlock(features=hidden_features, dropout=dropout) for _ in range(num_blocks)]
        if out_features != hidden_features:
            layers.append(
                FCBlock(in_features=hidden_features, out_features=out_features, dropout=dropout)
            )
        self.fc_layers = nn.Sequential(*layers)
        self.in_features = in_features
        self.num_features = out_features

    def forward(self, x: Tensor) -> Tensor:
        """Encode input vectors.

        Args:
            x: (..., in_features) input vectors, e.g. flattened normalised 2D keypoints.

        Returns:
            (..., out_features) features (the flow's context in the lifting model).

        Raises:
            ValueError: if `x` does not end with `in_features`, or is on another device than
                the network.
            TypeError: if `x` is not a floating-point tensor or has another dtype than the
                network's parameters.
        """
        check_input("x", x, (self.in_features,), self)
        leading = x.shape[:-1]
        y = self.fc_layers(x.reshape(-1, self.in_features))
        return y.reshape(*leading, self.num_features)
