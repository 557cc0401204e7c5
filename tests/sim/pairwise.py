"""A greedy pairwise covering array: every pair of values of any two factors
appears in at least one case (the default run's cover of a test matrix; the
exhaustive product runs under `slow`). Deterministic: the first best case wins."""
import itertools


def pairwise(factors):
    """factors: {name: [values]} -> list of dicts covering every value pair."""
    names = list(factors)
    uncovered = {(a, va, b, vb) for a, b in itertools.combinations(names, 2)
                 for va in factors[a] for vb in factors[b]}
    candidates = [dict(zip(names, vals)) for vals in itertools.product(*(factors[n] for n in names))]
    cases = []
    while uncovered:
        def gain(c):
            return sum((a, c[a], b, c[b]) in uncovered for a, b in itertools.combinations(names, 2))
        best = max(candidates, key=gain)
        cases.append(best)
        uncovered -= {(a, best[a], b, best[b]) for a, b in itertools.combinations(names, 2)}
    return cases


def exhaustive(factors):
    names = list(factors)
    return [dict(zip(names, vals)) for vals in itertools.product(*(factors[n] for n in names))]
