"""Scripts that reproduce run_files/ (``python -m eval.repro --check``)."""
