"""The study's analysis: the evaluations read back (results), the statistics as pure functions over numpy arrays,
and every choice and test of the comparison, computed once into one frozen result (compare) that the report only
renders.

- results: the evaluate and train stages' outputs, one Model per (architecture, window) with all its seeds.
- rare_classes: how far the patient bootstrap under-states the variance of a class with few positive patients,
  and the correction and degrees of freedom that follow.
- contrasts: a contrast of models' seed-mean figures, its standard error (patient part + seed part), degrees of
  freedom and interval, kept inside the figure's range.
- decisions: the tests of one contrast (difference, non-inferiority, equivalence) and the wording they allow.
- multiplicity: a graphical (gatekeeping) procedure that keeps the family-wise error rate over every claim.
- power: power, minimal detectable effect, and how many seeds (or test folds) a target needs.
- rotation: one contrast pooled over test folds (fold rotation).
- selection: choices made on selection seeds, confirmed on confirmation seeds.
- compare: the study's hypotheses, choices and verdicts.
"""
