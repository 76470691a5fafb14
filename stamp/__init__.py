"""STAMP (Liu et al., KDD 2018): short-term attention/memory priority (:mod:`stamp.model`)."""

from stamp.model import STAMP, STAMPModule

__all__ = ["STAMP", "STAMPModule"]
