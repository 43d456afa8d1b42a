"""The accelerator tile meets the workload: the integer decoder layer it runs (golden model) and,
next, the compiler from the mapper's mappings to the tile's program."""
