"""`halluc probe`: semantic entropy (Farquhar et al., 2024) and semantic-entropy probes (Kossen et al.,
2024), end to end: sample, cluster by meaning, read hidden states, build, train, evaluate, explore.

Python API: `semantic_entropy` (the formulas), `equivalence` (exact / embedding / NLI judges),
`runs.generate_runs`, `entropy.compute_entropy`, `hidden.trace_hidden`, `dataset.build_dataset`,
`probes.train_probes` / `probes.evaluate_probes`, `analyze.analyze`.
"""
