"""The accelerator tile: the design point as one machine (arrays, scratchpads, DMA, vector unit,
sequencer) that runs a program compiled from the mapper's tilings."""
