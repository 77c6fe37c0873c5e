"""Experiments: the paper's studies as data (studies), the runner that trains them (runner), the
run reader (runs, torch-free), what a run's architecture costs (run_costs), the verdicts on the
paper's claims (verdicts) and the Markdown report (report)."""
