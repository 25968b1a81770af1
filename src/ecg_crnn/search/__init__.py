"""The Optuna search over recurrent type, direction and depth, and the sizes and learning rate.

Pure library: the objective trains with the same `train()` as the DVC train stage, reports the validation
macro-AUROC every epoch and is pruned when it falls behind. The Prefect flows in flows/ only schedule it.
storage: where the study lives; study: its creation and loading; space: the search space and what a point means;
objective: one trial, and trials until the study is done; results: tables, plots and files of a finished search.
"""
