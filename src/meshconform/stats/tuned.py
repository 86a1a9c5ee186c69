"""Tuned penalties (log10 lambda0, log10 lambda1) of the sequential designs the suite uses.

Written by `python -m meshconform.stats.sequential`; keyed by (expected share <= 0.5, tolerance,
alpha, beta, batch). Only a speed-up: every design built from them is verified exactly on use,
and tuned afresh if it misses its error rates (stats.sequential)."""

TUNED: dict[tuple[float, float, float, float, int], tuple[float, float]] = {
    (0.5, 0.05, 0.0001, 0.001, 50): (5.485511779785156, 4.5186767578125),
    (0.2, 0.05, 0.0001, 0.001, 50): (5.3240509033203125, 4.56683349609375),
    (0.1, 0.05, 0.0001, 0.001, 50): (5.822334289550781, 4.8175048828125),
    (0.3, 0.05, 0.0001, 0.001, 50): (5.4313201904296875, 4.5494384765625),
    (0.5, 0.1, 0.0001, 0.001, 50): (4.74603271484375, 3.7239990234375),
    (0.5, 0.1, 0.0001, 0.001, 100): (4.991203308105469, 3.96844482421875),
    (0.5, 0.05, 0.01, 0.01, 50): (3.7625045776367188, 3.62841796875),
    (0.1, 0.05, 0.01, 0.01, 50): (3.7527999877929688, 3.68463134765625),
}
