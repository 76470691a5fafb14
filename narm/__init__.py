"""NARM (Li et al., CIKM 2017): the network (:mod:`narm.model`), training and scoring
(:mod:`narm.recommender`) and the attention heatmap of the paper's Figure 6
(:mod:`narm.attention`)."""

from narm.model import NARMModule
from narm.recommender import NARM, NARMFC, NARMGlobal, NARMLocal

__all__ = ["NARM", "NARMFC", "NARMGlobal", "NARMLocal", "NARMModule"]
