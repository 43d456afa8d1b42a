"""The accelerator tile meets the workload: the integer decoder layer it runs (``intlayer``, the
golden model), the compiler from the mapper's mappings to the tile's program (``compiler``, with
``dram``, ``program`` and ``mapping``), its functional interpreter (``interpret``) and its
predicted cycles beside the cost model's (``predict``). Import the modules: the layer alone needs
no hardware."""
