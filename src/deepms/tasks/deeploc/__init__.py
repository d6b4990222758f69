"""deeploc: protein subcellular localisation (DeepLoc, Almagro Armenteros et al. 2017)."""
