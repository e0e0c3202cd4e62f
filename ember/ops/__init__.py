"""ember's primitives, one file per family. The public names are re-exported by `ember`."""
