"""Dataset preparation, data pipelines and the embedded demo dataset."""
