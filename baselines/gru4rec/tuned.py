"""Tuned GRU4Rec: its authors' published parameter files, per dataset (see the package docstring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from baselines.gru4rec.recommender import GRU4Rec
from sessionbench.data import Split


class GRU4RecTuned(GRU4Rec):
    """GRU4Rec with its authors' published settings ("GRU4Rec (tuned)"), per dataset.

    Defaults: ``paramfiles/diginetica_bprmax_shared_best.py`` of the reference: BPR-max loss
    with ELU(1) final activation and bpreg 0.9, constrained embedding, 512 units, mini-batch 128,
    dropout 0.5 on the embedding and 0.3 on the hidden state, learning rate 0.05, momentum 0.15,
    2048 extra negatives drawn by support^0.3, 10 epochs. On a YOOCHOOSE split
    (:meth:`defaults_for`) the plan takes ``paramfiles/yoochoose_xe_shared_best.py`` instead:
    cross-entropy with logQ correction 1.0, linear final activation (``elu_param`` 0),
    constrained embedding, 480 units, mini-batch 48, dropout 0.0 / 0.2, learning rate 0.07,
    momentum 0, 2048 extra negatives by support^0.2, 10 epochs. ``fit_report_`` names the file
    a fit's settings equal. Arguments as for :class:`GRU4Rec`.
    """

    name: ClassVar[str] = "gru4rec-tuned"
    paper_row: ClassVar[str | None] = "GRU4Rec (tuned)"

    def __init__(
        self,
        loss: str = "bpr-max",
        final_activation: str = "elu",
        hidden_size: int = 512,
        embedding_size: int = 0,
        constrained_embedding: bool = True,
        batch_size: int = 128,
        dropout_embedding: float = 0.5,
        dropout_hidden: float = 0.3,
        learning_rate: float = 0.05,
        momentum: float = 0.15,
        n_negatives: int = 2048,
        sample_alpha: float = 0.3,
        bpreg: float = 0.9,
        elu_param: float = 1.0,
        logq: float = 0.0,
        epochs: int = 10,
        precision: str = "fp32",
    ) -> None:
        super().__init__(
            loss=loss, final_activation=final_activation, hidden_size=hidden_size, embedding_size=embedding_size,
            constrained_embedding=constrained_embedding, batch_size=batch_size, dropout_embedding=dropout_embedding,
            dropout_hidden=dropout_hidden, learning_rate=learning_rate, momentum=momentum, n_negatives=n_negatives,
            sample_alpha=sample_alpha, bpreg=bpreg, elu_param=elu_param, logq=logq, epochs=epochs,
            precision=precision,
        )

    @classmethod
    def defaults_for(cls, dataset: str) -> dict[str, Any]:
        """The official YOOCHOOSE parameter file on a YOOCHOOSE split, else nothing (the
        DIGINETICA file is the constructor's defaults)."""
        return dict(OFFICIAL_SETTINGS["yoochoose_xe_shared_best"]) if dataset.startswith("yoochoose") else {}

    def fit(
        self,
        split: Split,
        *,
        seed: int,
        device: str = "cpu",
        progress: bool = True,
        checkpoint: str | Path | None = None,
    ) -> GRU4RecTuned:
        """:meth:`GRU4Rec.fit`, and ``fit_report_`` naming the official parameter file whose
        settings this fit's equal (or saying that they equal none)."""
        super().fit(split, seed=seed, device=device, progress=progress, checkpoint=checkpoint)
        named = official_file(self.get_params())
        if self.precision_ == "bf16":  # the official code computes in fp32
            named += ", its products in bf16"
        self.fit_report_ = {"parameter file": named}
        return self


#: The official GRU4Rec's published parameter files (hidasib/GRU4Rec_PyTorch_Official,
#: ``paramfiles/``, read at d1fc31105577665d2f105de1c8d9a38d223a9a22) in our parameter names:
#: ``layers`` -> hidden_size, ``embedding`` -> embedding_size, ``dropout_p_embed`` /
#: ``dropout_p_hidden`` -> dropout_embedding / dropout_hidden, ``n_sample`` -> n_negatives,
#: ``elu_param`` 0 -> a linear final activation (the reference applies ELU only for elu_param > 0;
#: ours then ignores ``elu_param``).
OFFICIAL_SETTINGS: dict[str, dict[str, Any]] = {
    "diginetica_bprmax_shared_best": {
        "loss": "bpr-max", "final_activation": "elu", "elu_param": 1.0, "constrained_embedding": True,
        "embedding_size": 0, "hidden_size": 512, "epochs": 10, "batch_size": 128, "dropout_embedding": 0.5,
        "dropout_hidden": 0.3, "learning_rate": 0.05, "momentum": 0.15, "n_negatives": 2048, "sample_alpha": 0.3,
        "bpreg": 0.9, "logq": 0.0,
    },
    "yoochoose_xe_shared_best": {
        "loss": "cross-entropy", "final_activation": "linear", "constrained_embedding": True,
        "embedding_size": 0, "hidden_size": 480, "epochs": 10, "batch_size": 48, "dropout_embedding": 0.0,
        "dropout_hidden": 0.2, "learning_rate": 0.07, "momentum": 0.0, "n_negatives": 2048, "sample_alpha": 0.2,
        "bpreg": 0.0, "logq": 1.0,
    },
}


def official_file(params: dict[str, Any]) -> str:
    """The official parameter file (``paramfiles/<name>.py``) whose settings ``params`` equal,
    in words; or that they equal none."""
    for name, setting in OFFICIAL_SETTINGS.items():
        if all(params.get(k) == v for k, v in setting.items()):
            return f"the official {name}.py"
    return "none of the official files (own settings)"
