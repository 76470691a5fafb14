import math

import numpy as np
import pytest

from sessionbench.params import (
    FRACTION, NON_NEGATIVE_INT, OPEN_UNIT, POSITIVE, POSITIVE_INT, UNIT, check_params, one_of, optional,
)


class Model:
    def __init__(self, **params):
        self.__dict__.update(params)


@pytest.mark.parametrize(
    "rule, good, bad",
    [
        (POSITIVE_INT, [1, 7, np.int64(3)], [0, -1, 2.0, True, None, "3"]),
        (NON_NEGATIVE_INT, [0, 5], [-1, 0.5, False]),
        (POSITIVE, [1e-9, 3, np.float32(0.1)], [0, -0.1, math.nan, True, "1"]),
        (FRACTION, [0, 0.5, 0.999], [1, -0.01, math.nan]),
        (UNIT, [0, 1, 0.3], [1.01, -0.1]),
        (OPEN_UNIT, [0.1, 0.9], [0, 1]),
        (one_of("events", "sessions"), ["events", np.str_("sessions")], ["event", 0, None]),
        (one_of(True, False), [True, False], [1, 0, "true"]),
        (optional(POSITIVE_INT), [None, 4], [0, 1.5]),
    ],
)
def test_each_rule_accepts_and_refuses_what_it_says(rule, good, bad):
    assert all(rule.ok(v) for v in good)
    assert not any(rule.ok(v) for v in bad)


def test_the_first_broken_rule_is_reported_with_the_model_the_parameter_and_the_value():
    model = Model(epochs=3, alpha=1.5, counting="x")
    with pytest.raises(ValueError, match=r"^Model: alpha must be in \[0, 1\], got 1.5$"):
        check_params(model, epochs=POSITIVE_INT, alpha=UNIT, counting=one_of("events", "sessions"))
    check_params(Model(epochs=3), epochs=POSITIVE_INT)
